//! Column kinds: every raw column becomes numeric (Float64), boolean, or categorical (a dictionary
//! with sorted values, so a category's code is stable and equals its index in the schema).

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int32Array, StringArray,
};
use arrow_schema::DataType;
use gyre_core::ColumnKind;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// The text values read as missing. By default "", "?", "NA" and "null" (after trimming spaces).
/// A short list compared directly: this check runs once per cell, and hashing cost more than
/// the whole comparison.
#[derive(Clone, Debug)]
pub struct NaTokens(Vec<String>);

impl Default for NaTokens {
    fn default() -> Self {
        NaTokens::new(["?", "NA", "null"].iter().map(|s| s.to_string()))
    }
}

impl NaTokens {
    /// Replaces the defaults with the given tokens ("" always stays missing).
    pub fn new<I: IntoIterator<Item = String>>(tokens: I) -> Self {
        let mut v: Vec<String> = tokens.into_iter().map(|t| t.trim().to_string()).collect();
        v.push(String::new());
        v.sort();
        v.dedup();
        NaTokens(v)
    }

    pub fn is_missing(&self, v: &str) -> bool {
        self.0.iter().any(|t| t == v)
    }

    pub fn tokens(&self) -> &[String] {
        &self.0
    }
}

/// A typed column.
pub struct Converted {
    pub kind: ColumnKind,
    pub array: ArrayRef,
    /// Sorted category values (categorical only).
    pub categories: Vec<String>,
}

/// The first value that stopped a requested conversion: its row (0-based over the whole table) and text.
#[derive(Debug)]
pub struct BadCell {
    pub row: usize,
    pub value: String,
}

/// What the raw column holds, before any decision: text, or an already-typed Parquet column.
enum Raw<'a> {
    Text(Vec<StringArray>),
    Typed(&'a [ArrayRef]),
}

fn classify(chunks: &[ArrayRef]) -> Raw<'_> {
    let dt = chunks.first().map(|a| a.data_type().clone());
    match dt {
        Some(DataType::Utf8) => Raw::Text(
            chunks
                .iter()
                .map(|a| a.as_string::<i32>().clone())
                .collect(),
        ),
        Some(DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _)) => Raw::Text(
            chunks
                .iter()
                .map(|a| {
                    arrow_cast::cast(a, &DataType::Utf8)
                        .expect("string-like arrays cast to Utf8")
                        .as_string::<i32>()
                        .clone()
                })
                .collect(),
        ),
        _ => Raw::Typed(chunks),
    }
}

/// Infers the kind of a column and converts it.
pub fn infer(chunks: &[ArrayRef], na: &NaTokens) -> Converted {
    match classify(chunks) {
        Raw::Text(strings) => {
            let mut numeric = true;
            let mut boolean = true;
            let mut any = false;
            for arr in &strings {
                for v in arr.iter().flatten() {
                    let v = v.trim();
                    if na.is_missing(v) {
                        continue;
                    }
                    any = true;
                    if numeric && v.parse::<f64>().is_err() {
                        numeric = false;
                    }
                    if boolean
                        && !(v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"))
                    {
                        boolean = false;
                    }
                    if !numeric && !boolean {
                        break;
                    }
                }
            }
            if any && numeric {
                text_to_numeric(&strings, na).expect("checked numeric")
            } else if any && boolean {
                text_to_boolean(&strings, na)
            } else {
                text_to_categorical(&strings, na)
            }
        }
        Raw::Typed(chunks) => typed(chunks),
    }
}

/// Converts a column to numbers, naming the first cell that is not one.
pub fn to_numeric(chunks: &[ArrayRef], na: &NaTokens) -> Result<Converted, BadCell> {
    match classify(chunks) {
        Raw::Text(strings) => text_to_numeric(&strings, na),
        Raw::Typed(chunks) => {
            let c = typed(chunks);
            match c.kind {
                ColumnKind::Numeric => Ok(c),
                _ => Err(BadCell {
                    row: 0,
                    value: format!("a {} column", c.kind.as_str()),
                }),
            }
        }
    }
}

/// Converts a column to categories, whatever it held (numbers print without a trailing ".0").
pub fn to_categorical(chunks: &[ArrayRef], na: &NaTokens) -> Converted {
    match classify(chunks) {
        Raw::Text(strings) => text_to_categorical(&strings, na),
        Raw::Typed(chunks) => {
            let c = typed(chunks);
            let strings: Vec<StringArray> = match c.kind {
                ColumnKind::Numeric => {
                    let f = c.array.as_primitive::<arrow_array::types::Float64Type>();
                    vec![f.iter().map(|v| v.map(format_number)).collect()]
                }
                ColumnKind::Boolean => {
                    let b = c.array.as_boolean();
                    vec![b.iter().map(|v| v.map(|b| b.to_string())).collect()]
                }
                _ => return c,
            };
            text_to_categorical(&strings, na)
        }
    }
}

/// Integers print as integers (`1`, not `1.0`), so numeric class labels read naturally.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn text_to_numeric(strings: &[StringArray], na: &NaTokens) -> Result<Converted, BadCell> {
    let total: usize = strings.iter().map(|a| a.len()).sum();
    let mut out: Vec<Option<f64>> = Vec::with_capacity(total);
    let mut row = 0;
    for arr in strings {
        for v in arr.iter() {
            match v.map(str::trim) {
                None => out.push(None),
                Some(v) if na.is_missing(v) => out.push(None),
                Some(v) => match v.parse::<f64>() {
                    Ok(x) => out.push(Some(x)),
                    Err(_) => {
                        return Err(BadCell {
                            row,
                            value: v.to_string(),
                        });
                    }
                },
            }
            row += 1;
        }
    }
    Ok(Converted {
        kind: ColumnKind::Numeric,
        array: Arc::new(Float64Array::from(out)),
        categories: Vec::new(),
    })
}

