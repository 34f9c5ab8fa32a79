//! `lab exec`: one command on many nodes, selected by name or by label as
//! containerlab's `exec --label` selects them, with containerlab's JSON for the
//! results: `{"<container>": [{"cmd": [...], "return-code": N, "stdout": "...",
//! "stderr": "..."}]}`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::runtime::{is_running, name_of, node_of, Runtime, RuntimeError};

/// What one node answered.
#[derive(Debug, Clone, Serialize)]
pub struct Result1 {
    pub cmd: Vec<String>,
    #[serde(rename = "return-code")]
    pub return_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// A running container chosen to run the command: its name and its node's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub container: String,
    pub node: String,
}

/// The running containers of `lab` whose node is one of `nodes` (every node when
/// empty) and that carry every `KEY=VALUE` of `labels`. A node named that is not
/// running is an error, so a typo does not pass as "nothing to do".
pub async fn targets(
    rt: &Runtime,
    lab: &str,
    nodes: &[String],
    labels: &[(String, String)],
) -> Result<Vec<Target>, RuntimeError> {
    let mut found = Vec::new();
    let mut seen = Vec::new();
    for c in rt.containers(Some(lab)).await? {
        let l = c.labels.clone().unwrap_or_default();
        let node = node_of(&c).unwrap_or_default();
        seen.push(node.clone());
        let named = nodes.is_empty() || nodes.contains(&node);
        let labelled = labels.iter().all(|(k, v)| l.get(k) == Some(v));
        if is_running(&c) && named && labelled {
            let container = name_of(&c).unwrap_or_default();
            found.push(Target { container, node });
        }
    }
    if let Some(missing) = nodes.iter().find(|n| !seen.contains(n)) {
        seen.sort();
        return Err(RuntimeError::Other(format!(
            "lab {lab} has no node {missing:?} deployed (nodes: {})",
            seen.join(", ")
        )));
    }
    Ok(found)
}

/// Runs `cmd` in every target at once.
pub async fn run(
    rt: &Runtime,
    targets: &[Target],
    cmd: &[String],
) -> Result<BTreeMap<String, Vec<Result1>>, RuntimeError> {
    let runs = targets.iter().map(|t| async move {
        let out = rt.exec(&t.container, cmd).await?;
        Ok::<_, RuntimeError>((
            t.container.clone(),
            vec![Result1 {
                cmd: cmd.to_vec(),
                return_code: out.code,
                stdout: out.stdout,
                stderr: out.stderr,
            }],
        ))
    });
    futures::future::try_join_all(runs)
        .await
        .map(|v| v.into_iter().collect())
}

/// `KEY=VALUE`, as `--label` takes it.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?}: write KEY=VALUE (clab-node-name=n1, lab.role=node)")),
    }
}

/// A command line split into words as a shell would split it (quotes and
/// backslashes), without expanding anything: containerlab's `--cmd "ip -j route"`.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("{s:?}: a ' is not closed")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c)
                            }
                            None => return Err(format!("{s:?}: a \" is not closed")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(format!("{s:?}: a \" is not closed")),
                    }
                }
            }
            '\\' => {
                let w = word.get_or_insert_with(String::new);
                if let Some(c) = chars.next() {
                    w.push(c);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_as_a_shell_splits_them() {
        assert_eq!(split_words("ip -j route").unwrap(), ["ip", "-j", "route"]);
        assert_eq!(
            split_words(r#"sh -c 'ip route | grep "10.244"' x\ y"#).unwrap(),
            ["sh", "-c", r#"ip route | grep "10.244""#, "x y"]
        );
        assert_eq!(
            split_words(r#"echo "a \"b\" $c" ''"#).unwrap(),
            ["echo", r#"a "b" $c"#, ""]
        );
        assert!(split_words("echo 'x").is_err());
    }

    #[test]
    fn labels_are_key_value() {
        assert_eq!(
            parse_label("lab.role=node").unwrap(),
            ("lab.role".into(), "node".into())
        );
        assert_eq!(parse_label("k=").unwrap(), ("k".into(), "".into()));
        assert!(parse_label("=x").is_err() && parse_label("nokey").is_err());
    }

    #[test]
    fn results_are_containerlabs_json() {
        let r = Result1 {
            cmd: vec!["true".into()],
            return_code: 0,
            stdout: "x".into(),
            stderr: String::new(),
        };
        let v = serde_json::to_value(BTreeMap::from([("clab-t-n1".to_string(), vec![r])])).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"clab-t-n1": [{"cmd": ["true"], "return-code": 0, "stdout": "x", "stderr": ""}]})
        );
    }
}
