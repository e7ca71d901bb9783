//! Predicates: SQL boolean expressions over a dataset's columns (`age < 25 AND workclass IN
//! ('Private', '?')`), parsed with `sqlparser`, checked against the schema, and printed back in a
//! canonical form that parses to the same predicate. Evaluation over Arrow lives in gyre-data.

use crate::{ColumnKind, DatasetSchema, ROW_ID, closest};
use serde::{Deserialize, Serialize};
use sqlparser::ast::{BinaryOperator, Expr, InTarget, UnaryOperator, Value};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Literal {
    Number(f64),
    Text(String),
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            op => op,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Applies the comparison to an ordering of `value` relative to the literal.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }
}

/// A boolean expression over columns, in gyre's own closed form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Predicate {
    And(Vec<Predicate>),
    Or(Vec<Predicate>),
    Not(Box<Predicate>),
    Compare {
        column: String,
        op: CmpOp,
        value: Literal,
    },
    In {
        column: String,
        values: Vec<Literal>,
        negated: bool,
    },
    Between {
        column: String,
        low: Literal,
        high: Literal,
        negated: bool,
    },
    IsNull {
        column: String,
        negated: bool,
    },
    Like {
        column: String,
        pattern: String,
        negated: bool,
    },
    Const(bool),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PredicateError {
    /// Not SQL the parser reads: what it expected, where (a 1-based column of `text`), shown
    /// with the text and a caret under that column.
    #[error("cannot parse predicate: {message}{}", at_column(text, *column))]
    Syntax {
        text: String,
        message: String,
        column: Option<usize>,
    },
    #[error("column \"{name}\" not found{}", suggestion.as_ref().map(|s| format!("; did you mean \"{s}\"?")).unwrap_or_default())]
    UnknownColumn {
        name: String,
        suggestion: Option<String>,
    },
    #[error("type mismatch: column \"{column}\" is {kind}, but {literal} is {literal_kind}")]
    TypeMismatch {
        column: String,
        kind: &'static str,
        literal: String,
        literal_kind: &'static str,
    },
    #[error("unsupported in a predicate: {0}")]
    Unsupported(String),
}

/// ` at column N` and the text with a caret under it, for a syntax error's message.
fn at_column(text: &str, column: Option<usize>) -> String {
    match column {
        Some(c) => format!(
            " at column {c}\n    {text}\n    {}^",
            " ".repeat(text[..text.len().min(c.saturating_sub(1))].chars().count())
        ),
        None => String::new(),
    }
}

impl PredicateError {
    /// What to try, where a common mistake explains the error.
    pub fn hint(&self) -> Option<String> {
        const FORM: &str = "a predicate is a SQL boolean expression, e.g. \
            \"age < 25 AND sex = 'Female'\" (text in single quotes; AND, OR, NOT; IN (...), \
            BETWEEN a AND b, IS NULL, LIKE)";
        match self {
            PredicateError::Syntax { text, .. } if text.trim().is_empty() => {
                Some(format!("the predicate is empty: {FORM}"))
            }
            PredicateError::Syntax { text, .. } | PredicateError::Unsupported(text)
                if text.contains("&&") || text.contains("||") =>
            {
                Some("write AND and OR, not && and ||".into())
            }
            PredicateError::Syntax { text, .. } if text.contains('"') => Some(
                "text takes single quotes: sex = 'Female' (double quotes name a column)".into(),
            ),
            PredicateError::Syntax { .. } | PredicateError::Unsupported(_) => Some(FORM.into()),
            _ => None,
        }
    }
}

/// A parser error as gyre says it: sqlparser's message without its prefix, "the end" for EOF,
/// and the column of the token it stopped at.
pub(crate) fn syntax_error(text: &str, error: &sqlparser::parser::ParserError) -> PredicateError {
    let raw = error.to_string();
    let raw = raw.strip_prefix("sql parser error: ").unwrap_or(&raw);
    // The tokenizer's errors end with "at Line: L, Column: C".
    if let Some((message, place)) = raw.split_once(" at Line: ") {
        let column = place
            .split("Column: ")
            .nth(1)
            .and_then(|c| c.trim().parse().ok());
        return PredicateError::Syntax {
            text: text.into(),
            message: lowercase_first(message),
            column,
        };
    }
    // The parser's: "Expected: X, found: Y".
    let (message, found) = match raw.split_once(", found: ") {
        Some((expected, found)) => {
            let expected = expected.strip_prefix("Expected: ").unwrap_or(expected);
            let shown = if found == "EOF" {
                "the end".to_string()
            } else {
                format!("\"{found}\"")
            };
            (format!("expected {expected}, found {shown}"), Some(found))
        }
        None => (lowercase_first(raw), None),
    };
    let column = match found {
        Some("EOF") => Some(text.trim_end().chars().count() + 1),
        Some(found) => token_column(text, found),
        None => None,
    };
    PredicateError::Syntax {
        text: text.into(),
        message,
        column,
    }
}