fn text_to_boolean(strings: &[StringArray], na: &NaTokens) -> Converted {
    let out: BooleanArray = strings
        .iter()
        .flat_map(|a| a.iter())
        .map(|v| {
            v.map(str::trim)
                .filter(|v| !na.is_missing(v))
                .map(|v| v.eq_ignore_ascii_case("true"))
        })
        .collect();
    Converted {
        kind: ColumnKind::Boolean,
        array: Arc::new(out),
        categories: Vec::new(),
    }
}

fn text_to_categorical(strings: &[StringArray], na: &NaTokens) -> Converted {
    // First assign codes in order of appearance, then renumber by sorted value.
    let mut index: FxHashMap<&str, i32> = FxHashMap::default();
    let mut seen: Vec<&str> = Vec::new();
    let total: usize = strings.iter().map(|a| a.len()).sum();
    let mut codes: Vec<Option<i32>> = Vec::with_capacity(total);
    for arr in strings {
        for v in arr.iter() {
            let code = v.map(str::trim).filter(|v| !na.is_missing(v)).map(|v| {
                *index.entry(v).or_insert_with(|| {
                    seen.push(v);
                    (seen.len() - 1) as i32
                })
            });
            codes.push(code);
        }
    }
    let mut order: Vec<usize> = (0..seen.len()).collect();
    order.sort_by(|&a, &b| seen[a].cmp(seen[b]));
    let mut remap = vec![0i32; seen.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old] = new as i32;
    }
    let categories: Vec<String> = order.iter().map(|&i| seen[i].to_string()).collect();
    let keys: Int32Array = codes
        .into_iter()
        .map(|c| c.map(|c| remap[c as usize]))
        .collect();
    let values = StringArray::from_iter_values(categories.iter());
    let dict = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values))
        .expect("keys index the dictionary");
    Converted {
        kind: ColumnKind::Categorical,
        array: Arc::new(dict),
        categories,
    }
}

