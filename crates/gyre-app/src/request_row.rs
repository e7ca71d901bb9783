//! One row of a prediction request as the server reads it: its fields, found by the hash of
//! their names, values borrowed from the request body where JSON allows (a string without
//! escapes), and its JSON text as sent, which is what the prediction log keeps. Reading rows this
//! way instead of into `serde_json::Map`s saves a tree of owned keys and values per row on the
//! serving path. The hash is FxHash, unseeded: names made to collide cost a client a scan of
//! its own row's fields per lookup, about what sorting the row by name cost.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A field's value. Arrays and objects are `Other`: no feature takes them.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Null,
    Bool(bool),
    Number(f64),
    Text(Cow<'a, str>),
    Other,
}

impl FieldValue<'_> {
    /// Booleans read as 0/1; anything but a number or a boolean is NaN (missing).
    pub fn number(&self) -> f64 {
        match self {
            FieldValue::Number(x) => *x,
            FieldValue::Bool(b) => f64::from(u8::from(*b)),
            _ => f64::NAN,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            FieldValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// One request row.
#[derive(Debug, Clone)]
pub struct RequestRow<'a> {
    /// Each field with the hash of its name, sorted by hash (stably: a name sent twice keeps its
    /// order), for lookups in log time that compare integers, not names (sorting and searching
    /// by name was 6% of the server's CPU time at saturation, in string comparisons).
    fields: Vec<(u64, Cow<'a, str>, FieldValue<'a>)>,
    /// The row's JSON text, as sent (valid JSON by its type, so the log keeps it as JSON).
    pub json: &'a RawValue,
}

impl<'a> RequestRow<'a> {
    /// Reads a row from its JSON text, which must be an object.
    pub fn parse(json: &'a RawValue) -> Result<RequestRow<'a>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json.get());
        let mut fields = de.deserialize_map(FieldsVisitor)?;
        de.end()?;
        fields.sort_by_key(|f| f.0);
        Ok(RequestRow { fields, json })
    }

    /// The value sent for `name` (the last one, if sent twice, as a JSON object reader would).
    pub fn get(&self, name: &str) -> Option<&FieldValue<'a>> {
        self.lookup(name_hash(name), name)
    }

    /// How many fields were sent (a name sent twice counts twice).
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The names sent, each once, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut seen = rustc_hash::FxHashSet::default();
        self.fields
            .iter()
            .map(|f| &*f.1)
            .filter(move |n| seen.insert(*n))
    }

    /// [`RequestRow::get`] with the name's hash computed once, by whoever asks every request.
    pub fn get_named(&self, name: &FieldName) -> Option<&FieldValue<'a>> {
        self.lookup(name.hash, &name.name)
    }

    fn lookup(&self, h: u64, name: &str) -> Option<&FieldValue<'a>> {
        let after = self.fields.partition_point(|f| f.0 <= h);
        self.fields[..after]
            .iter()
            .rev()
            .take_while(|f| f.0 == h)
            .find(|f| f.1 == name)
            .map(|f| &f.2)
    }
}

/// A field name with its hash, for lookups in every request's row.
#[derive(Clone, Debug)]
pub struct FieldName {
    pub name: String,
    hash: u64,
}

impl FieldName {
    pub fn new(name: &str) -> FieldName {
        FieldName {
            name: name.to_string(),
            hash: name_hash(name),
        }
    }
}

fn name_hash(name: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(name)
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Vec<(u64, Cow<'de, str>, FieldValue<'de>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of feature values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            fields.push((name_hash(&key), key, map.next_value::<Value<'de>>()?.0));
        }
        Ok(fields)
    }
}

/// A string, borrowed when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

struct Value<'a>(FieldValue<'a>);