/// The column of the first token of `text` that prints as `found`.
fn token_column(text: &str, found: &str) -> Option<usize> {
    let dialect = GenericDialect {};
    let tokens = sqlparser::tokenizer::Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .ok()?;
    tokens
        .iter()
        .find(|t| t.token.to_string() == found)
        .map(|t| t.span.start.column as usize)
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

impl Predicate {
    /// Parses SQL text. Names are not checked here; see [`Predicate::check`].
    pub fn parse(text: &str) -> Result<Predicate, PredicateError> {
        let dialect = GenericDialect {};
        let mut parser = Parser::new(&dialect)
            .try_with_sql(text)
            .map_err(|e| syntax_error(text, &e))?;
        let expr = parser.parse_expr().map_err(|e| syntax_error(text, &e))?;
        let rest = parser.peek_token();
        if rest.token != sqlparser::tokenizer::Token::EOF {
            return Err(PredicateError::Syntax {
                text: text.into(),
                message: format!(
                    "unexpected \"{}\" after the expression (join conditions with AND or OR)",
                    rest.token
                ),
                column: Some(rest.span.start.column as usize),
            });
        }
        from_expr(&expr)
    }

    /// Parses and checks against a schema in one step.
    pub fn parse_checked(text: &str, schema: &DatasetSchema) -> Result<Predicate, PredicateError> {
        let p = Predicate::parse(text)?;
        p.check(schema)?;
        Ok(p)
    }

    /// Every column exists, and every literal fits its column's kind.
    pub fn check(&self, schema: &DatasetSchema) -> Result<(), PredicateError> {
        match self {
            Predicate::And(ps) | Predicate::Or(ps) => ps.iter().try_for_each(|p| p.check(schema)),
            Predicate::Not(p) => p.check(schema),
            Predicate::Const(_) => Ok(()),
            Predicate::Compare { column, value, .. } => check_literal(schema, column, value, false),
            Predicate::In { column, values, .. } => values
                .iter()
                .try_for_each(|v| check_literal(schema, column, v, false)),
            Predicate::Between {
                column, low, high, ..
            } => {
                check_literal(schema, column, low, true)?;
                check_literal(schema, column, high, true)
            }
            Predicate::IsNull { column, .. } => column_kind(schema, column).map(|_| ()),
            Predicate::Like {
                column, pattern, ..
            } => check_literal(schema, column, &Literal::Text(pattern.clone()), false),
        }
    }

    /// The columns it mentions, in order of first mention.
    pub fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        self.visit_columns(&mut |c| {
            if !out.contains(&c) {
                out.push(c);
            }
        });
        out
    }

    fn visit_columns<'a>(&'a self, f: &mut dyn FnMut(&'a str)) {
        match self {
            Predicate::And(ps) | Predicate::Or(ps) => ps.iter().for_each(|p| p.visit_columns(f)),
            Predicate::Not(p) => p.visit_columns(f),
            Predicate::Const(_) => {}
            Predicate::Compare { column, .. }
            | Predicate::In { column, .. }
            | Predicate::Between { column, .. }
            | Predicate::IsNull { column, .. }
            | Predicate::Like { column, .. } => f(column),
        }
    }
}

/// The kind of a column as predicates see it (`row_id` is numeric).
pub fn column_kind(schema: &DatasetSchema, name: &str) -> Result<ColumnKind, PredicateError> {
    if name == ROW_ID {
        return Ok(ColumnKind::Numeric);
    }
    schema
        .column(name)
        .map(|c| c.kind)
        .ok_or_else(|| PredicateError::UnknownColumn {
            name: name.to_string(),
            suggestion: closest(name, schema.column_names().chain(std::iter::once(ROW_ID)))
                .map(String::from),
        })
}

