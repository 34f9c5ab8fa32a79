//! Calico's label selectors (`has(rack)`, `rack == 'a' && !has(rr)`, `zone in {'a',
//! 'b'}`), as BGPPeer's `nodeSelector` and `peerSelector` use them, parsed once and
//! matched against a node's labels.

use std::collections::BTreeMap;

/// A parsed selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    All,
    Has(String),
    Equal(String, String),
    NotEqual(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Contains(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    Not(Box<Selector>),
    And(Box<Selector>, Box<Selector>),
    Or(Box<Selector>, Box<Selector>),
}

impl Selector {
    /// Parses `text`; the error says what was expected and where.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let tokens = tokens(text)?;
        let mut p = Parser { tokens, at: 0 };
        let s = p.or()?;
        match p.peek() {
            None => Ok(s),
            Some(t) => Err(format!("{text:?}: unexpected {} at the end", t.describe())),
        }
    }

    /// Whether a node with `labels` is selected. A label that is absent is not
    /// equal to any value and in no set (`!=` and `not in` select it), as Calico's.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let get = |k: &String| labels.get(k);
        match self {
            Selector::All => true,
            Selector::Has(k) => labels.contains_key(k),
            Selector::Equal(k, v) => get(k) == Some(v),
            Selector::NotEqual(k, v) => get(k) != Some(v),
            Selector::In(k, set) => get(k).is_some_and(|v| set.contains(v)),
            Selector::NotIn(k, set) => !get(k).is_some_and(|v| set.contains(v)),
            Selector::Contains(k, s) => get(k).is_some_and(|v| v.contains(s.as_str())),
            Selector::StartsWith(k, s) => get(k).is_some_and(|v| v.starts_with(s.as_str())),
            Selector::EndsWith(k, s) => get(k).is_some_and(|v| v.ends_with(s.as_str())),
            Selector::Not(s) => !s.matches(labels),
            Selector::And(a, b) => a.matches(labels) && b.matches(labels),
            Selector::Or(a, b) => a.matches(labels) || b.matches(labels),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Str(String),
    Eq,
    Ne,
    Not,
    And,
    Or,
    Open,
    Close,
    OpenSet,
    CloseSet,
    Comma,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Word(w) => format!("{w:?}"),
            Token::Str(s) => format!("the string {s:?}"),
            Token::Eq => "==".into(),
            Token::Ne => "!=".into(),
            Token::Not => "!".into(),
            Token::And => "&&".into(),
            Token::Or => "||".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::OpenSet => "{".into(),
            Token::CloseSet => "}".into(),
            Token::Comma => ",".into(),
        }
    }
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|(_, c)| *c);
        let t = match (c, next) {
            (c, _) if c.is_whitespace() => continue,
            ('=', Some('=')) => {
                chars.next();
                Token::Eq
            }
            ('!', Some('=')) => {
                chars.next();
                Token::Ne
            }
            ('&', Some('&')) => {
                chars.next();
                Token::And
            }
            ('|', Some('|')) => {
                chars.next();
                Token::Or
            }
            ('!', _) => Token::Not,
            ('(', _) => Token::Open,
            (')', _) => Token::Close,
            ('{', _) => Token::OpenSet,
            ('}', _) => Token::CloseSet,
            (',', _) => Token::Comma,
            ('\'' | '"', _) => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some((_, q)) if q == c => break,
                        Some((_, ch)) => s.push(ch),
                        None => return Err(format!("{text:?}: the string opened at {} is not closed", i + 1)),
                    }
                }
                Token::Str(s)
            }
            (c, _) if is_word(c) => {
                let mut w = c.to_string();
                while let Some((_, ch)) = chars.peek().copied().filter(|(_, ch)| is_word(*ch)) {
                    w.push(ch);
                    chars.next();
                }
                Token::Word(w)
            }
            (c, _) => return Err(format!("{text:?}: {c:?} at {} is not part of a selector", i + 1)),
        };
        out.push(t);
    }
    Ok(out)
}

