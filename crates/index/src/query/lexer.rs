//! Splits a query into tokens, each with the byte offset where it starts.

use super::QueryError;

/// One token of the query language.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word: letters, digits and `_ . - : / @` (and `+` inside an RFC 3339 offset).
    /// Keywords (`AND`, `OR`, `NOT`) are words too; the parser tells them apart.
    Word(String),
    /// A `"..."` or `'...'` string, escapes resolved.
    Quoted(String),
    LParen,
    RParen,
    /// Separates the values of `IN (a, b, c)`.
    Comma,
    Plus,
    Op(Op),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// `=~`: the value is a regular expression that must match the whole value.
    Regex,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offset of the token's first character.
    pub at: usize,
}

/// Tokenizes the whole input; errors carry the column of the offending character.
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let tok = match c {
            '(' => {
                chars.next();
                Tok::LParen
            }
            ')' => {
                chars.next();
                Tok::RParen
            }
            ',' => {
                chars.next();
                Tok::Comma
            }
            '+' => {
                chars.next();
                Tok::Plus
            }
            '"' | '\'' => {
                chars.next();
                Tok::Quoted(quoted(input, at, c, &mut chars)?)
            }
            '=' | '!' | '<' | '>' => {
                chars.next();
                let next = chars.peek().map(|&(_, n)| n);
                let (op, two) = match (c, next) {
                    ('=', Some('~')) => (Op::Regex, true),
                    ('=', _) => (Op::Eq, false),
                    ('!', Some('=')) => (Op::Ne, true),
                    ('!', _) => {
                        return Err(QueryError::at(input, at + 1, "expected '=' after '!'"));
                    }
                    ('<', Some('=')) => (Op::Le, true),
                    ('<', _) => (Op::Lt, false),
                    ('>', Some('=')) => (Op::Ge, true),
                    _ => (Op::Gt, false),
                };
                if two {
                    chars.next();
                }
                Tok::Op(op)
            }
            c if is_word_char(c) => {
                let mut word = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    // `+` only continues an RFC 3339 time: `2024-06-01T12:00:00+02:00`.
                    let offset_plus = c == '+'
                        && word.starts_with(|c: char| c.is_ascii_digit())
                        && word.contains(':');
                    if !is_word_char(c) && !offset_plus {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                Tok::Word(word)
            }
            other => {
                return Err(QueryError::at(
                    input,
                    at,
                    format!("unexpected character {other:?}"),
                ));
            }
        };
        tokens.push(Token { tok, at });
    }
    Ok(tokens)
}

pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/' | '@')
}

/// Reads a quoted string after its opening quote. `\\`, `\"`, `\'`, `\n`, `\r`, `\t` and
/// `\u{...}` are escapes; any other backslash is kept as written, so regexes like `"\d+"` need no
/// doubling.
fn quoted(
    input: &str,
    start: usize,
    quote: char,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<String, QueryError> {
    let mut out = String::new();
    loop {
        let Some((at, c)) = chars.next() else {
            return Err(QueryError::at(
                input,
                start,
                format!("unterminated string: expected a closing {quote}"),
            ));
        };
        if c == quote {
            return Ok(out);
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().map(|&(_, n)| n) {
            Some(n @ ('\\' | '"' | '\'')) => {
                out.push(n);
                chars.next();
            }
            Some('n') => {
                out.push('\n');
                chars.next();
            }
            Some('r') => {
                out.push('\r');
                chars.next();
            }
            Some('t') => {
                out.push('\t');
                chars.next();
            }
            Some('u') => {
                chars.next();
                out.push(unicode_escape(input, at, chars)?);
            }
            _ => out.push('\\'),
        }
    }
}

/// `\u{1F600}`: after the `u`.
fn unicode_escape(
    input: &str,
    at: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<char, QueryError> {
    let bad = || QueryError::at(input, at, "invalid escape: expected \\u{HEX}");
    if chars.next().map(|(_, c)| c) != Some('{') {
        return Err(bad());
    }
    let mut hex = String::new();
    for (_, c) in chars.by_ref() {
        if c == '}' {
            let n = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
            return char::from_u32(n).ok_or_else(bad);
        }
        if hex.len() >= 6 {
            return Err(bad());
        }
        hex.push(c);
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.to_string())
    }

    #[test]
    fn words_operators_and_strings() {
        assert_eq!(
            toks(r#"a.b>=5 c!="x\"y" d=~'p' (e<f)"#),
            vec![
                w("a.b"),
                Tok::Op(Op::Ge),
                w("5"),
                w("c"),
                Tok::Op(Op::Ne),
                Tok::Quoted("x\"y".into()),
                w("d"),
                Tok::Op(Op::Regex),
                Tok::Quoted("p".into()),
                Tok::LParen,
                w("e"),
                Tok::Op(Op::Lt),
                w("f"),
                Tok::RParen,
            ]
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            toks(r#""a\\b\n\t\u{e9}\d""#),
            vec![Tok::Quoted("a\\b\n\té\\d".into())]
        );
        assert_eq!(toks(r#"'it\'s'"#), vec![Tok::Quoted("it's".into())]);
    }

    #[test]
    fn times_and_now_arithmetic() {
        assert_eq!(
            toks("2024-06-01T12:00:00.5+02:00"),
            vec![w("2024-06-01T12:00:00.5+02:00")]
        );
        assert_eq!(
            toks("now()+1h now() - 30m now()-5m"),
            vec![
                w("now"),
                Tok::LParen,
                Tok::RParen,
                Tok::Plus,
                w("1h"),
                w("now"),
                Tok::LParen,
                Tok::RParen,
                w("-"),
                w("30m"),
                w("now"),
                Tok::LParen,
                Tok::RParen,
                w("-5m"),
            ]
        );
    }

    #[test]
    fn errors_have_columns() {
        assert_eq!(
            tokenize("a = \"open").unwrap_err().to_string(),
            "unterminated string: expected a closing \" at column 5"
        );
        assert_eq!(
            tokenize("é ! x").unwrap_err().to_string(),
            "expected '=' after '!' at column 4"
        );
        assert_eq!(
            tokenize("a = #").unwrap_err().to_string(),
            "unexpected character '#' at column 5"
        );
    }
}