fn check_literal(
    schema: &DatasetSchema,
    column: &str,
    value: &Literal,
    ordered: bool,
) -> Result<(), PredicateError> {
    let kind = column_kind(schema, column)?;
    let (ok, kind_name) = match kind {
        ColumnKind::Numeric | ColumnKind::Time => (matches!(value, Literal::Number(_)), "numeric"),
        ColumnKind::Categorical => (matches!(value, Literal::Text(_)), "categorical (text)"),
        ColumnKind::Boolean => (matches!(value, Literal::Bool(_)) && !ordered, "boolean"),
    };
    if ok {
        return Ok(());
    }
    let literal_kind = match value {
        Literal::Number(_) => "a number",
        Literal::Text(_) => "text",
        Literal::Bool(_) => "a boolean",
    };
    Err(PredicateError::TypeMismatch {
        column: column.to_string(),
        kind: kind_name,
        literal: literal_sql(value),
        literal_kind,
    })
}

fn column_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(id) => Some(id.value.clone()),
        Expr::Nested(inner) => column_of(inner),
        _ => None,
    }
}

fn literal_of(e: &Expr) -> Result<Option<Literal>, PredicateError> {
    Ok(match e {
        Expr::Value(v) => Some(match &v.value {
            Value::Number(n, _) => Literal::Number(
                n.parse::<f64>()
                    .map_err(|_| PredicateError::Unsupported(format!("the number {n}")))?,
            ),
            Value::SingleQuotedString(s) => Literal::Text(s.clone()),
            Value::Boolean(b) => Literal::Bool(*b),
            Value::Null => {
                return Err(PredicateError::Unsupported(
                    "comparison with NULL (use IS NULL or IS NOT NULL)".into(),
                ));
            }
            other => return Err(PredicateError::Unsupported(format!("the value {other}"))),
        }),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal_of(expr)? {
            Some(Literal::Number(n)) => Some(Literal::Number(-n)),
            _ => None,
        },
        Expr::Nested(inner) => literal_of(inner)?,
        _ => None,
    })
}

fn need_column(e: &Expr) -> Result<String, PredicateError> {
    column_of(e).ok_or_else(|| {
        PredicateError::Unsupported(format!(
            "\"{e}\" where a column name was expected (double-quote names with spaces)"
        ))
    })
}

fn need_literal(e: &Expr) -> Result<Literal, PredicateError> {
    literal_of(e)?.ok_or_else(|| {
        PredicateError::Unsupported(format!(
            "\"{e}\" where a value was expected (quote text as 'text')"
        ))
    })
}

fn from_expr(e: &Expr) -> Result<Predicate, PredicateError> {
    Ok(match e {
        Expr::Nested(inner) => from_expr(inner)?,
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => flatten(true, from_expr(left)?, from_expr(right)?),
            BinaryOperator::Or => flatten(false, from_expr(left)?, from_expr(right)?),
            _ => {
                let cmp = match op {
                    BinaryOperator::Eq => CmpOp::Eq,
                    BinaryOperator::NotEq => CmpOp::Ne,
                    BinaryOperator::Lt => CmpOp::Lt,
                    BinaryOperator::LtEq => CmpOp::Le,
                    BinaryOperator::Gt => CmpOp::Gt,
                    BinaryOperator::GtEq => CmpOp::Ge,
                    other => {
                        return Err(PredicateError::Unsupported(format!("the operator {other}")));
                    }
                };
                match (column_of(left), column_of(right)) {
                    (Some(column), None) => Predicate::Compare {
                        column,
                        op: cmp,
                        value: need_literal(right)?,
                    },
                    (None, Some(column)) => Predicate::Compare {
                        column,
                        op: cmp.flipped(),
                        value: need_literal(left)?,
                    },
                    (Some(_), Some(_)) => {
                        return Err(PredicateError::Unsupported(
                            "comparing two columns (compare a column with a value; quote text as 'text')"
                                .into(),
                        ));
                    }
                    (None, None) => {
                        return Err(PredicateError::Unsupported(format!(
                            "\"{e}\" compares no column"
                        )));
                    }
                }
            }
        },
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => Predicate::Not(Box::new(from_expr(expr)?)),
        Expr::In {
            expr,
            target: InTarget::List(list),
            negated,
            ..
        } => Predicate::In {
            column: need_column(expr)?,
            values: list.iter().map(need_literal).collect::<Result<_, _>>()?,
            negated: *negated,
        },
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => Predicate::Between {
            column: need_column(expr)?,
            low: need_literal(low)?,
            high: need_literal(high)?,
            negated: *negated,
        },
        Expr::IsNull(expr) => Predicate::IsNull {
            column: need_column(expr)?,
            negated: false,
        },
        Expr::IsNotNull(expr) => Predicate::IsNull {
            column: need_column(expr)?,
            negated: true,
        },
        Expr::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => match need_literal(pattern)? {
            Literal::Text(p) => Predicate::Like {
                column: need_column(expr)?,
                pattern: p,
                negated: *negated,
            },
            _ => {
                return Err(PredicateError::Unsupported(
                    "LIKE needs a text pattern".into(),
                ));
            }
        },
        Expr::Value(v) if matches!(v.value, Value::Boolean(_)) => {
            Predicate::Const(matches!(v.value, Value::Boolean(true)))
        }
        Expr::Identifier(id) => {
            return Err(PredicateError::Unsupported(format!(
                "a bare column \"{}\" (write a comparison such as {} = TRUE)",
                id.value, id.value
            )));
        }
        other => return Err(PredicateError::Unsupported(format!("\"{other}\""))),
    })
}

