//! Scalar expressions for derived features (`gyre edit add-feature NAME --expr EXPR`): the
//! predicate language (comparisons, AND/OR/NOT, IN, BETWEEN, IS NULL, LIKE) extended with
//! arithmetic, CASE, COALESCE, CAST, a few numeric and text functions and EXTRACT from a time
//! column. SQL text is parsed by sqlparser into this closed enum, checked against a schema (its
//! result kind inferred, each error naming the part at fault) and printed back canonically, so
//! the text stored with an edit reads the same wherever it is shown. gyre-data evaluates it.

use crate::predicate::{CmpOp, Literal};
use crate::predicate::{ident_sql, literal_sql};
use crate::schema::{ColumnKind, DatasetSchema};
use sqlparser::ast::{
    BinaryOperator, CastKind, DataType as SqlType, DateTimeField, Expr as Sql, Function,
    FunctionArg, FunctionArgExpr, FunctionArguments, UnaryOperator, Value,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use std::fmt;

/// What an expression gives per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExprKind {
    Numeric,
    Boolean,
    Text,
    /// A time column's value: only EXTRACT takes it.
    Time,
    /// A bare NULL: takes the kind of whatever it meets.
    Null,
}

impl ExprKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExprKind::Numeric => "numeric",
            ExprKind::Boolean => "boolean",
            ExprKind::Text => "text",
            ExprKind::Time => "a time",
            ExprKind::Null => "null",
        }
    }

    /// The column kind a feature of this kind is stored as.
    pub fn column_kind(self) -> Option<ColumnKind> {
        match self {
            ExprKind::Numeric | ExprKind::Null => Some(ColumnKind::Numeric),
            ExprKind::Boolean => Some(ColumnKind::Boolean),
            ExprKind::Text => Some(ColumnKind::Categorical),
            ExprKind::Time => None,
        }
    }

    fn of_column(kind: ColumnKind) -> ExprKind {
        match kind {
            ColumnKind::Numeric => ExprKind::Numeric,
            ColumnKind::Boolean => ExprKind::Boolean,
            ColumnKind::Categorical => ExprKind::Text,
            ColumnKind::Time => ExprKind::Time,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    /// Division by zero gives NULL.
    Div,
}

impl ArithOp {
    fn as_str(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

/// The functions an expression may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Coalesce,
    Abs,
    /// The natural log; NULL for values <= 0.
    Ln,
    /// ROUND(x) or ROUND(x, digits).
    Round,
    Floor,
    Least,
    Greatest,
    Lower,
    /// SUBSTR(text, start) or SUBSTR(text, start, length); `start` counts from 1.
    Substr,
    /// Characters in a text.
    Length,
}

impl Func {
    const ALL: [Func; 10] = [
        Func::Coalesce,
        Func::Abs,
        Func::Ln,
        Func::Round,
        Func::Floor,
        Func::Least,
        Func::Greatest,
        Func::Lower,
        Func::Substr,
        Func::Length,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Func::Coalesce => "COALESCE",
            Func::Abs => "ABS",
            Func::Ln => "LN",
            Func::Round => "ROUND",
            Func::Floor => "FLOOR",
            Func::Least => "LEAST",
            Func::Greatest => "GREATEST",
            Func::Lower => "LOWER",
            Func::Substr => "SUBSTR",
            Func::Length => "LENGTH",
        }
    }

    /// The fewest and most arguments.
    fn arity(self) -> (usize, usize) {
        match self {
            Func::Coalesce | Func::Least | Func::Greatest => (1, usize::MAX),
            Func::Round => (1, 2),
            Func::Substr => (2, 3),
            _ => (1, 1),
        }
    }
}

/// A part of a time, for EXTRACT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimePart {
    Hour,
    /// Day of the week, 0 = Sunday .. 6 = Saturday (PostgreSQL's `dow`).
    Dow,
    Day,
    Month,
    Year,
}

impl TimePart {
    pub fn as_str(self) -> &'static str {
        match self {
            TimePart::Hour => "HOUR",
            TimePart::Dow => "DOW",
            TimePart::Day => "DAY",
            TimePart::Month => "MONTH",
            TimePart::Year => "YEAR",
        }
    }
}