/// A label key's characters (`example.com/rack-1_a`).
fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect(&mut self, want: Token) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(t) => Err(format!("expected {}, found {}", want.describe(), t.describe())),
            None => Err(format!("expected {}, found the end", want.describe())),
        }
    }

    fn or(&mut self) -> Result<Selector, String> {
        let mut s = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            s = Selector::Or(Box::new(s), Box::new(self.and()?));
        }
        Ok(s)
    }

    fn and(&mut self) -> Result<Selector, String> {
        let mut s = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            s = Selector::And(Box::new(s), Box::new(self.unary()?));
        }
        Ok(s)
    }

    fn unary(&mut self) -> Result<Selector, String> {
        match self.next() {
            Some(Token::Not) => Ok(Selector::Not(Box::new(self.unary()?))),
            Some(Token::Open) => {
                let s = self.or()?;
                self.expect(Token::Close)?;
                Ok(s)
            }
            Some(Token::Word(w)) if (w == "all" || w == "global") && self.peek() == Some(&Token::Open) => {
                self.at += 1;
                self.expect(Token::Close)?;
                Ok(Selector::All)
            }
            Some(Token::Word(w)) if w == "has" && self.peek() == Some(&Token::Open) => {
                self.at += 1;
                let key = self.key()?;
                self.expect(Token::Close)?;
                Ok(Selector::Has(key))
            }
            Some(Token::Word(key)) => self.comparison(key),
            Some(t) => Err(format!(
                "expected a label, has(), all(), ! or (, found {}",
                t.describe()
            )),
            None => Err("expected a label, has(), all(), ! or (, found the end".into()),
        }
    }

    fn key(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            Some(t) => Err(format!("expected a label, found {}", t.describe())),
            None => Err("expected a label, found the end".into()),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(s),
            Some(t) => Err(format!("expected a quoted string, found {}", t.describe())),
            None => Err("expected a quoted string, found the end".into()),
        }
    }

    fn set(&mut self) -> Result<Vec<String>, String> {
        self.expect(Token::OpenSet)?;
        let mut out = Vec::new();
        if self.peek() == Some(&Token::CloseSet) {
            self.at += 1;
            return Ok(out);
        }
        loop {
            out.push(self.string()?);
            match self.next() {
                Some(Token::Comma) => {}
                Some(Token::CloseSet) => return Ok(out),
                Some(t) => return Err(format!("expected , or }}, found {}", t.describe())),
                None => return Err("expected , or }, found the end".into()),
            }
        }
    }

    fn comparison(&mut self, key: String) -> Result<Selector, String> {
        let word = |p: &Parser, w: &str| matches!(p.peek(), Some(Token::Word(x)) if x == w);
        match self.peek() {
            Some(Token::Eq) => {
                self.at += 1;
                Ok(Selector::Equal(key, self.string()?))
            }
            Some(Token::Ne) => {
                self.at += 1;
                Ok(Selector::NotEqual(key, self.string()?))
            }
            _ if word(self, "in") => {
                self.at += 1;
                Ok(Selector::In(key, self.set()?))
            }
            _ if word(self, "not") => {
                self.at += 1;
                if !word(self, "in") {
                    return Err(format!("{key} not: expected in"));
                }
                self.at += 1;
                Ok(Selector::NotIn(key, self.set()?))
            }
            _ if word(self, "contains") => {
                self.at += 1;
                Ok(Selector::Contains(key, self.string()?))
            }
            _ if word(self, "starts") || word(self, "ends") => {
                let starts = word(self, "starts");
                self.at += 1;
                if !word(self, "with") {
                    return Err(format!(
                        "{key} {}: expected with",
                        if starts { "starts" } else { "ends" }
                    ));
                }
                self.at += 1;
                let s = self.string()?;
                Ok(match starts {
                    true => Selector::StartsWith(key, s),
                    false => Selector::EndsWith(key, s),
                })
            }
            Some(t) => Err(format!(
                "after the label {key}: expected ==, !=, in, not in, contains, starts with or ends with, found {}",
                t.describe()
            )),
            None => Err(format!(
                "after the label {key}: expected ==, !=, in, not in, contains, starts with or ends with, found the end"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selectors_from_calicos_documentation_match_as_calico_says() {
        let rr = labels(&[("route-reflector", "true"), ("rack", "a")]);
        let node = labels(&[("rack", "b"), ("kubernetes.io/hostname", "n1")]);
        let cases = [
            ("all()", true, true),
            ("has(route-reflector)", true, false),
            ("!has(route-reflector)", false, true),
            ("route-reflector == 'true'", true, false),
            ("rack != \"a\"", false, true),
            ("route-reflector != 'true'", false, true),
            ("rack in {'a', 'c'}", true, false),
            ("rack not in {'a'}", false, true),
            ("missing not in {'a'}", true, true),
            ("kubernetes.io/hostname starts with 'n'", false, true),
            ("rack ends with 'b' || has(route-reflector)", true, true),
            ("!(rack == 'a' && has(route-reflector))", false, true),
            ("rack contains 'b'", false, true),
        ];
        for (text, on_rr, on_node) in cases {
            let s = Selector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(s.matches(&rr), on_rr, "{text} on the reflector");
            assert_eq!(s.matches(&node), on_node, "{text} on the node");
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let s = Selector::parse("has(a) || has(b) && has(c)").unwrap();
        assert!(s.matches(&labels(&[("a", "")])));
        assert!(!s.matches(&labels(&[("b", "")])));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("rack = 'a'", "is not part of a selector"),
            ("rack == a", "expected a quoted string"),
            ("rack == 'a", "is not closed"),
            ("has(rack", "expected ), found the end"),
            ("rack in {'a' 'b'}", "expected , or }"),
            ("rack", "after the label rack"),
            ("has(a) has(b)", "unexpected \"has\" at the end"),
            ("", "found the end"),
        ] {
            let e = Selector::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