/// `a AND (b AND c)` becomes one `And` of three, so printing round-trips to the same value.
fn flatten(and: bool, l: Predicate, r: Predicate) -> Predicate {
    let mut items = Vec::new();
    for p in [l, r] {
        match (and, p) {
            (true, Predicate::And(ps)) | (false, Predicate::Or(ps)) => items.extend(ps),
            (_, p) => items.push(p),
        }
    }
    if and {
        Predicate::And(items)
    } else {
        Predicate::Or(items)
    }
}

/// A column name as SQL: bare when it is a plain identifier, double-quoted otherwise.
pub fn ident_sql(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_keyword(name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn is_keyword(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "and", "or", "not", "in", "is", "null", "between", "like", "true", "false", "select",
        "from", "where", "case", "when", "then", "else", "end", "as", "escape", "ilike",
    ];
    WORDS.contains(&name.to_ascii_lowercase().as_str())
}

pub fn literal_sql(v: &Literal) -> String {
    match v {
        Literal::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 1e15 {
                format!("{}", *n as i64)
            } else {
                format!("{n}")
            }
        }
        Literal::Text(s) => format!("'{}'", s.replace('\'', "''")),
        Literal::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not = |n: bool| if n { "NOT " } else { "" };
        match self {
            Predicate::And(ps) | Predicate::Or(ps) => {
                let sep = if matches!(self, Predicate::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts: Vec<String> = ps
                    .iter()
                    .map(|p| match p {
                        Predicate::And(_) | Predicate::Or(_) => format!("({p})"),
                        _ => p.to_string(),
                    })
                    .collect();
                f.write_str(&parts.join(sep))
            }
            Predicate::Not(p) => write!(f, "NOT ({p})"),
            Predicate::Const(b) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
            Predicate::Compare { column, op, value } => {
                write!(
                    f,
                    "{} {} {}",
                    ident_sql(column),
                    op.as_str(),
                    literal_sql(value)
                )
            }
            Predicate::In {
                column,
                values,
                negated,
            } => {
                let vs: Vec<String> = values.iter().map(literal_sql).collect();
                write!(
                    f,
                    "{} {}IN ({})",
                    ident_sql(column),
                    not(*negated),
                    vs.join(", ")
                )
            }
            Predicate::Between {
                column,
                low,
                high,
                negated,
            } => write!(
                f,
                "{} {}BETWEEN {} AND {}",
                ident_sql(column),
                not(*negated),
                literal_sql(low),
                literal_sql(high)
            ),
            Predicate::IsNull { column, negated } => {
                write!(f, "{} IS {}NULL", ident_sql(column), not(*negated))
            }
            Predicate::Like {
                column,
                pattern,
                negated,
            } => write!(
                f,
                "{} {}LIKE {}",
                ident_sql(column),
                not(*negated),
                literal_sql(&Literal::Text(pattern.clone()))
            ),
        }
    }
}

/// SQL LIKE: `%` any run of characters, `_` exactly one; case-sensitive.
pub fn like_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative wildcard matching with backtracking to the last `%`.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ColumnRole, ColumnSchema, Task};

    fn schema() -> DatasetSchema {
        let col = |name: &str, kind| ColumnSchema {
            name: name.into(),
            kind,
            role: ColumnRole::Feature,
            categories: vec![],
        };
        DatasetSchema {
            columns: vec![
                col("age", ColumnKind::Numeric),
                col("workclass", ColumnKind::Categorical),
                col("native country", ColumnKind::Categorical),
                col("flag", ColumnKind::Boolean),
            ],
            target: "y".into(),
            task: Task::Binary,
            classes: vec![],
            id_column: None,
            time_column: None,
            positive: None,
        }
    }

    #[test]
    fn parses_the_supported_forms_and_prints_them_back() {
        for text in [
            "age < 25 AND workclass IN ('Private', '?')",
            "age IS NULL",
            "NOT (age >= 30 OR workclass = 'Self''s')",
            "age BETWEEN 20 AND 30.5",
            "age NOT BETWEEN -1 AND 2",
            "workclass NOT LIKE 'Self%'",
            "\"native country\" != 'United-States'",
            "flag = TRUE AND row_id < 100",
            "workclass IS NOT NULL",
        ] {
            let p = Predicate::parse_checked(text, &schema()).unwrap();
            let printed = p.to_string();
            assert_eq!(
                Predicate::parse(&printed).unwrap(),
                p,
                "{text} -> {printed}"
            );
        }
    }

    #[test]
    fn literal_first_comparisons_flip() {
        assert_eq!(
            Predicate::parse("25 > age").unwrap(),
            Predicate::parse("age < 25").unwrap()
        );
    }

    #[test]
    fn errors_name_the_column_and_the_wrong_side() {
        let e = Predicate::parse_checked("agee < 3", &schema()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "column \"agee\" not found; did you mean \"age\"?"
        );
        let e = Predicate::parse_checked("age = 'old'", &schema()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "type mismatch: column \"age\" is numeric, but 'old' is text"
        );
        let e = Predicate::parse_checked("workclass = 3", &schema()).unwrap_err();
        assert!(e.to_string().contains("categorical"), "{e}");
        assert!(matches!(
            Predicate::parse("age <"),
            Err(PredicateError::Syntax { .. })
        ));
        assert!(Predicate::parse("age < 3 extra").is_err());
        assert!(Predicate::parse("age = NULL").is_err());
    }

    /// Issue 25: a syntax error says what was expected, where (a caret under the column), and
    /// what to try, not the parser's raw text.
    #[test]
    fn syntax_errors_point_at_the_place_and_hint() {
        let e = Predicate::parse("age <").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot parse predicate: expected an expression, found the end at column 6\n    age <\n         ^"
        );
        assert!(e.hint().unwrap().contains("single quotes"), "{e:?}");
        let e = Predicate::parse("age < 3 extra").unwrap_err();
        assert!(
            e.to_string().contains("\"extra\" after the expression"),
            "{e}"
        );
        assert!(e.to_string().contains("at column 9"), "{e}");
        let e = Predicate::parse("age IN (1, 2").unwrap_err();
        assert!(
            e.to_string()
                .contains("expected ), found the end at column 13"),
            "{e}"
        );
        let e = Predicate::parse("sex = 'Female").unwrap_err();
        assert!(
            e.to_string()
                .contains("unterminated string literal at column 7"),
            "{e}"
        );
        let e = Predicate::parse("age > 3 && age < 9").unwrap_err();
        assert_eq!(e.hint().unwrap(), "write AND and OR, not && and ||");
        let e = Predicate::parse("  ").unwrap_err();
        assert!(
            e.hint().unwrap().starts_with("the predicate is empty"),
            "{e:?}"
        );
        let e = Predicate::parse("age < 3 AND ").unwrap_err();
        assert!(e.to_string().contains("found the end at column 12"), "{e}");
        let e = Predicate::parse("age < 3 AND AND sex = 'x'").unwrap_err();
        assert!(
            e.to_string().contains("\"sex\" after the expression"),
            "{e}"
        );
        assert!(e.to_string().contains("at column 17"), "{e}");
    }

    #[test]
    fn like_wildcards() {
        assert!(like_matches("Self%", "Self-emp-inc"));
        assert!(like_matches("%emp%", "Self-emp-inc"));
        assert!(like_matches("S_lf%", "Self"));
        assert!(!like_matches("Self", "Self-emp"));
        assert!(like_matches("%", ""));
    }
}
