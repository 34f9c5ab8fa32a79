//! Mutants: deliberately broken speakers that prove the suite catches what it claims.
//! Each is a small patch to `speaker/` in `suites/mutants/<name>.patch`, its header
//! (comment lines before the diff, YAML after the `# `) naming the bug, where it comes
//! from, and the cases and cells that must catch it. A mutant is built from a copy of
//! the workspace with its patch applied (never in the workspace itself), into an image
//! of its own (`podlab/speaker:mutant-<name>`, never `podlab/speaker:latest`), and its
//! cases run on its cells with that image on the speaker's nodes: it is caught when on
//! every one of its cells some case fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};

use crate::render::{Cell, Fabric, Family, NodeSpeaker};
use crate::suite::case::CellFilter;

#[derive(Debug, thiserror::Error)]
pub enum MutantError {
    #[error("{file}: {msg}")]
    Invalid { file: PathBuf, msg: String },
    #[error("{0}")]
    Build(String),
}

/// What a mutant's header says.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The bug, in a sentence.
    pub bug: String,
    /// Where the bug class comes from: an RFC section, a field report.
    pub source: String,
    /// The cases that must catch it (IDs).
    pub cases: Vec<String>,
    /// The cells it must be caught on (our speaker's row; empty lists mean every
    /// fabric, every family).
    #[serde(default)]
    pub cells: CellFilter,
}

#[derive(Debug, Clone)]
pub struct Mutant {
    pub name: String,
    pub file: PathBuf,
    pub header: Header,
    /// The diff, from its first `diff --git` line.
    pub patch: String,
}

impl Mutant {
    /// The image its speaker runs in.
    pub fn image(&self) -> String {
        format!("podlab/speaker:mutant-{}", self.name)
    }

    /// The cells it must be caught on: our speaker's row, as its header narrows it.
    pub fn cells(&self) -> Vec<Cell> {
        Cell::matrix()
            .into_iter()
            .filter(|c| c.node == NodeSpeaker::Speaker && self.header.cells.matches(c))
            .collect()
    }
}

/// Reads one mutant: its header, checked, and its diff.
pub fn load(path: &Path) -> Result<Mutant, MutantError> {
    let invalid = |msg: String| MutantError::Invalid {
        file: path.to_path_buf(),
        msg,
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read: {e}")))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| invalid("no file name".into()))?
        .to_string();
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(invalid(format!("{name:?}: name a mutant in lower case, digits and -")));
    }
    let start = text
        .find("diff --git ")
        .ok_or_else(|| invalid("no `diff --git` line: a mutant is a patch (git diff) after its header".into()))?;
    let header = parse_header(&text[..start]).map_err(invalid)?;
    if header.cases.is_empty() {
        return Err(invalid(
            "header: name the cases that must catch it (cases: [GR-03])".into(),
        ));
    }
    if header.cells.node.iter().any(|n| n != "speaker") {
        return Err(invalid(
            "header: a mutant is of our speaker: cells.node, if given, is [speaker]".into(),
        ));
    }
    for f in &header.cells.fabric {
        Fabric::check_name(f).map_err(|e| invalid(format!("header: cells.fabric: {e}")))?;
    }
    for f in &header.cells.family {
        f.parse::<Family>()
            .map_err(|e| invalid(format!("header: cells.family: {e}")))?;
    }
    if !text[start..].lines().any(|l| l.starts_with("+++ b/speaker/")) {
        return Err(invalid("the diff changes no file under speaker/".into()));
    }
    let m = Mutant {
        name,
        file: path.to_path_buf(),
        header,
        patch: text[start..].to_string(),
    };
    if m.cells().is_empty() {
        return Err(invalid("header: its cells are no cell of the matrix".into()));
    }
    Ok(m)
}

