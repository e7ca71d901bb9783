//! Parsing raw `name=value` params into typed values, with the errors every learner shares.

use std::collections::BTreeMap;

use crate::LearnError;

/// A param a learner accepts: its canonical name and the aliases users may type instead.
pub(crate) struct ParamSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
}

/// Raw params resolved to canonical names, read once each by typed getters.
pub(crate) struct RawParams {
    learner: &'static str,
    values: BTreeMap<&'static str, (String, String)>,
}

impl RawParams {
    pub(crate) fn new(
        learner: &'static str,
        specs: &[ParamSpec],
        params: &[(String, String)],
    ) -> Result<RawParams, LearnError> {
        let mut values: BTreeMap<&'static str, (String, String)> = BTreeMap::new();
        for (given, value) in params {
            let key = given.trim();
            let spec = specs
                .iter()
                .find(|s| s.name == key || s.aliases.contains(&key))
                .ok_or_else(|| LearnError::UnknownParam {
                    learner,
                    param: key.to_string(),
                    valid: specs.iter().map(|s| s.name.to_string()).collect(),
                })?;
            if let Some((first, _)) = values.get(spec.name) {
                // Two spellings of one param would silently pick a winner; make the user choose.
                return Err(LearnError::InvalidParam {
                    learner,
                    param: key.to_string(),
                    value: value.clone(),
                    reason: format!("\"{}\" is already given as \"{first}\"", spec.name),
                });
            }
            values.insert(spec.name, (key.to_string(), value.trim().to_string()));
        }
        Ok(RawParams { learner, values })
    }

    fn invalid(&self, name: &str, reason: &str) -> LearnError {
        let (given, value) = &self.values[name];
        LearnError::InvalidParam {
            learner: self.learner,
            param: given.clone(),
            value: value.clone(),
            reason: reason.to_string(),
        }
    }

    /// Whether the param was given as exactly this word (for values like "auto").
    pub(crate) fn is(&self, name: &'static str, word: &str) -> bool {
        self.values
            .get(name)
            .is_some_and(|(_, v)| v.eq_ignore_ascii_case(word))
    }

    /// A real number; `check` returns why a parsed value is out of range.
    pub(crate) fn f64(
        &self,
        name: &'static str,
        default: f64,
        check: impl Fn(f64) -> Option<&'static str>,
    ) -> Result<f64, LearnError> {
        let Some((_, raw)) = self.values.get(name) else {
            return Ok(default);
        };
        let v: f64 = raw
            .parse()
            .map_err(|_| self.invalid(name, "not a number"))?;
        if !v.is_finite() {
            return Err(self.invalid(name, "must be finite"));
        }
        match check(v) {
            Some(reason) => Err(self.invalid(name, reason)),
            None => Ok(v),
        }
    }

    /// A yes/no value: true/false, 1/0, yes/no, on/off (any case).
    pub(crate) fn bool(&self, name: &'static str, default: bool) -> Result<bool, LearnError> {
        let Some((_, raw)) = self.values.get(name) else {
            return Ok(default);
        };
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.invalid(name, "must be true or false")),
        }
    }

    /// An integer; `check` returns why a parsed value is out of range.
    pub(crate) fn i64(
        &self,
        name: &'static str,
        default: i64,
        check: impl Fn(i64) -> Option<&'static str>,
    ) -> Result<i64, LearnError> {
        let Some((_, raw)) = self.values.get(name) else {
            return Ok(default);
        };
        let v: i64 = match raw.parse::<i64>() {
            Ok(v) => v,
            // Accept "100.0" or "1e3" as long as the value is a whole number.
            Err(_) => match raw.parse::<f64>() {
                Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9e15 => f as i64,
                Ok(_) => return Err(self.invalid(name, "not an integer")),
                Err(_) => return Err(self.invalid(name, "not a number")),
            },
        };
        match check(v) {
            Some(reason) => Err(self.invalid(name, reason)),
            None => Ok(v),
        }
    }
}

pub(crate) fn positive(v: f64) -> Option<&'static str> {
    (v <= 0.0).then_some("must be positive")
}

pub(crate) fn non_negative(v: f64) -> Option<&'static str> {
    (v < 0.0).then_some("must be non-negative")
}

pub(crate) fn fraction(v: f64) -> Option<&'static str> {
    (!(v > 0.0 && v <= 1.0)).then_some("must be in (0, 1]")
}

pub(crate) fn at_least(min: i64) -> impl Fn(i64) -> Option<&'static str> {
    move |v| {
        if v >= min {
            None
        } else if min == 1 {
            Some("must be at least 1")
        } else if min == 0 {
            Some("must be non-negative")
        } else {
            Some("too small")
        }
    }
}
