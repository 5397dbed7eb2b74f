//! `transformSpec.transforms` of type `expression`: the arithmetic and string part of Druid's
//! expression language. Literals (`12`, `1.5`, `'text'`), fields (`page`, `"odd name"`), unary
//! `-` and `!`, `^`, `* / %`, `+ -` (`+` concatenates when either side is a string, as in
//! Druid), comparisons, `&& ||`, parentheses and `concat(...)`. Null in, null out (Druid's SQL
//! compatible null handling). Anything else is refused when the spec is read, naming it.

use std::borrow::Cow;

use crate::record::{Cell, Record};

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Cell<'static>),
    /// A field, by its number in the task's `Fields`.
    Field(usize),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
    Concat(Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Pow,
    Mul,
    Div,
    Mod,
    Add,
    Sub,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

/// Binding strength of each operator (higher binds tighter), Druid's precedence.
fn precedence(op: Op) -> u8 {
    use Op::*;
    match op {
        Pow => 6,
        Mul | Div | Mod => 5,
        Add | Sub => 4,
        Lt | Le | Gt | Ge | Eq | Ne => 3,
        And | Or => 2,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Long(i64),
    Double(f64),
    Str(String),
    Ident(String),
    Op(Op),
    Bang,
    Open,
    Close,
    Comma,
}

fn tokenize(src: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op2 = match two.as_str() {
            "<=" => Some(Op::Le),
            ">=" => Some(Op::Ge),
            "==" => Some(Op::Eq),
            "!=" => Some(Op::Ne),
            "&&" => Some(Op::And),
            "||" => Some(Op::Or),
            _ => None,
        };
        if let Some(op) = op2 {
            out.push(Token::Op(op));
            i += 2;
            continue;
        }
        match c {
            c if c.is_whitespace() => i += 1,
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                out.push(if text.contains('.') {
                    Token::Double(
                        text.parse()
                            .map_err(|_| format!("[{text}] is not a number"))?,
                    )
                } else {
                    Token::Long(
                        text.parse()
                            .map_err(|_| format!("[{text}] is too large for a long"))?,
                    )
                });
            }
            '\'' | '"' => {
                let quote = c;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(ExprError(format!("unterminated {quote}quote{quote}"))),
                        Some('\\') if chars.get(i + 1).is_some() => {
                            text.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            text.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(if quote == '\'' {
                    Token::Str(text)
                } else {
                    Token::Ident(text)
                });
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
                {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            _ => {
                out.push(match c {
                    '^' => Token::Op(Op::Pow),
                    '*' => Token::Op(Op::Mul),
                    '/' => Token::Op(Op::Div),
                    '%' => Token::Op(Op::Mod),
                    '+' => Token::Op(Op::Add),
                    '-' => Token::Op(Op::Sub),
                    '<' => Token::Op(Op::Lt),
                    '>' => Token::Op(Op::Gt),
                    '!' => Token::Bang,
                    '(' => Token::Open,
                    ')' => Token::Close,
                    ',' => Token::Comma,
                    other => return Err(ExprError(format!("unexpected character [{other}]"))),
                });
                i += 1;
            }
        }
    }
    Ok(out)
}

struct Parser<'r> {
    tokens: Vec<Token>,
    at: usize,
    resolve: &'r mut dyn FnMut(&str) -> usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    /// Precedence climbing; `^` is right-associative, the rest left.
    fn expr(&mut self, min: u8) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        while let Some(Token::Op(op)) = self.peek().cloned() {
            let p = precedence(op);
            if p < min {
                break;
            }
            self.at += 1;
            let next_min = if op == Op::Pow { p } else { p + 1 };
            let right = self.expr(next_min)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        match self.peek() {
            Some(Token::Op(Op::Sub)) => {
                self.at += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Some(Token::Bang) => {
                self.at += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        match self.next() {
            Some(Token::Long(l)) => Ok(Expr::Literal(Cell::Long(l))),
            Some(Token::Double(d)) => Ok(Expr::Literal(Cell::Double(d))),
            Some(Token::Str(s)) => Ok(Expr::Literal(Cell::Str(Cow::Owned(s)))),
            Some(Token::Open) => {
                let e = self.expr(0)?;
                match self.next() {
                    Some(Token::Close) => Ok(e),
                    _ => Err("a [(] is not closed".into()),
                }
            }
            Some(Token::Ident(name)) if self.peek() == Some(&Token::Open) => {
                self.at += 1;
                let mut args = Vec::new();
                if self.peek() == Some(&Token::Close) {
                    self.at += 1;
                } else {
                    loop {
                        args.push(self.expr(0)?);
                        match self.next() {
                            Some(Token::Comma) => {}
                            Some(Token::Close) => break,
                            _ => {
                                return Err(ExprError(format!(
                                    "the arguments of [{name}] are not closed"
                                )))
                            }
                        }
                    }
                }
                match name.as_str() {
                    "concat" => Ok(Expr::Concat(args)),
                    other => Err(ExprError(format!(
                        "function [{other}] is not supported; only concat() is"
                    ))),
                }
            }
            Some(Token::Ident(name)) => match name.as_str() {
                "null" => Ok(Expr::Literal(Cell::Null)),
                _ => Ok(Expr::Field((self.resolve)(&name))),
            },
            Some(other) => Err(ExprError(format!("unexpected {other:?}"))),
            None => Err("the expression ends too soon".into()),
        }
    }
}

/// Why an expression cannot be run; the message says where it goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

impl From<String> for ExprError {
    fn from(message: String) -> Self {
        ExprError(message)
    }
}

impl From<&str> for ExprError {
    fn from(message: &str) -> Self {
        ExprError(message.to_string())
    }
}

/// Parses `src`; `resolve` numbers each field it names.
pub fn parse(src: &str, resolve: &mut dyn FnMut(&str) -> usize) -> Result<Expr, ExprError> {
    let mut p = Parser {
        tokens: tokenize(src)?,
        at: 0,
        resolve,
    };
    let e = p.expr(0)?;
    match p.peek() {
        None => Ok(e),
        Some(t) => Err(ExprError(format!(
            "unexpected {t:?} after a complete expression"
        ))),
    }
}

fn truthy(c: &Cell) -> bool {
    match c {
        Cell::Long(l) => *l != 0,
        Cell::Double(d) => *d != 0.0,
        Cell::Bool(b) => *b,
        Cell::Str(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn is_string(c: &Cell) -> bool {
    matches!(c, Cell::Str(_) | Cell::List(_) | Cell::Object(_))
}

fn boolean(b: bool) -> Cell<'static> {
    Cell::Long(b as i64)
}

/// A numeric operand: longs stay longs, numeric strings are read as numbers.
enum Num {
    Long(i64),
    Double(f64),
}

fn num(c: &Cell) -> Option<Num> {
    match c {
        Cell::Long(l) => Some(Num::Long(*l)),
        Cell::Double(d) => Some(Num::Double(*d)),
        Cell::Bool(b) => Some(Num::Long(*b as i64)),
        Cell::Str(s) => {
            let s = s.trim();
            s.parse()
                .map(Num::Long)
                .ok()
                .or_else(|| s.parse().map(Num::Double).ok())
        }
        _ => None,
    }
}

fn arithmetic(op: Op, a: &Cell, b: &Cell) -> Cell<'static> {
    let (Some(x), Some(y)) = (num(a), num(b)) else {
        return Cell::Null;
    };
    match (x, y) {
        (Num::Long(x), Num::Long(y)) => match op {
            Op::Add => Cell::Long(x.wrapping_add(y)),
            Op::Sub => Cell::Long(x.wrapping_sub(y)),
            Op::Mul => Cell::Long(x.wrapping_mul(y)),
            Op::Div => x.checked_div(y).map_or(Cell::Null, Cell::Long),
            Op::Mod => x.checked_rem(y).map_or(Cell::Null, Cell::Long),
            Op::Pow => match u32::try_from(y) {
                Ok(e) => x.checked_pow(e).map_or(Cell::Null, Cell::Long),
                Err(_) => Cell::Double((x as f64).powf(y as f64)),
            },
            _ => unreachable!("not arithmetic"),
        },
        (x, y) => {
            let f = |n: Num| match n {
                Num::Long(l) => l as f64,
                Num::Double(d) => d,
            };
            let (x, y) = (f(x), f(y));
            Cell::Double(match op {
                Op::Add => x + y,
                Op::Sub => x - y,
                Op::Mul => x * y,
                Op::Div => x / y,
                Op::Mod => x % y,
                Op::Pow => x.powf(y),
                _ => unreachable!("not arithmetic"),
            })
        }
    }
}

fn compare(a: &Cell, b: &Cell) -> Option<std::cmp::Ordering> {
    if is_string(a) && is_string(b) {
        return Some(a.text()?.cmp(&b.text()?));
    }
    let f = |c: &Cell| match num(c)? {
        Num::Long(l) => Some(l as f64),
        Num::Double(d) => Some(d),
    };
    f(a)?.partial_cmp(&f(b)?)
}

impl Expr {
    pub fn eval(&self, record: &Record) -> Cell<'static> {
        match self {
            Expr::Literal(c) => c.clone(),
            Expr::Field(slot) => match record.get(*slot) {
                Cell::Missing => Cell::Null,
                c => c.clone().into_owned(),
            },
            Expr::Neg(e) => match e.eval(record) {
                c if c.is_null() => Cell::Null,
                c => arithmetic(Op::Sub, &Cell::Long(0), &c),
            },
            Expr::Not(e) => match e.eval(record) {
                c if c.is_null() => Cell::Null,
                c => boolean(!truthy(&c)),
            },
            Expr::Concat(args) => {
                let mut out = String::new();
                for a in args {
                    match a.eval(record).text() {
                        Some(t) => out.push_str(&t),
                        None => return Cell::Null,
                    }
                }
                Cell::Str(Cow::Owned(out))
            }
            Expr::Binary(op, a, b) => {
                let (a, b) = (a.eval(record), b.eval(record));
                match op {
                    Op::And => match (a.is_null(), b.is_null()) {
                        _ if (!a.is_null() && !truthy(&a)) || (!b.is_null() && !truthy(&b)) => {
                            boolean(false)
                        }
                        (false, false) => boolean(true),
                        _ => Cell::Null,
                    },
                    Op::Or => match (a.is_null(), b.is_null()) {
                        _ if truthy(&a) || truthy(&b) => boolean(true),
                        (false, false) => boolean(false),
                        _ => Cell::Null,
                    },
                    _ if a.is_null() || b.is_null() => Cell::Null,
                    Op::Add if is_string(&a) || is_string(&b) => {
                        let (x, y) = (a.text().unwrap_or_default(), b.text().unwrap_or_default());
                        Cell::Str(Cow::Owned(format!("{x}{y}")))
                    }
                    Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Eq | Op::Ne => {
                        use std::cmp::Ordering::*;
                        match compare(&a, &b) {
                            None => Cell::Null,
                            Some(o) => boolean(match op {
                                Op::Lt => o == Less,
                                Op::Le => o != Greater,
                                Op::Gt => o == Greater,
                                Op::Ge => o != Less,
                                Op::Eq => o == Equal,
                                _ => o != Equal,
                            }),
                        }
                    }
                    _ => arithmetic(*op, &a, &b),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Fields;

    fn eval(src: &str, row: serde_json::Value) -> Cell<'static> {
        let mut fields = Fields::new(true);
        let e = parse(src, &mut |n| fields.register(n)).unwrap();
        let record = Record::from_json(&row, &mut fields);
        e.eval(&record)
    }

    #[test]
    fn arithmetic_with_druid_precedence_and_types() {
        let row = serde_json::json!({"added": 10, "deleted": 4, "ratio": 0.5, "n": "7"});
        assert_eq!(eval("added - deleted * 2", row.clone()), Cell::Long(2));
        assert_eq!(eval("(added - deleted) * 2", row.clone()), Cell::Long(12));
        assert_eq!(eval("added * ratio", row.clone()), Cell::Double(5.0));
        assert_eq!(eval("added / 3", row.clone()), Cell::Long(3));
        assert_eq!(eval("added / 4.0", row.clone()), Cell::Double(2.5));
        assert_eq!(eval("2 ^ 3 ^ 2", row.clone()), Cell::Long(512));
        assert_eq!(eval("-added % 3", row.clone()), Cell::Long(-1));
        assert_eq!(
            eval("n * 2", row.clone()),
            Cell::Long(14),
            "numeric strings"
        );
        assert_eq!(eval("added / 0", row.clone()), Cell::Null);
        assert_eq!(eval("missing + 1", row.clone()), Cell::Null);
        assert_eq!(eval("added > deleted && !(added == 3)", row), Cell::Long(1));
    }

    #[test]
    fn string_concatenation() {
        let row = serde_json::json!({"page": "Main", "lang": "en", "n": 3});
        assert_eq!(
            eval("concat(page, '-', lang)", row.clone()),
            Cell::Str("Main-en".into())
        );
        assert_eq!(eval("page + n", row.clone()), Cell::Str("Main3".into()));
        assert_eq!(
            eval(r#""page" + '\'s'"#, row.clone()),
            Cell::Str("Main's".into())
        );
        assert_eq!(eval("concat(page, nothing)", row), Cell::Null);
    }

    #[test]
    fn unsupported_and_malformed_expressions_say_why() {
        let mut n = |_: &str| 0;
        assert!(parse("lower(page)", &mut n)
            .unwrap_err()
            .0
            .contains("function [lower] is not supported"));
        assert!(parse("(a + 1", &mut n)
            .unwrap_err()
            .0
            .contains("not closed"));
        assert!(parse("a +", &mut n)
            .unwrap_err()
            .0
            .contains("ends too soon"));
        assert!(parse("a b", &mut n)
            .unwrap_err()
            .0
            .contains("after a complete"));
        assert!(parse("a # b", &mut n)
            .unwrap_err()
            .0
            .contains("unexpected character"));
    }
}