/// The header: `# key: value` lines, a value going on over the lines after it that
/// start with `#` and two spaces. `bug` and `source` are prose, `cases` a list of
/// case IDs, `cells` a YAML mapping as a case's `cells` is written.
fn parse_header(text: &str) -> Result<Header, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some(rest) = line.strip_prefix('#') else {
            return Err(format!(
                "line {}: the header is comment lines (`# key: value`) before the diff",
                i + 1
            ));
        };
        match (rest.strip_prefix("   "), fields.last_mut()) {
            (Some(more), Some((_, value))) => {
                value.push(' ');
                value.push_str(more.trim());
            }
            _ => {
                let (key, value) = rest
                    .trim()
                    .split_once(':')
                    .ok_or_else(|| format!("line {}: write `# key: value`", i + 1))?;
                fields.push((key.trim().to_string(), value.trim().to_string()));
            }
        }
    }
    let mut header = Header {
        bug: String::new(),
        source: String::new(),
        cases: Vec::new(),
        cells: CellFilter::default(),
    };
    for (key, value) in fields {
        match key.as_str() {
            "bug" => header.bug = value,
            "source" => header.source = value,
            "cases" => {
                header.cases = value
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect()
            }
            "cells" => header.cells = serde_yaml::from_str(&value).map_err(|e| format!("header: cells: {e}"))?,
            other => return Err(format!("header: unknown field `{other}`: bug, source, cases, cells")),
        }
    }
    if header.bug.is_empty() || header.source.is_empty() {
        return Err("header: say the bug (`# bug: ...`) and where it comes from (`# source: ...`)".into());
    }
    Ok(header)
}

/// Every mutant of a folder, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Mutant>, MutantError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| MutantError::Invalid {
            file: dir.to_path_buf(),
            msg: format!("cannot read: {e}"),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    files.sort();
    files.iter().map(|f| load(f)).collect()
}

/// How far a mutant is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// Compiled and checked (`cargo check`): the patch still applies and builds.
    Check,
    /// The release binary, for an image.
    Release,
}