/// A scalar expression over a row's columns.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Column(String),
    Literal(Literal),
    Null,
    Neg(Box<Expr>),
    Arith {
        op: ArithOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Compare {
        op: CmpOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: String,
        negated: bool,
    },
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`; with an operand, each WHEN is compared
    /// with it for equality.
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Call {
        func: Func,
        args: Vec<Expr>,
    },
    /// To numeric, text or boolean; a value that does not convert gives NULL.
    Cast {
        expr: Box<Expr>,
        to: ExprKind,
    },
    Extract {
        part: TimePart,
        expr: Box<Expr>,
    },
}

/// What is wrong with an expression: the part at fault (as SQL) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error(transparent)]
    Syntax(#[from] crate::PredicateError),
    #[error("column \"{name}\" not found{}", suggestion.as_ref().map(|s| format!("; did you mean \"{s}\"?")).unwrap_or_default())]
    UnknownColumn {
        name: String,
        suggestion: Option<String>,
    },
    #[error("in {part}: {why}")]
    Type { part: String, why: String },
    #[error("unsupported in an expression: {0}")]
    Unsupported(String),
}

impl Expr {
    /// Parses SQL text; names and kinds are checked by [`Expr::check`].
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let dialect = GenericDialect {};
        let mut parser = Parser::new(&dialect)
            .try_with_sql(text)
            .map_err(|e| crate::predicate::syntax_error(text, &e))?;
        let sql = parser
            .parse_expr()
            .map_err(|e| crate::predicate::syntax_error(text, &e))?;
        let rest = parser.peek_token();
        if rest.token != sqlparser::tokenizer::Token::EOF {
            return Err(crate::PredicateError::Syntax {
                text: text.into(),
                message: format!("unexpected \"{}\" after the expression", rest.token),
                column: Some(rest.span.start.column as usize),
            }
            .into());
        }
        from_sql(&sql)
    }

    /// The columns it reads, each once, in order of first use.
    pub fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Column(c) = e
                && !out.contains(&c.as_str())
            {
                out.push(c);
            }
        });
        out
    }

    fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Column(_) | Expr::Literal(_) | Expr::Null => {}
            Expr::Neg(e) | Expr::Not(e) => e.visit(f),
            Expr::IsNull { expr, .. }
            | Expr::Like { expr, .. }
            | Expr::Cast { expr, .. }
            | Expr::Extract { expr, .. } => expr.visit(f),
            Expr::Arith { left, right, .. }
            | Expr::Compare { left, right, .. }
            | Expr::And(left, right)
            | Expr::Or(left, right) => {
                left.visit(f);
                right.visit(f);
            }
            Expr::In { expr, list, .. } => {
                expr.visit(f);
                list.iter().for_each(|e| e.visit(f));
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                expr.visit(f);
                low.visit(f);
                high.visit(f);
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    o.visit(f);
                }
                for (w, t) in whens {
                    w.visit(f);
                    t.visit(f);
                }
                if let Some(o) = otherwise {
                    o.visit(f);
                }
            }
            Expr::Call { args, .. } => args.iter().for_each(|e| e.visit(f)),
        }
    }

    /// Checks names and kinds against a schema; returns the kind of the result.
    pub fn check(&self, schema: &DatasetSchema) -> Result<ExprKind, ExprError> {
        use ExprKind::*;
        let bad = |why: String| ExprError::Type {
            part: self.to_string(),
            why,
        };
        // Two kinds that must agree (NULL agrees with anything).
        let unify = |a: ExprKind, b: ExprKind, what: &str| -> Result<ExprKind, ExprError> {
            match (a, b) {
                (Null, k) | (k, Null) => Ok(k),
                (a, b) if a == b => Ok(a),
                (a, b) => Err(bad(format!(
                    "{what} mix {} and {} values",
                    a.as_str(),
                    b.as_str()
                ))),
            }
        };
        let want = |e: &Expr, kinds: &[ExprKind], what: &str| -> Result<ExprKind, ExprError> {
            let k = e.check(schema)?;
            if k == Null || kinds.contains(&k) {
                Ok(k)
            } else {
                Err(ExprError::Type {
                    part: self.to_string(),
                    why: format!("{what}, but {e} is {}", k.as_str()),
                })
            }
        };
        Ok(match self {
            Expr::Column(name) => match schema.column(name) {
                Some(c) => ExprKind::of_column(c.kind),
                None => {
                    return Err(ExprError::UnknownColumn {
                        name: name.clone(),
                        suggestion: crate::closest(name, schema.column_names()).map(String::from),
                    });
                }
            },
            Expr::Literal(Literal::Number(_)) => Numeric,
            Expr::Literal(Literal::Text(_)) => Text,
            Expr::Literal(Literal::Bool(_)) => Boolean,
            Expr::Null => Null,
            Expr::Neg(e) => {
                want(e, &[Numeric], "minus takes a number")?;
                Numeric
            }
            Expr::Arith { op, left, right } => {
                let what = format!("{} takes numbers", op.as_str());
                want(left, &[Numeric], &what)?;
                want(right, &[Numeric], &what)?;
                Numeric
            }
            Expr::Compare { left, right, .. } => {
                let (l, r) = (left.check(schema)?, right.check(schema)?);
                if l == Time || r == Time {
                    return Err(bad(
                        "a time is compared only through EXTRACT (e.g. EXTRACT(hour FROM t) < 6)"
                            .into(),
                    ));
                }
                unify(l, r, "a comparison cannot")?;
                Boolean
            }
            Expr::And(l, r) | Expr::Or(l, r) => {
                want(l, &[Boolean], "AND and OR take true/false values")?;
                want(r, &[Boolean], "AND and OR take true/false values")?;
                Boolean
            }
            Expr::Not(e) => {
                want(e, &[Boolean], "NOT takes a true/false value")?;
                Boolean
            }
            Expr::IsNull { expr, .. } => {
                expr.check(schema)?;
                Boolean
            }
            Expr::In { expr, list, .. } => {
                let mut k = want(expr, &[Numeric, Text, Boolean], "IN takes a value")?;
                for e in list {
                    k = unify(k, e.check(schema)?, "IN cannot")?;
                }
                Boolean
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                let what = "BETWEEN takes numbers or texts";
                let k = want(expr, &[Numeric, Text], what)?;
                unify(k, want(low, &[Numeric, Text], what)?, "BETWEEN cannot")?;
                unify(k, want(high, &[Numeric, Text], what)?, "BETWEEN cannot")?;
                Boolean
            }
            Expr::Like { expr, .. } => {
                want(expr, &[Text], "LIKE takes text")?;
                Boolean
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let op = operand.as_ref().map(|o| o.check(schema)).transpose()?;
                let mut out = Null;
                for (w, t) in whens {
                    match op {
                        Some(o) => {
                            unify(o, w.check(schema)?, "CASE cannot compare")?;
                        }
                        None => {
                            want(w, &[Boolean], "WHEN takes a true/false condition")?;
                        }
                    }
                    out = unify(out, t.check(schema)?, "the branches of CASE")?;
                }
                if let Some(o) = otherwise {
                    out = unify(out, o.check(schema)?, "the branches of CASE")?;
                }
                out
            }
            Expr::Call { func, args } => {
                let (lo, hi) = func.arity();
                if args.len() < lo || args.len() > hi {
                    return Err(bad(format!(
                        "{} takes {}",
                        func.name(),
                        match (lo, hi) {
                            (l, h) if l == h =>
                                format!("{l} argument{}", if l > 1 { "s" } else { "" }),
                            (l, usize::MAX) => format!("at least {l} argument"),
                            (l, h) => format!("{l} to {h} arguments"),
                        }
                    )));
                }
                let takes = |kinds: &[ExprKind], what: &str| -> Result<(), ExprError> {
                    for a in args {
                        want(a, kinds, what)?;
                    }
                    Ok(())
                };
                match func {
                    Func::Coalesce => {
                        let mut k = Null;
                        for a in args {
                            k = unify(k, a.check(schema)?, "COALESCE cannot")?;
                        }
                        k
                    }
                    Func::Abs | Func::Ln | Func::Round | Func::Floor => {
                        takes(&[Numeric], &format!("{} takes numbers", func.name()))?;
                        Numeric
                    }
                    Func::Least | Func::Greatest => {
                        takes(&[Numeric], &format!("{} takes numbers", func.name()))?;
                        Numeric
                    }
                    Func::Lower => {
                        takes(&[Text], "LOWER takes text")?;
                        Text
                    }
                    Func::Length => {
                        takes(&[Text], "LENGTH takes text")?;
                        Numeric
                    }
                    Func::Substr => {
                        want(&args[0], &[Text], "SUBSTR takes text first")?;
                        for a in &args[1..] {
                            want(a, &[Numeric], "SUBSTR's start and length are numbers")?;
                        }
                        Text
                    }
                }
            }
            Expr::Cast { expr, .. } => {
                want(
                    expr,
                    &[Numeric, Text, Boolean],
                    "CAST takes a number, text or true/false",
                )?;
                match self {
                    Expr::Cast { to, .. } => *to,
                    _ => unreachable!("matched above"),
                }
            }
            Expr::Extract { expr, .. } => {
                want(
                    expr,
                    &[Time],
                    "EXTRACT takes the time column (--time-column at import)",
                )?;
                Numeric
            }
        })
    }

    /// Parses and checks in one step; returns the expression and its kind.
    pub fn parse_checked(
        text: &str,
        schema: &DatasetSchema,
    ) -> Result<(Expr, ExprKind), ExprError> {
        let e = Expr::parse(text)?;
        let k = e.check(schema)?;
        Ok((e, k))
    }
}

impl ExprError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ExprError::Syntax(e) => e.hint(),
            ExprError::Unsupported(_) | ExprError::Type { .. } => Some(format!(
                "an expression is SQL over the row's columns: + - * /, CASE WHEN .. THEN .. ELSE \
                 .. END, CAST(x AS DOUBLE|VARCHAR|BOOLEAN), EXTRACT(hour|dow|day|month|year FROM \
                 time), and {}",
                Func::ALL
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            ExprError::UnknownColumn { .. } => None,
        }
    }
}

fn unsupported(what: impl Into<String>) -> ExprError {
    ExprError::Unsupported(what.into())
}

fn boxed(e: &Sql) -> Result<Box<Expr>, ExprError> {
    Ok(Box::new(from_sql(e)?))
}

fn from_sql(e: &Sql) -> Result<Expr, ExprError> {
    Ok(match e {
        Sql::Nested(inner) => from_sql(inner)?,
        Sql::Identifier(id) => Expr::Column(id.value.clone()),
        Sql::CompoundIdentifier(parts) => Expr::Column(
            parts
                .iter()
                .map(|p| p.value.as_str())
                .collect::<Vec<_>>()
                .join("."),
        ),
        Sql::Value(v) => match &v.value {
            Value::Number(n, _) => Expr::Literal(Literal::Number(
                n.parse()
                    .map_err(|_| unsupported(format!("the number {n}")))?,
            )),
            Value::SingleQuotedString(s) => Expr::Literal(Literal::Text(s.clone())),
            Value::Boolean(b) => Expr::Literal(Literal::Bool(*b)),
            Value::Null => Expr::Null,
            Value::DoubleQuotedString(s) => Expr::Column(s.clone()),
            other => return Err(unsupported(format!("the value {other}"))),
        },
        Sql::UnaryOp { op, expr } => match op {
            UnaryOperator::Minus => match from_sql(expr)? {
                Expr::Literal(Literal::Number(n)) => Expr::Literal(Literal::Number(-n)),
                e => Expr::Neg(Box::new(e)),
            },
            UnaryOperator::Plus => from_sql(expr)?,
            UnaryOperator::Not => Expr::Not(boxed(expr)?),
            other => return Err(unsupported(format!("the operator {other}"))),
        },
        Sql::BinaryOp { left, op, right } => {
            let (l, r) = (boxed(left)?, boxed(right)?);
            let arith = |op| Expr::Arith {
                op,
                left: l.clone(),
                right: r.clone(),
            };
            let cmp = |op| Expr::Compare {
                op,
                left: l.clone(),
                right: r.clone(),
            };
            match op {
                BinaryOperator::Plus => arith(ArithOp::Add),
                BinaryOperator::Minus => arith(ArithOp::Sub),
                BinaryOperator::Multiply => arith(ArithOp::Mul),
                BinaryOperator::Divide => arith(ArithOp::Div),
                BinaryOperator::Eq => cmp(CmpOp::Eq),
                BinaryOperator::NotEq => cmp(CmpOp::Ne),
                BinaryOperator::Lt => cmp(CmpOp::Lt),
                BinaryOperator::LtEq => cmp(CmpOp::Le),
                BinaryOperator::Gt => cmp(CmpOp::Gt),
                BinaryOperator::GtEq => cmp(CmpOp::Ge),
                BinaryOperator::And => Expr::And(l, r),
                BinaryOperator::Or => Expr::Or(l, r),
                other => return Err(unsupported(format!("the operator {other}"))),
            }
        }
        Sql::IsNull(e) => Expr::IsNull {
            expr: boxed(e)?,
            negated: false,
        },
        Sql::IsNotNull(e) => Expr::IsNull {
            expr: boxed(e)?,
            negated: true,
        },
        Sql::In {
            expr,
            target: sqlparser::ast::InTarget::List(list),
            negated,
            ..
        } => Expr::In {
            expr: boxed(expr)?,
            list: list.iter().map(from_sql).collect::<Result<_, _>>()?,
            negated: *negated,
        },
        Sql::Between {
            expr,
            negated,
            low,
            high,
        } => Expr::Between {
            expr: boxed(expr)?,
            low: boxed(low)?,
            high: boxed(high)?,
            negated: *negated,
        },
        Sql::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => match from_sql(pattern)? {
            Expr::Literal(Literal::Text(p)) => Expr::Like {
                expr: boxed(expr)?,
                pattern: p,
                negated: *negated,
            },
            _ => return Err(unsupported("LIKE needs a text pattern")),
        },
        Sql::Case {
            operand,
            conditions,
            else_result,
            ..
        } => Expr::Case {
            operand: operand.as_ref().map(|o| boxed(o)).transpose()?,
            whens: conditions
                .iter()
                .map(|c| Ok((from_sql(&c.condition)?, from_sql(&c.result)?)))
                .collect::<Result<_, ExprError>>()?,
            otherwise: else_result.as_ref().map(|o| boxed(o)).transpose()?,
        },
        Sql::Cast {
            kind: CastKind::Cast | CastKind::TryCast | CastKind::DoubleColon,
            expr,
            data_type,
            ..
        } => Expr::Cast {
            expr: boxed(expr)?,
            to: cast_target(data_type)?,
        },
        Sql::Extract { field, expr, .. } => Expr::Extract {
            part: match field {
                DateTimeField::Hour => TimePart::Hour,
                DateTimeField::Dow | DateTimeField::DayOfWeek => TimePart::Dow,
                DateTimeField::Day => TimePart::Day,
                DateTimeField::Month => TimePart::Month,
                DateTimeField::Year => TimePart::Year,
                other => {
                    return Err(unsupported(format!(
                        "EXTRACT({other} ...): gyre extracts hour, dow, day, month or year"
                    )));
                }
            },
            expr: boxed(expr)?,
        },
        Sql::Function(f) => call(f)?,
        Sql::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let mut args = vec![from_sql(expr)?];
            args.push(match substring_from {
                Some(s) => from_sql(s)?,
                None => Expr::Literal(Literal::Number(1.0)),
            });
            if let Some(l) = substring_for {
                args.push(from_sql(l)?);
            }
            Expr::Call {
                func: Func::Substr,
                args,
            }
        }
        Sql::Floor { expr, .. } => Expr::Call {
            func: Func::Floor,
            args: vec![from_sql(expr)?],
        },
        other => return Err(unsupported(format!("\"{other}\""))),
    })
}

fn call(f: &Function) -> Result<Expr, ExprError> {
    let name = f.name.to_string().to_ascii_uppercase();
    let func = Func::ALL
        .into_iter()
        .find(|x| x.name() == name)
        .or(match name.as_str() {
            "SUBSTRING" => Some(Func::Substr),
            "LOG" => Some(Func::Ln),
            _ => None,
        })
        .ok_or_else(|| {
            unsupported(format!(
                "the function {name}{}",
                crate::closest(&name, Func::ALL.iter().map(|f| f.name()))
                    .map(|s| format!("; did you mean {s}?"))
                    .unwrap_or_default()
            ))
        })?;
    let args = match &f.args {
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => from_sql(e),
                other => Err(unsupported(format!("the argument {other}"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        FunctionArguments::None => Vec::new(),
        FunctionArguments::Subquery(_) => return Err(unsupported("a subquery")),
    };
    Ok(Expr::Call { func, args })
}

fn cast_target(t: &SqlType) -> Result<ExprKind, ExprError> {
    let name = t.to_string().to_ascii_uppercase();
    let base = name.split('(').next().unwrap_or("").trim();
    Ok(match base {
        "DOUBLE" | "DOUBLE PRECISION" | "FLOAT" | "REAL" | "NUMERIC" | "DECIMAL" | "INT"
        | "INTEGER" | "BIGINT" | "SMALLINT" | "FLOAT8" | "FLOAT64" => ExprKind::Numeric,
        "VARCHAR" | "TEXT" | "STRING" | "CHAR" | "CHARACTER VARYING" => ExprKind::Text,
        "BOOLEAN" | "BOOL" => ExprKind::Boolean,
        other => {
            return Err(unsupported(format!(
                "CAST to {other} (gyre casts to DOUBLE, VARCHAR or BOOLEAN)"
            )));
        }
    })
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not = |n: bool| if n { "NOT " } else { "" };
        // Operands print in parentheses unless they are atoms, so the text parses back to the
        // same tree whatever the precedence rules.
        let sub = |e: &Expr| match e {
            Expr::Column(_) | Expr::Literal(_) | Expr::Null | Expr::Call { .. } => e.to_string(),
            Expr::Cast { .. } | Expr::Extract { .. } | Expr::Case { .. } => e.to_string(),
            _ => format!("({e})"),
        };
        match self {
            Expr::Column(c) => write!(f, "{}", ident_sql(c)),
            Expr::Literal(l) => write!(f, "{}", literal_sql(l)),
            Expr::Null => write!(f, "NULL"),
            Expr::Neg(e) => write!(f, "-{}", sub(e)),
            Expr::Arith { op, left, right } => {
                write!(f, "{} {} {}", sub(left), op.as_str(), sub(right))
            }
            Expr::Compare { op, left, right } => {
                write!(f, "{} {} {}", sub(left), op.as_str(), sub(right))
            }
            Expr::And(l, r) => write!(f, "{} AND {}", sub(l), sub(r)),
            Expr::Or(l, r) => write!(f, "{} OR {}", sub(l), sub(r)),
            Expr::Not(e) => write!(f, "NOT {}", sub(e)),
            Expr::IsNull { expr, negated } => write!(f, "{} IS {}NULL", sub(expr), not(*negated)),
            Expr::In {
                expr,
                list,
                negated,
            } => write!(
                f,
                "{} {}IN ({})",
                sub(expr),
                not(*negated),
                list.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => write!(
                f,
                "{} {}BETWEEN {} AND {}",
                sub(expr),
                not(*negated),
                sub(low),
                sub(high)
            ),
            Expr::Like {
                expr,
                pattern,
                negated,
            } => write!(
                f,
                "{} {}LIKE {}",
                sub(expr),
                not(*negated),
                literal_sql(&Literal::Text(pattern.clone()))
            ),
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                write!(f, "CASE")?;
                if let Some(o) = operand {
                    write!(f, " {}", sub(o))?;
                }
                for (w, t) in whens {
                    write!(f, " WHEN {w} THEN {t}")?;
                }
                if let Some(o) = otherwise {
                    write!(f, " ELSE {o}")?;
                }
                write!(f, " END")
            }
            Expr::Call { func, args } => write!(
                f,
                "{}({})",
                func.name(),
                args.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Expr::Cast { expr, to } => write!(
                f,
                "CAST({expr} AS {})",
                match to {
                    ExprKind::Text => "VARCHAR",
                    ExprKind::Boolean => "BOOLEAN",
                    _ => "DOUBLE",
                }
            ),
            Expr::Extract { part, expr } => write!(f, "EXTRACT({} FROM {expr})", part.as_str()),
        }
    }
}

impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Expr, D::Error> {
        let text = String::deserialize(d)?;
        Expr::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ColumnRole, ColumnSchema, Task};

    fn schema() -> DatasetSchema {
        let col = |name: &str, kind, role| ColumnSchema {
            name: name.into(),
            kind,
            role,
            categories: Vec::new(),
        };
        DatasetSchema {
            columns: vec![
                col("age", ColumnKind::Numeric, ColumnRole::Feature),
                col("gain", ColumnKind::Numeric, ColumnRole::Feature),
                col("sex", ColumnKind::Categorical, ColumnRole::Feature),
                col("ok", ColumnKind::Boolean, ColumnRole::Feature),
                col("t", ColumnKind::Time, ColumnRole::Time),
                col("y", ColumnKind::Categorical, ColumnRole::Target),
            ],
            target: "y".into(),
            task: Task::Binary,
            classes: vec!["a".into(), "b".into()],
            id_column: None,
            time_column: Some("t".into()),
            positive: None,
        }
    }

    #[test]
    fn expressions_print_canonically_and_parse_back_the_same() {
        for text in [
            "gain - age * 2",
            "(gain - age) * 2",
            "-age + 3",
            "CASE WHEN age < 30 THEN 'young' WHEN age < 50 THEN 'middle' ELSE 'older' END",
            "CASE sex WHEN 'Male' THEN 1 ELSE 0 END",
            "COALESCE(gain, 0) / NULLIF_IS_NOT_HERE",
            "CAST(age AS VARCHAR)",
            "ROUND(LN(gain + 1), 2)",
            "LEAST(age, 60) + GREATEST(gain, 0)",
            "LOWER(SUBSTR(sex, 1, 1))",
            "LENGTH(sex) >= 4 AND NOT ok",
            "EXTRACT(HOUR FROM t) BETWEEN 6 AND 9",
            "EXTRACT(dow FROM t) IN (0, 6)",
            "sex LIKE 'M%' OR age IS NULL",
            "FLOOR(age / 10) * 10",
        ] {
            let Ok(e) = Expr::parse(text) else {
                assert!(text.contains("NULLIF"), "{text} did not parse");
                continue;
            };
            let printed = e.to_string();
            assert_eq!(Expr::parse(&printed).unwrap(), e, "{text} -> {printed}");
        }
    }

    #[test]
    fn kinds_are_inferred_and_errors_name_the_part() {
        let s = schema();
        let kind = |t: &str| Expr::parse_checked(t, &s).map(|(_, k)| k);
        assert_eq!(kind("gain - age").unwrap(), ExprKind::Numeric);
        assert_eq!(kind("age > 30").unwrap(), ExprKind::Boolean);
        assert_eq!(
            kind("CASE WHEN age < 30 THEN 'young' ELSE NULL END").unwrap(),
            ExprKind::Text
        );
        assert_eq!(kind("EXTRACT(month FROM t)").unwrap(), ExprKind::Numeric);
        assert_eq!(kind("CAST(age AS VARCHAR)").unwrap(), ExprKind::Text);
        assert_eq!(kind("t").unwrap(), ExprKind::Time);
        let e = kind("agee + 1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "column \"agee\" not found; did you mean \"age\"?"
        );
        let e = kind("LOWER(age) = 'x'").unwrap_err().to_string();
        assert!(
            e.contains("in LOWER(age): LOWER takes text, but age is numeric"),
            "{e}"
        );
        let e = kind("CASE WHEN age < 3 THEN 'a' ELSE 1 END")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mix text and numeric"), "{e}");
        let e = kind("sex + 1").unwrap_err().to_string();
        assert!(
            e.contains("in sex + 1: + takes numbers, but sex is text"),
            "{e}"
        );
        let e = kind("EXTRACT(hour FROM age)").unwrap_err().to_string();
        assert!(e.contains("EXTRACT takes the time column"), "{e}");
        let e = kind("t > 3").unwrap_err().to_string();
        assert!(e.contains("through EXTRACT"), "{e}");
        let e = kind("ABS(age, 2)").unwrap_err().to_string();
        assert!(e.contains("ABS takes 1 argument"), "{e}");
        let e = kind("ROUND(age, 1, 2)").unwrap_err().to_string();
        assert!(e.contains("ROUND takes 1 to 2 arguments"), "{e}");
        let e = kind("SQRT(age)").unwrap_err().to_string();
        assert!(e.contains("the function SQRT"), "{e}");
        let e = kind("EXTRACT(minute FROM t)").unwrap_err().to_string();
        assert!(e.contains("hour, dow, day, month or year"), "{e}");
        assert!(kind("age <").is_err());
        assert_eq!(
            Expr::parse("gain - age").unwrap().columns(),
            vec!["gain", "age"]
        );
    }
}
