//! What a run of the suite takes: which cells, which cases, and whether it is the
//! whole matrix. A selection that takes nothing is a mistake (a mistyped case ID, a
//! cell that does not exist): it is refused, naming what selected nothing, rather
//! than run as an empty green run. And where its reports go: a folder holds one run,
//! whole, and a partial run does not replace the last full matrix's reports unless
//! asked to.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{cases_for, test_name, SuiteFile};
use crate::render::Cell;

/// The cases and cells of one run.
#[derive(Debug, Clone)]
pub struct Selection {
    pub cells: Vec<Cell>,
    /// Words a case's test name must hold one of (none: every case).
    pub terms: Vec<String>,
    /// Every case on every cell: the whole matrix.
    pub full: bool,
}

impl Selection {
    pub fn takes(&self, name: &str) -> bool {
        self.terms.is_empty() || self.terms.iter().any(|t| name.contains(t.as_str()))
    }

    /// Refuses a selection that takes nothing, naming each word that matched no
    /// case on the cells.
    pub fn check(&self, suites: &[SuiteFile], what_cells: &str) -> Result<(), String> {
        if self.cells.is_empty() {
            return Err(format!("no cell of the matrix is {what_cells}"));
        }
        let names: Vec<String> = self
            .cells
            .iter()
            .flat_map(|cell| {
                cases_for(suites, cell)
                    .into_iter()
                    .map(move |(c, ..)| test_name(c, cell))
            })
            .collect();
        if names.is_empty() {
            return Err(format!("no case runs on {what_cells}"));
        }
        let idle: Vec<&String> = self
            .terms
            .iter()
            .filter(|t| !names.iter().any(|n| n.contains(t.as_str())))
            .collect();
        if !idle.is_empty() {
            let mut ids: Vec<&str> = suites
                .iter()
                .flat_map(|s| s.cases.iter().map(|c| c.id.as_str()))
                .collect();
            ids.sort_by_key(|id| super::report::order(id));
            return Err(format!(
                "{} selects no case on {what_cells} (case IDs: {})",
                idle.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "),
                ids.join(" ")
            ));
        }
        Ok(())
    }
}

/// What a report folder says of the run it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// `full` (the whole matrix) or `partial`.
    pub scope: String,
    /// How the run was asked for.
    pub selection: String,
    /// Unix seconds.
    pub started: f64,
}

pub const RUN_FILE: &str = "run.json";

/// Where a run's reports go by default: the whole matrix's in `conformance/`, a
/// partial run's in `partial/`, so that it does not replace the matrix's.
pub fn default_report_dir(target: &Path, full: bool) -> PathBuf {
    target
        .join("lab-report")
        .join(if full { "conformance" } else { "partial" })
}

/// Empties `dir` for a new run (a folder holds one run, whole), unless it holds the
/// whole matrix's reports and this run is partial: refused then, unless `overwrite`.
pub fn prepare_report_dir(dir: &Path, run: &RunInfo, overwrite: bool) -> Result<(), String> {
    let previous: Option<RunInfo> = std::fs::read_to_string(dir.join(RUN_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(p) = previous {
        if p.scope == "full" && run.scope != "full" && !overwrite {
            return Err(format!(
                "{} holds the reports of the whole matrix: this partial run ({}) would replace them. Give another --report folder, or --overwrite",
                dir.display(),
                run.selection
            ));
        }
    }
    if dir.exists() {
        for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(run).unwrap_or_default();
    std::fs::write(dir.join(RUN_FILE), text).map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::case;

    fn suites() -> Vec<SuiteFile> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
        case::load_dir(&root).unwrap()
    }

    #[test]
    fn a_selection_that_takes_nothing_is_refused_by_name() {
        let cells = Cell::matrix();
        let sel = |terms: &[&str]| Selection {
            cells: cells.clone(),
            terms: terms.iter().map(|t| t.to_string()).collect(),
            full: false,
        };
        assert!(sel(&["WD-01"]).check(&suites(), "every cell").is_ok());
        let e = sel(&["WD-01", "NOPE-99"]).check(&suites(), "every cell").unwrap_err();
        assert!(e.starts_with("`NOPE-99` selects no case on every cell"), "{e}");
        assert!(e.contains("SES-01"), "{e}");
        let none = Selection {
            cells: vec![],
            terms: vec![],
            full: false,
        };
        assert!(none
            .check(&suites(), "node=bird fabric=x")
            .unwrap_err()
            .contains("no cell"));
    }

    #[test]
    fn a_partial_run_does_not_replace_the_whole_matrix() {
        let dir = std::env::temp_dir().join(format!("lab-select-{}", std::process::id()));
        let run = |scope: &str| RunInfo {
            scope: scope.into(),
            selection: "test".into(),
            started: 0.0,
        };
        prepare_report_dir(&dir, &run("full"), false).unwrap();
        std::fs::create_dir_all(dir.join("evidence/WD-01-x")).unwrap();
        std::fs::write(dir.join("summary.md"), "old").unwrap();
        let e = prepare_report_dir(&dir, &run("partial"), false).unwrap_err();
        assert!(e.contains("--overwrite"), "{e}");
        assert!(dir.join("summary.md").exists(), "nothing touched");
        prepare_report_dir(&dir, &run("partial"), true).unwrap();
        assert!(!dir.join("summary.md").exists() && !dir.join("evidence").exists());
        prepare_report_dir(&dir, &run("partial"), false).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
