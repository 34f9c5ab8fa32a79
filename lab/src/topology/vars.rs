//! Variables in topology files, expanded before the YAML is read, in the forms
//! containerlab expands (its envsubst, bash's forms): `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:=default}`, `${VAR=default}`,
//! `${VAR:+other}`, `${VAR+other}`, and `$$` for a literal `$`. A default may itself
//! hold variables; the `=` forms also set the variable for the rest of the file.
//!
//! Where this differs from containerlab, it is on the side of an error found early:
//! - a variable that is not set and has no default is an error naming it and its line
//!   (containerlab puts an empty string in its place, which fails later, somewhere
//!   else, or not at all);
//! - names that start with a digit (`$1`, `${1}`) are left as they are, for the
//!   shell snippets of `exec` (containerlab's `-no-digit`);
//! - YAML comments are left as they are: a `${VAR}` in a comment is documentation.

use std::collections::BTreeMap;

/// A variable that cannot be expanded, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    /// 1-based line of the `$`.
    pub line: usize,
    /// The expression as written (`${MTU}`), for the error's field.
    pub expr: String,
    pub msg: String,
}

/// Expands the variables of a topology file's text, reading their values from `env`.
pub fn expand(src: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, VarError> {
    let mut x = Expander {
        env,
        assigned: BTreeMap::new(),
    };
    let mut out = String::with_capacity(src.len());
    for (i, line) in src.split_inclusive('\n').enumerate() {
        let (code, comment) = split_comment(line);
        out.push_str(&x.expand(code, i + 1)?);
        out.push_str(comment);
    }
    Ok(out)
}

/// The process environment, as `expand` reads it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

struct Expander<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    /// Values set by `${VAR:=default}` earlier in the file.
    assigned: BTreeMap<String, String>,
}

impl Expander<'_> {
    fn value(&self, name: &str) -> Option<String> {
        self.assigned.get(name).cloned().or_else(|| (self.env)(name))
    }

    fn expand(&mut self, s: &str, line: usize) -> Result<String, VarError> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('{') {
                let Some(end) = closing_brace(inner) else {
                    return Err(VarError {
                        line,
                        expr: format!("${{{}", inner.trim_end()),
                        msg: "a ${ without its closing } on the same line".into(),
                    });
                };
                out.push_str(&self.braced(&inner[..end], line)?);
                rest = &inner[end + 1..];
            } else {
                let len = name_len(after);
                if len == 0 {
                    // `$!`, `$(`, `$1`, a `$` at the end: not a variable.
                    out.push('$');
                    rest = after;
                } else {
                    let name = &after[..len];
                    out.push_str(&self.value(name).ok_or_else(|| unset(name, &format!("${name}"), line))?);
                    rest = &after[len..];
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// What `${body}` expands to.
    fn braced(&mut self, body: &str, line: usize) -> Result<String, VarError> {
        let expr = format!("${{{body}}}");
        let len = name_len(body);
        if len == 0 {
            if body.starts_with(|c: char| c.is_ascii_digit()) {
                return Ok(expr);
            }
            return Err(VarError {
                line,
                expr,
                msg: "not a variable name (a letter or _, then letters, digits or _)".into(),
            });
        }
        let (name, op) = body.split_at(len);
        let value = self.value(name);
        let (form, word) = [":-", "-", ":=", "=", ":+", "+"]
            .iter()
            .find_map(|f| op.strip_prefix(f).map(|w| (*f, w)))
            .unwrap_or(("", op));
        let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
        match form {
            "" if word.is_empty() => value.ok_or_else(|| unset(name, &expr, line)),
            "" => Err(VarError {
                line,
                expr,
                msg: format!(
                    "{op:?} after {name} is not a form lab knows: write ${{{name}}}, ${{{name}:-default}}, \
                     ${{{name}:=default}} or ${{{name}:+other}}"
                ),
            }),
            ":-" | "-" => {
                let use_default = if form == ":-" { !set_nonempty } else { value.is_none() };
                if use_default {
                    self.expand(word, line)
                } else {
                    Ok(value.unwrap_or_default())
                }
            }
            ":=" | "=" => {
                let use_default = if form == ":=" { !set_nonempty } else { value.is_none() };
                if use_default {
                    let v = self.expand(word, line)?;
                    self.assigned.insert(name.to_string(), v.clone());
                    Ok(v)
                } else {
                    Ok(value.unwrap_or_default())
                }
            }
            _ => {
                let use_other = if form == ":+" { set_nonempty } else { value.is_some() };
                if use_other {
                    self.expand(word, line)
                } else {
                    Ok(String::new())
                }
            }
        }
    }
}

fn unset(name: &str, expr: &str, line: usize) -> VarError {
    VarError {
        line,
        expr: expr.to_string(),
        msg: format!("{name} is not set and has no default: set it in the environment, or write ${{{name}:=default}}"),
    }
}

/// Length of the variable name `s` starts with (0: none).
fn name_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        n = i + c.len_utf8();
    }
    n
}