impl<'de> de::Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value<'de>, E> {
                Ok(Value(FieldValue::Null))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value<'de>, E> {
                Ok(Value(FieldValue::Bool(b)))
            }
            fn visit_i64<E: de::Error>(self, x: i64) -> Result<Value<'de>, E> {
                Ok(Value(FieldValue::Number(x as f64)))
            }
            fn visit_u64<E: de::Error>(self, x: u64) -> Result<Value<'de>, E> {
                Ok(Value(FieldValue::Number(x as f64)))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value<'de>, E> {
                Ok(Value(FieldValue::Number(x)))
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Value<'de>, E> {
                Ok(Value(FieldValue::Text(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Value<'de>, E> {
                Ok(Value(FieldValue::Text(Cow::Owned(s.to_string()))))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Value<'de>, E> {
                Ok(Value(FieldValue::Text(Cow::Owned(s))))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Value(FieldValue::Other))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Value(FieldValue::Other))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a field reads as, from serde_json's own parse: the oracle the tests compare with.
    fn expected(v: &serde_json::Value) -> FieldValue<'_> {
        match v {
            serde_json::Value::Null => FieldValue::Null,
            serde_json::Value::Bool(b) => FieldValue::Bool(*b),
            serde_json::Value::Number(x) => FieldValue::Number(x.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => FieldValue::Text(Cow::Borrowed(s)),
            _ => FieldValue::Other,
        }
    }

    /// A row from JSON text, as the server reads it (the text checked as JSON first).
    fn parse(json: &str) -> Result<RequestRow<'_>, serde_json::Error> {
        serde_json::from_str::<&RawValue>(json).and_then(RequestRow::parse)
    }

    #[test]
    fn reads_every_kind_and_borrows_plain_strings() {
        let json = r#"{"age": 39, "w": -1.5e2, "big": 18446744073709551615, "sex": "Male",
            "esc": "a\"b", "ok": true, "gone": null, "arr": [1, {"x": 2}], "obj": {"y": [3]}}"#;
        let row = parse(json).unwrap();
        assert_eq!(row.json.get(), json);
        assert_eq!(row.get("age"), Some(&FieldValue::Number(39.0)));
        assert_eq!(row.get("w"), Some(&FieldValue::Number(-150.0)));
        assert_eq!(row.get("big"), Some(&FieldValue::Number(u64::MAX as f64)));
        assert!(matches!(
            row.get("sex"),
            Some(FieldValue::Text(Cow::Borrowed("Male")))
        ));
        assert_eq!(row.get("esc").and_then(|v| v.text()), Some("a\"b"));
        assert_eq!(row.get("ok").map(|v| v.number()), Some(1.0));
        assert_eq!(row.get("gone"), Some(&FieldValue::Null));
        assert_eq!(row.get("arr"), Some(&FieldValue::Other));
        assert_eq!(row.get("obj"), Some(&FieldValue::Other));
        assert_eq!(row.get("absent"), None);
    }

    #[test]
    fn agrees_with_serde_json_values_and_rejects_what_is_not_an_object() {
        let json = r#"{"z": 0, "a": 1, "b": "x", "a": 2, "": 5, "aa": null}"#;
        let row = parse(json).unwrap();
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).unwrap();
        for k in ["a", "b", "z", "", "aa", "ab", "0", "zz"] {
            assert_eq!(row.get(k), map.get(k).map(expected).as_ref(), "{k:?}");
            assert_eq!(row.get_named(&FieldName::new(k)), row.get(k), "{k:?}");
        }
        // A wide row where 100 names are sent twice or three times: the last value wins.
        let wide = format!(
            "{{{}}}",
            (0..300)
                .map(|i| format!("\"k{}\": {i}", i % 200 * (i % 3 + 1) % 200))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let row = parse(&wide).unwrap();
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&wide).unwrap();
        for k in (0..210).map(|i| format!("k{i}")) {
            assert_eq!(row.get(&k), map.get(&k).map(expected).as_ref(), "{k:?}");
        }
        for bad in ["[1, 2]", "3", "\"s\"", "{\"a\": }", "{\"a\": 1} x"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