/// An already-typed (Parquet) column: numbers and times become Float64, booleans stay, and
/// anything else is read as text and becomes categories.
fn typed(chunks: &[ArrayRef]) -> Converted {
    let dt = chunks[0].data_type().clone();
    let concat = |parts: &[ArrayRef]| {
        let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        arrow_select::concat::concat(&refs).expect("chunks of one column share a type")
    };
    if dt == DataType::Boolean {
        return Converted {
            kind: ColumnKind::Boolean,
            array: concat(chunks),
            categories: Vec::new(),
        };
    }
    if dt.is_numeric() || dt.is_temporal() {
        let via = match dt {
            DataType::Date32 => Some(DataType::Int32),
            d if d.is_temporal() => Some(DataType::Int64),
            _ => None,
        };
        let as_f64: Vec<ArrayRef> = chunks
            .iter()
            .map(|a| {
                let a = match &via {
                    Some(t) => arrow_cast::cast(a, t).expect("times cast to integers"),
                    None => a.clone(),
                };
                arrow_cast::cast(&a, &DataType::Float64).expect("numbers cast to Float64")
            })
            .collect();
        return Converted {
            kind: ColumnKind::Numeric,
            array: concat(&as_f64),
            categories: Vec::new(),
        };
    }
    let strings: Vec<StringArray> = chunks
        .iter()
        .map(|a| {
            arrow_cast::cast(a, &DataType::Utf8)
                .map(|s| s.as_string::<i32>().clone())
                .unwrap_or_else(|_| StringArray::from(vec![None::<&str>; a.len()]))
        })
        .collect();
    text_to_categorical(&strings, &NaTokens::new(Vec::new()))
}

/// Sort keys for a time column: numbers as they are, text parsed as timestamps (nanoseconds).
pub fn time_keys(chunks: &[ArrayRef], na: &NaTokens) -> Result<(Vec<f64>, ArrayRef), BadCell> {
    if let Raw::Text(strings) = classify(chunks) {
        if let Ok(c) = text_to_numeric(&strings, na) {
            return numeric_keys(c);
        }
        let mut keys = Vec::new();
        let mut row = 0;
        for arr in &strings {
            for v in arr.iter() {
                let v = v.map(str::trim).unwrap_or("");
                if na.is_missing(v) {
                    return Err(BadCell {
                        row,
                        value: "a missing time".into(),
                    });
                }
                match parse_timestamp(v) {
                    Some(ns) => keys.push(ns),
                    None => {
                        return Err(BadCell {
                            row,
                            value: v.to_string(),
                        });
                    }
                }
                row += 1;
            }
        }
        let f: Vec<f64> = keys.iter().map(|&k| k as f64).collect();
        let array: ArrayRef = Arc::new(arrow_array::TimestampNanosecondArray::from(keys));
        return Ok((f, array));
    }
    // Typed times (Parquet timestamps and dates) stay times, in nanoseconds, so features can be
    // derived from them (EXTRACT) as from parsed text.
    let dt = chunks.first().map(|a| a.data_type().clone());
    if let Some(DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64) = dt {
        let ns = DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, None);
        let mut keys = Vec::new();
        for a in chunks {
            let cast = arrow_cast::cast(a, &ns).map_err(|e| BadCell {
                row: keys.len(),
                value: format!("a time out of range ({e})"),
            })?;
            for v in cast.as_primitive::<arrow_array::types::TimestampNanosecondType>() {
                match v {
                    Some(v) => keys.push(v),
                    None => {
                        return Err(BadCell {
                            row: keys.len(),
                            value: "a missing time".into(),
                        });
                    }
                }
            }
        }
        let f: Vec<f64> = keys.iter().map(|&k| k as f64).collect();
        let array: ArrayRef = Arc::new(arrow_array::TimestampNanosecondArray::from(keys));
        return Ok((f, array));
    }
    let c = typed(chunks);
    if c.kind != ColumnKind::Numeric {
        return Err(BadCell {
            row: 0,
            value: format!("a {} column", c.kind.as_str()),
        });
    }
    numeric_keys(c)
}

/// RFC 3339-like timestamps, also without seconds (`2001-01-01T00:01`) or time (`2001-01-01`).
/// The common zone-less forms are parsed by hand (they dominate time-column imports); anything
/// else goes to arrow's parser.
pub fn parse_timestamp(v: &str) -> Option<i64> {
    use arrow_cast::parse::string_to_timestamp_nanos as parse;
    parse_naive(v.as_bytes())
        .or_else(|| parse(v).ok())
        .or_else(|| parse(&format!("{v}:00")).ok())
        .or_else(|| parse(&format!("{v}T00:00:00")).ok())
}

/// `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM` or `HH:MM:SS`, as UTC nanoseconds.
fn parse_naive(b: &[u8]) -> Option<i64> {
    let num = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if !(b.len() == 10 || b.len() == 16 || b.len() == 19) || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = 0;
    if b.len() > 10 {
        if !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' {
            return None;
        }
        let (h, mi) = (num(&b[11..13])?, num(&b[14..16])?);
        let s = if b.len() == 19 {
            if b[16] != b':' {
                return None;
            }
            num(&b[17..19])?
        } else {
            0
        };
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
        secs = h * 3600 + mi * 60 + s;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + secs) * 1_000_000_000)
}

