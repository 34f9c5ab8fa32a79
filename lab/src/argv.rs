//! Splitting a command line into words the way containerlab does for `cmd` and `exec`
//! (POSIX-shell quoting, no expansion): `bash -c "ip a; ip r"` is three words.

/// Splits `s` into words. Unbalanced quotes keep what was read so far.
pub fn split(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => cur.push('\\'),
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn words_and_quotes() {
        assert_eq!(
            split("ip route add blackhole 10.0.0.0/26"),
            ["ip", "route", "add", "blackhole", "10.0.0.0/26"]
        );
        assert_eq!(
            split(r#"bash -c "ip a; echo \"x\"""#),
            ["bash", "-c", r#"ip a; echo "x""#]
        );
        assert_eq!(split("sh -c 'a b'  c"), ["sh", "-c", "a b", "c"]);
        assert_eq!(split("a\\ b ''"), ["a b", ""]);
        assert!(split("   ").is_empty());
    }
}