/// Index of the `}` that closes a `${` whose body `s` starts, counting nested `${`.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// A line split where its YAML comment starts: a `#` at the start or after a space,
/// outside a quoted scalar.
fn split_comment(line: &str) -> (&str, &str) {
    let mut quote: Option<char> = None;
    let mut prev: Option<char> = None;
    // The last character that is not a space: a quote opens a scalar only where one
    // can start.
    let mut prev_solid: Option<char> = None;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if (c == '"' || c == '\'') && matches!(prev_solid, None | Some(':' | '-' | '[' | '{' | ',')) => {
                quote = Some(c)
            }
            None if c == '#' && prev.is_none_or(char::is_whitespace) => return line.split_at(i),
            None => {}
        }
        prev = Some(c);
        if !c.is_whitespace() {
            prev_solid = Some(c);
        }
    }
    (line, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "IMG" => Some("podlab/speaker:v2".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn x(src: &str) -> Result<String, VarError> {
        expand(src, &env)
    }

    #[test]
    fn the_forms_of_containerlab() {
        assert_eq!(x("image: ${IMG}\n").unwrap(), "image: podlab/speaker:v2\n");
        assert_eq!(x("image: $IMG\n").unwrap(), "image: podlab/speaker:v2\n");
        assert_eq!(
            x("a: ${NOPE:-d}\nb: ${EMPTY:-d}\nc: ${EMPTY-d}\n").unwrap(),
            "a: d\nb: d\nc: \n"
        );
        assert_eq!(x("a: ${IMG:-d}\n").unwrap(), "a: podlab/speaker:v2\n");
        assert_eq!(
            x("a: ${NOPE+o}|${IMG+o}|${EMPTY:+o}|${EMPTY+o}\n").unwrap(),
            "a: |o||o\n"
        );
        assert_eq!(x("a: ${NOPE:-${IMG}}\n").unwrap(), "a: podlab/speaker:v2\n");
        assert_eq!(x("a: $$IMG and $$\n").unwrap(), "a: $IMG and $\n");
    }

    #[test]
    fn an_assigned_default_holds_for_the_rest_of_the_file() {
        assert_eq!(x("a: ${MTU:=1500}\nb: ${MTU}\n").unwrap(), "a: 1500\nb: 1500\n");
        assert_eq!(x("a: ${EMPTY:=1}\nb: ${EMPTY=2}\n").unwrap(), "a: 1\nb: 1\n");
    }

    #[test]
    fn shell_snippets_are_left_alone() {
        let s = "exec: [\"sh -c 'speaker run & echo $! > p; awk {print $1} f; echo ${1}'\"]\n";
        assert_eq!(x(s).unwrap(), s);
    }

    #[test]
    fn an_unset_variable_without_default_names_itself_and_its_line() {
        let e = x("name: t\nimage: ${NOPE}\n").unwrap_err();
        assert_eq!((e.line, e.expr.as_str()), (2, "${NOPE}"));
        assert!(
            e.msg.contains("NOPE is not set") && e.msg.contains("${NOPE:=default}"),
            "{}",
            e.msg
        );
        assert_eq!(x("a: 1\nb: 2\nc: x$NOPE\n").unwrap_err().line, 3);
        // A default that is not used is not expanded.
        assert_eq!(x("a: ${IMG:-${NOPE}}\n").unwrap(), "a: podlab/speaker:v2\n");
    }

    #[test]
    fn malformed_expressions_are_errors() {
        assert!(x("a: ${IMG\n").unwrap_err().msg.contains("closing }"));
        assert!(x("a: ${-x}\n").unwrap_err().msg.contains("not a variable name"));
        assert!(x("a: ${IMG?x}\n").unwrap_err().msg.contains("not a form"));
    }

    #[test]
    fn comments_are_not_expanded() {
        let s = "# image: ${NOPE}\nname: t  # set ${NOPE}\nq: \"a # ${IMG}\"\n";
        assert_eq!(
            x(s).unwrap(),
            "# image: ${NOPE}\nname: t  # set ${NOPE}\nq: \"a # podlab/speaker:v2\"\n"
        );
    }
}