fn numeric_keys(c: Converted) -> Result<(Vec<f64>, ArrayRef), BadCell> {
    let f = c.array.as_primitive::<arrow_array::types::Float64Type>();
    let mut keys = Vec::with_capacity(f.len());
    for (row, v) in f.iter().enumerate() {
        match v {
            Some(v) if v.is_finite() => keys.push(v),
            _ => {
                return Err(BadCell {
                    row,
                    value: "a missing time".into(),
                });
            }
        }
    }
    Ok((keys, c.array))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(values: &[&str]) -> Vec<ArrayRef> {
        vec![Arc::new(StringArray::from(values.to_vec())) as ArrayRef]
    }

    #[test]
    fn numeric_with_missing_tokens() {
        let c = infer(
            &text(&["1", " 2.5", "?", "NA", "", "null"]),
            &NaTokens::default(),
        );
        assert_eq!(c.kind, ColumnKind::Numeric);
        assert_eq!(c.array.null_count(), 4);
    }

    #[test]
    fn booleans_and_categories() {
        let b = infer(&text(&["true", "False", "?"]), &NaTokens::default());
        assert_eq!(b.kind, ColumnKind::Boolean);
        let c = infer(&text(&["b", "a", "b", "?"]), &NaTokens::default());
        assert_eq!(c.kind, ColumnKind::Categorical);
        assert_eq!(c.categories, vec!["a", "b"]);
        let d = c.array.as_dictionary::<Int32Type>();
        assert_eq!(d.keys().values().to_vec()[..3], [1, 0, 1]);
        assert!(d.is_null(3));
    }

    #[test]
    fn custom_na_tokens_replace_defaults() {
        let c = infer(&text(&["1", "?", "-"]), &NaTokens::new(["-".to_string()]));
        assert_eq!(c.kind, ColumnKind::Categorical, "? is a value now");
    }

    #[test]
    fn numeric_conversion_names_bad_cell() {
        let e = to_numeric(&text(&["1", "2", "x"]), &NaTokens::default())
            .err()
            .unwrap();
        assert_eq!((e.row, e.value.as_str()), (2, "x"));
    }

    /// Parquet timestamps and dates stay times (nanoseconds), as parsed text does.
    #[test]
    fn typed_times_stay_times() {
        let micros: ArrayRef = Arc::new(arrow_array::TimestampMicrosecondArray::from(vec![
            978_307_260_000_000,
            0,
        ]));
        let (keys, array) = time_keys(&[micros], &NaTokens::default()).unwrap();
        assert_eq!(keys, vec![978_307_260e9, 0.0]);
        assert_eq!(
            array
                .as_primitive::<arrow_array::types::TimestampNanosecondType>()
                .value(0),
            parse_timestamp("2001-01-01T00:01").unwrap()
        );
        let days: ArrayRef = Arc::new(arrow_array::Date32Array::from(vec![1]));
        let (keys, _) = time_keys(&[days], &NaTokens::default()).unwrap();
        assert_eq!(keys, vec![86_400e9]);
    }

    #[test]
    fn naive_timestamps_agree_with_arrow() {
        for v in [
            "2001-01-01T00:01",
            "1996-05-07 13:45:10",
            "2024-02-29",
            "1969-12-31T23:59",
        ] {
            let arrow = arrow_cast::parse::string_to_timestamp_nanos(v)
                .or_else(|_| arrow_cast::parse::string_to_timestamp_nanos(&format!("{v}:00")))
                .or_else(|_| arrow_cast::parse::string_to_timestamp_nanos(&format!("{v}T00:00:00")))
                .unwrap();
            assert_eq!(parse_naive(v.as_bytes()), Some(arrow), "{v}");
        }
        assert_eq!(parse_naive(b"2001-13-01"), None);
        assert_eq!(
            parse_timestamp("2001-01-01T00:01:00Z"),
            Some(60_000_000_000 + 978_307_200_000_000_000)
        );
    }

    #[test]
    fn numbers_as_labels_print_as_integers() {
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(0.5), "0.5");
    }
}