/// A copy of the speaker's part of the workspace at `root`, in `dir`, with the
/// mutant's patch applied: the workspace itself is never touched.
pub fn tree(root: &Path, m: &Mutant, dir: &Path) -> Result<PathBuf, MutantError> {
    let tree = dir.join(&m.name);
    let err = |what: &str, e: std::io::Error| MutantError::Build(format!("{}: {what}: {e}", tree.display()));
    if tree.exists() {
        std::fs::remove_dir_all(&tree).map_err(|e| err("cannot clear", e))?;
    }
    std::fs::create_dir_all(&tree).map_err(|e| err("cannot create", e))?;
    // The workspace manifest with the speaker as its only member.
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).map_err(|e| err("Cargo.toml", e))?;
    let mut manifest: String = manifest
        .lines()
        .map(|l| match l.trim_start().starts_with("members") {
            true => "members = [\"speaker\"]",
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    manifest.push('\n');
    std::fs::write(tree.join("Cargo.toml"), manifest).map_err(|e| err("Cargo.toml", e))?;
    std::fs::copy(root.join("Cargo.lock"), tree.join("Cargo.lock")).map_err(|e| err("Cargo.lock", e))?;
    for part in ["Cargo.toml", "src", "tests", "benches"] {
        copy_all(&root.join("speaker").join(part), &tree.join("speaker").join(part)).map_err(|e| err(part, e))?;
    }
    let patch = tree.join("mutant.patch");
    std::fs::write(&patch, &m.patch).map_err(|e| err("mutant.patch", e))?;
    // Inside the workspace's own repository `git apply` would take the paths as the
    // repository's and skip them silently: it must not look above the tree.
    let ceiling = tree.parent().unwrap_or(&tree);
    let out = std::process::Command::new("git")
        .args(["apply", "--verbose", "--whitespace=nowarn", "mutant.patch"])
        .env("GIT_CEILING_DIRECTORIES", ceiling)
        .current_dir(&tree)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| MutantError::Build(format!("cannot run git apply: {e}")))?;
    let said = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !said.contains("Applied patch") || said.contains("Skipped patch") {
        return Err(MutantError::Build(format!(
            "{}: the patch no longer applies to speaker/: {}",
            m.file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(tree)
}

fn copy_all(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.is_file() {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from, to)?;
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        copy_all(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(())
}

/// Builds a mutant's speaker from its tree, in `target_dir` (shared by the mutants,
/// so the dependencies compile once); returns the binary for a release build.
pub async fn build(tree: &Path, target_dir: &Path, how: Build) -> Result<PathBuf, MutantError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = tokio::process::Command::new(cargo);
    match how {
        Build::Check => cmd.args(["check", "--quiet", "-p", "speaker", "--bin", "speaker"]),
        Build::Release => cmd.args(["build", "--release", "--quiet", "-p", "speaker", "--bin", "speaker"]),
    };
    let out = cmd
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(tree)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| MutantError::Build(format!("cannot run cargo: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().take(30).collect();
        return Err(MutantError::Build(format!(
            "{}: the mutant does not build:\n{}",
            tree.display(),
            tail.join("\n")
        )));
    }
    Ok(target_dir.join("release/speaker"))
}

/// A mutant's verdict on one cell: caught (by the failing cases, with why) or not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellVerdict {
    pub cell: String,
    pub caught: bool,
    /// Each failing case and what failed: `GR-03 step 1: ...`.
    pub by: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub name: String,
    pub bug: String,
    pub source: String,
    pub cases: Vec<String>,
    /// Caught on every cell.
    pub caught: bool,
    /// Why it was not run, or did not build.
    pub error: Option<String>,
    pub cells: Vec<CellVerdict>,
}

impl Verdict {
    /// From the results of the mutant's cases on its cells.
    pub fn from_results(m: &Mutant, cells: &[Cell], results: &[crate::suite::CaseResult]) -> Verdict {
        let cells: Vec<CellVerdict> = cells
            .iter()
            .map(|cell| {
                let name = cell.to_string();
                let by: Vec<String> = results
                    .iter()
                    .filter(|r| r.cell == name)
                    .filter_map(|r| match &r.outcome {
                        crate::suite::Outcome::Fail(_) => {
                            let first = r.reasons.first().map(|x| x.to_string()).unwrap_or_default();
                            let short: String = first.chars().take(300).collect();
                            Some(format!("{} {short}", r.id))
                        }
                        _ => None,
                    })
                    .collect();
                CellVerdict {
                    cell: name,
                    caught: !by.is_empty(),
                    by,
                }
            })
            .collect();
        Verdict {
            name: m.name.clone(),
            bug: m.header.bug.clone(),
            source: m.header.source.clone(),
            cases: m.header.cases.clone(),
            caught: !cells.is_empty() && cells.iter().all(|c| c.caught),
            error: None,
            cells,
        }
    }

    pub fn failed(m: &Mutant, error: String) -> Verdict {
        Verdict {
            name: m.name.clone(),
            bug: m.header.bug.clone(),
            source: m.header.source.clone(),
            cases: m.header.cases.clone(),
            caught: false,
            error: Some(error),
            cells: Vec::new(),
        }
    }
}

/// Builds each mutant's image and runs its cases on its cells, `jobs` cells up at once;
/// each mutant's case reports go to `report_dir/<name>/`. The images are removed
/// afterwards.
pub async fn run_all(
    root: &Path,
    mutants: &[Mutant],
    suites: &[crate::suite::SuiteFile],
    jobs: usize,
    report_dir: &Path,
    quiet: bool,
) -> Vec<Verdict> {
    let progress = crate::progress::Progress::new(quiet);
    let work = root.join("target/mutants");
    let mut verdicts = Vec::new();
    for m in mutants {
        let started = std::time::Instant::now();
        let built = async {
            let tree = tree(root, m, &work.join("trees"))?;
            let bin = build(&tree, &work.join("build"), Build::Release).await?;
            let rt = crate::runtime::Runtime::connect()
                .await
                .map_err(|e| MutantError::Build(e.to_string()))?;
            crate::images::speaker_image(&rt, root, &bin, &m.image(), false)
                .await
                .map_err(|e| MutantError::Build(e.to_string()))?;
            Ok::<_, MutantError>(())
        };
        if let Err(e) = progress.around(&format!("building mutant {}", m.name), built).await {
            verdicts.push(Verdict::failed(m, e.to_string()));
            continue;
        }
        progress.done(&format!("mutant {} built as {}", m.name, m.image()), started);
        let cells = m.cells();
        let dir = report_dir.join(&m.name);
        let mut runners = Vec::new();
        for _ in 0..jobs.max(1) {
            match crate::suite::Runner::new(root.join("target/lab-cells"), dir.clone(), quiet).await {
                Ok(mut r) => {
                    r.speaker_image = Some(m.image());
                    runners.push(r);
                }
                Err(e) => {
                    verdicts.push(Verdict::failed(m, e));
                    break;
                }
            }
        }
        if runners.is_empty() {
            continue;
        }
        let wanted = |name: &str| m.header.cases.iter().any(|id| name.starts_with(&format!("{id} ")));
        let results = crate::suite::run(&mut runners, suites, &cells, &wanted).await;
        let _ = crate::suite::report::write_all(&results, &dir);
        let v = Verdict::from_results(m, &cells, &results);
        progress.note(&format!(
            "mutant {}: {}",
            m.name,
            if v.caught { "caught" } else { "SURVIVED" }
        ));
        verdicts.push(v);
        if let Ok(rt) = crate::runtime::Runtime::connect().await {
            let _ = rt.remove_image(&m.image()).await;
        }
    }
    verdicts
}

/// `mutants.md`: per mutant, caught or survived, on which cells, by which step.
pub fn report_md(verdicts: &[Verdict]) -> String {
    use std::fmt::Write as _;
    let caught = verdicts.iter().filter(|v| v.caught).count();
    let mut s = format!(
        "# Mutants\n\n{caught} of {} caught. A mutant is caught when on every one of its cells a case fails.\n\n| mutant | bug | source | cases | verdict |\n|---|---|---|---|---|\n",
        verdicts.len()
    );
    for v in verdicts {
        let verdict = match (&v.error, v.caught) {
            (Some(_), _) => "**not run**",
            (None, true) => "caught",
            (None, false) => "**survived**",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {verdict} |",
            v.name,
            v.bug,
            v.source,
            v.cases.join(" ")
        );
    }
    for v in verdicts {
        let _ = writeln!(s, "\n## {}\n", v.name);
        if let Some(e) = &v.error {
            let _ = writeln!(s, "Not run: {e}");
        }
        for c in &v.cells {
            let _ = writeln!(
                s,
                "- [{}]: {}",
                c.cell,
                if c.caught { "caught" } else { "**survived**" }
            );
            for b in &c.by {
                let _ = writeln!(s, "  - {b}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lab-mutant-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const DIFF: &str = "diff --git a/speaker/src/node.rs b/speaker/src/node.rs\n--- a/speaker/src/node.rs\n+++ b/speaker/src/node.rs\n@@ -1 +1 @@\n-a\n+b\n";

    /// The repository's mutants: headers valid, cases that exist, one at least per
    /// family of the catalogue.
    #[test]
    fn the_repository_mutants_name_cases_that_exist() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let suites = crate::suite::case::load_dir(&root.join("suites")).unwrap();
        let mutants = load_dir(&root.join("suites/mutants")).unwrap();
        let mut families = std::collections::BTreeSet::new();
        for m in &mutants {
            for id in &m.header.cases {
                assert!(
                    suites.iter().any(|s| s.cases.iter().any(|c| c.id == *id)),
                    "{}: no case {id}",
                    m.name
                );
                families.insert(id.split('-').next().unwrap().to_string());
            }
        }
        for f in ["SES", "RT", "DP", "WD", "GR", "RB", "SVC", "POL"] {
            assert!(families.contains(f), "no mutant caught by a {f} case");
        }
    }

    #[test]
    fn a_header_is_read_and_checked() {
        let p = write(
            "gr-flush-early.patch",
            &format!("# bug: stale routes flushed at half the restart time\n# source: RFC 4724 4.2\n# cases: [GR-03]\n# cells: {{fabric: [mesh, tor/frr], family: [v4, dual]}}\n{DIFF}"),
        );
        let m = load(&p).unwrap();
        assert_eq!(m.image(), "podlab/speaker:mutant-gr-flush-early");
        assert_eq!(m.cells().len(), 4);
        assert!(m.patch.starts_with("diff --git"));
        let bad = write("x.patch", &format!("# bug: b\n# source: s\n# cases: []\n{DIFF}"));
        assert!(load(&bad).unwrap_err().to_string().contains("name the cases"));
        let bad = write(
            "y.patch",
            &format!("# bug: b\n# source: s\n# cases: [WD-01]\n# cells: {{node: [bird]}}\n{DIFF}"),
        );
        assert!(load(&bad).unwrap_err().to_string().contains("[speaker]"));
        let bad = write("z.patch", "# bug: b\n# source: s\n# cases: [WD-01]\n");
        assert!(load(&bad).unwrap_err().to_string().contains("diff --git"));
    }
}
