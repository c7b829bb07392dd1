//! Pulp's `q` list filter: other filters of the same list combined with `NOT`, `AND` and `OR`
//! and parentheses (`name="alpha" OR NOT pulp_label_select="env=prod"`), as pulpcore's
//! `ExpressionFilter` parses them. A term is `filter=value`, the value a bare word (letters,
//! digits, non-ASCII letters and `.,_-*`) or a quoted string; `NOT` binds tighter than `AND`,
//! `AND` than `OR`. An expression may weigh at most [`MAX_COMPLEXITY`] (a term 1, an operator 1
//! more than its operands), so one request cannot make an unbounded query.

/// The heaviest expression accepted (pulpcore's limit).
pub const MAX_COMPLEXITY: usize = 8;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// `filter=value`.
    Term(String, String),
    /// `NOT e`.
    Not(Box<Expression>),
    /// `a AND b AND ...`.
    And(Vec<Expression>),
    /// `a OR b OR ...`.
    Or(Vec<Expression>),
}

impl Expression {
    /// Its weight, as pulpcore counts it.
    pub fn complexity(&self) -> usize {
        match self {
            Expression::Term(..) => 1,
            Expression::Not(inner) => inner.complexity() + 1,
            Expression::And(parts) | Expression::Or(parts) => {
                parts.iter().map(Expression::complexity).sum::<usize>() + 1
            }
        }
    }
}

/// Parses `text`; the error is pulpcore's message.
pub fn parse(text: &str) -> Result<Expression, String> {
    const SYNTAX: &str = "Syntax error in expression.";
    let tokens = tokenize(text).ok_or(SYNTAX)?;
    let mut parser = Parser { tokens, at: 0 };
    let expression = parser.or().ok_or(SYNTAX)?;
    if parser.at != parser.tokens.len() {
        return Err(SYNTAX.into());
    }
    if expression.complexity() > MAX_COMPLEXITY {
        return Err("Filter expression exceeds allowed complexity.".into());
    }
    Ok(expression)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Not,
    And,
    Or,
    /// `key=value`, the value unquoted.
    Term(String, String),
}

/// The tokens of `text`, or `None` when it has something no token starts with.
fn tokenize(text: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    let is_word = |c: char| c.is_alphanumeric() || ".,_-*".contains(c);
    while at < chars.len() {
        let c = chars[at];
        if c.is_whitespace() {
            at += 1;
        } else if c == '(' || c == ')' {
            tokens.push(if c == '(' { Token::Open } else { Token::Close });
            at += 1;
        } else if c.is_ascii_alphabetic() {
            let start = at;
            while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '_') {
                at += 1;
            }
            let word: String = chars[start..at].iter().collect();
            let followed_by_equals = chars.get(at) == Some(&'=');
            match word.as_str() {
                "NOT" if !followed_by_equals => tokens.push(Token::Not),
                "AND" if !followed_by_equals => tokens.push(Token::And),
                "OR" if !followed_by_equals => tokens.push(Token::Or),
                _ if followed_by_equals => {
                    at += 1;
                    let value = match chars.get(at) {
                        Some(&quote @ ('"' | '\'')) => {
                            let (value, next) = quoted(&chars, at + 1, quote)?;
                            at = next;
                            value
                        }
                        _ => {
                            let start = at;
                            while at < chars.len() && is_word(chars[at]) {
                                at += 1;
                            }
                            if start == at {
                                return None;
                            }
                            chars[start..at].iter().collect()
                        }
                    };
                    tokens.push(Token::Term(word, value));
                }
                _ => return None,
            }
        } else {
            return None;
        }
    }
    Some(tokens)
}

/// The string quoted by `quote` from `at` (after the opening quote), a backslash escaping the
/// next character, and where it ends; `None` when it is not closed.
fn quoted(chars: &[char], mut at: usize, quote: char) -> Option<(String, usize)> {
    let mut value = String::new();
    while let Some(&c) = chars.get(at) {
        match c {
            '\\' => {
                value.push(*chars.get(at + 1)?);
                at += 2;
            }
            _ if c == quote => return Some((value, at + 1)),
            _ => {
                value.push(c);
                at += 1;
            }
        }
    }
    None
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, token: &Token) -> bool {
        let here = self.peek() == Some(token);
        if here {
            self.at += 1;
        }
        here
    }

    /// `and (OR and)*`
    fn or(&mut self) -> Option<Expression> {
        let mut parts = vec![self.and()?];
        while self.eat(&Token::Or) {
            parts.push(self.and()?);
        }
        Some(one_or(parts, Expression::Or))
    }

    /// `not (AND not)*`
    fn and(&mut self) -> Option<Expression> {
        let mut parts = vec![self.not()?];
        while self.eat(&Token::And) {
            parts.push(self.not()?);
        }
        Some(one_or(parts, Expression::And))
    }

    /// `NOT not | ( or ) | term`
    fn not(&mut self) -> Option<Expression> {
        if self.eat(&Token::Not) {
            return Some(Expression::Not(Box::new(self.not()?)));
        }
        if self.eat(&Token::Open) {
            let inner = self.or()?;
            return self.eat(&Token::Close).then_some(inner);
        }
        match self.peek()?.clone() {
            Token::Term(key, value) => {
                self.at += 1;
                Some(Expression::Term(key, value))
            }
            _ => None,
        }
    }
}

/// The one part alone, or the parts joined by `join`.
fn one_or(mut parts: Vec<Expression>, join: fn(Vec<Expression>) -> Expression) -> Expression {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        join(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(key: &str, value: &str) -> Expression {
        Expression::Term(key.into(), value.into())
    }

    #[test]
    fn operators_bind_as_pulpcore_binds_them() {
        assert_eq!(
            parse(r#"name="a b" OR NOT base_path=x AND pulp_label_select='env=prod'"#).unwrap(),
            Expression::Or(vec![
                term("name", "a b"),
                Expression::And(vec![
                    Expression::Not(Box::new(term("base_path", "x"))),
                    term("pulp_label_select", "env=prod"),
                ]),
            ])
        );
        assert_eq!(
            parse("(name=a OR name=b) AND name__contains=c*").unwrap(),
            Expression::And(vec![
                Expression::Or(vec![term("name", "a"), term("name", "b")]),
                term("name__contains", "c*"),
            ])
        );
        assert_eq!(
            parse(r#"name="say \"hi\"""#).unwrap(),
            term("name", r#"say "hi""#)
        );
    }

    #[test]
    fn malformed_and_heavy_expressions_are_refused() {
        for bad in [
            "",
            "name",
            "name=",
            "=a",
            "name=a OR",
            "(name=a",
            "name=a)",
            "name=a name=b",
            r#"name="open"#,
            "name=a; DROP",
        ] {
            assert_eq!(
                parse(bad),
                Err("Syntax error in expression.".into()),
                "{bad:?}"
            );
        }
        let five = (0..5)
            .map(|i| format!("name={i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        assert_eq!(parse(&five).unwrap().complexity(), 6);
        let heavy = format!("{five} OR NOT (name=x AND name=y)");
        assert_eq!(
            parse(&heavy),
            Err("Filter expression exceeds allowed complexity.".into())
        );
    }
}
