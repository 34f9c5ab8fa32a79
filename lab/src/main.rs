//! `lab`: deploy containerlab topologies of real BGP daemons through Docker, read their
//! sessions, and tear them down. One function per verb, as containerlab has `cmd/<verb>`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use lab::probes::{self, PeerTable};
use lab::progress::Progress;
use lab::runtime::{Runtime, LABEL_LAB, LABEL_NODE};
use lab::topology::Topology;
use lab::{bringup, deploy, graph, images, pods, render, report, services, watch};

/// Exit code when the command worked but what it checks does not hold (a session is
/// not Established).
const EXIT_NOT_HOLDING: u8 = 3;

#[derive(Parser)]
#[command(
    name = "lab",
    version,
    about = "Containerlab-style BGP pod-network labs on Docker, with no registry"
)]
#[command(
    after_help = "Exit codes: 0 when what was asked holds; 1 on errors; 2 on usage errors; \
3 when the lab was read but a session is not Established."
)]
struct Cli {
    /// Print only errors (no progress).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Deploy a topology, wait for every BGP session, print the peer table.
    Up {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
        /// Seconds to wait for every session to be Established (0: do not wait).
        #[arg(long, default_value_t = 60)]
        wait: u64,
        /// Remove a running deployment of the same lab first.
        #[arg(long)]
        reconfigure: bool,
        /// Keep what was made when a step fails, to look at it (`lab down` removes it).
        #[arg(long)]
        keep_on_error: bool,
        /// Print the peer table as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a lab's containers and its management network.
    Down(Target),
    /// Nodes of a lab: container, state, image, addresses, interfaces.
    Inspect {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
    /// Every BGP session of every node, read from each implementation's own interface.
    Peers {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
    /// Run a command in a node: `lab exec -t FILE NODE -- ip route`.
    Exec {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
        node: String,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Pods, Calico style: add, delete, list.
    Pod {
        #[command(subcommand)]
        verb: PodVerb,
    },
    /// Kubernetes services, played by the lab: add, delete, list, connect.
    Service {
        #[command(subcommand)]
        verb: ServiceVerb,
    },
    /// Every pod pings every other pod; exit 0 only when all answer.
    Ping {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
        /// Seconds to retry failed pairs (routes of new pods may be on their way).
        #[arg(long, default_value_t = 10)]
        wait: u64,
        #[arg(long)]
        json: bool,
    },
    /// The topology as a Mermaid graph.
    Graph {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
    },
    /// Check a topology file without creating anything.
    Validate {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
    },
    /// Run the conformance suite over cells of the matrix: each cell rendered and
    /// deployed once, its cases run in turn, reports written (`--report`).
    Test {
        /// Run only the cases whose name holds one of these (`WD-01`, `tor/frr`, ...).
        cases: Vec<String>,
        #[command(flatten)]
        cells: CellArgs,
        /// This shard of the cells, `I/N` (every N-th cell from the I-th).
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Only the cases marked for the smoke subset.
        #[arg(long)]
        smoke: bool,
        /// How many cells are up at once, each running its cases (1-4). Two suit a
        /// 2-core machine: the cases mostly wait on timers.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
        jobs: u8,
        /// Where the case files are.
        #[arg(long, default_value = "suites")]
        suites: PathBuf,
        /// Where the reports go (emptied first: a folder holds one run). By default
        /// target/lab-report/conformance for the whole matrix, target/lab-report/partial
        /// for anything less.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Let a partial run replace the whole matrix's reports in --report.
        #[arg(long)]
        overwrite: bool,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
        /// List the case runs instead of running them.
        #[arg(long)]
        list: bool,
    },
    /// Build deliberately broken speakers (`suites/mutants/*.patch`, or patch files
    /// given by path) each into an image of its own, run the cases its header names on
    /// its cells, and report which the suite caught (mutants.md, mutants.json).
    Mutants {
        /// Mutant names (of suites/mutants), or paths of patch files; all by default.
        names: Vec<String>,
        /// Only check that every patch still applies and builds (`cargo check`).
        #[arg(long)]
        check: bool,
        /// Only check that every patch still applies, without building (seconds where
        /// `--check` takes minutes: `make test` runs this).
        #[arg(long, conflicts_with = "check")]
        applies: bool,
        /// How many cells are up at once (1-4).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
        jobs: u8,
        /// Where the reports go (emptied first).
        #[arg(long, default_value = "target/lab-report/mutants")]
        report: PathBuf,
        /// Where the case files are.
        #[arg(long, default_value = "suites")]
        suites: PathBuf,
        /// List the mutants with their bug and cells instead of running them.
        #[arg(long)]
        list: bool,
    },
    /// Merge the results of several `lab test` runs (the shards of one matrix) into one
    /// set of reports: `lab report --report OUT shard-*/results.json`.
    Report {
        /// The runs' `results.json` files, or the folders holding them.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(long, default_value = "target/lab-report/conformance")]
        report: PathBuf,
    },
    /// Write cells of the conformance matrix as containerlab folders, from each node's
    /// BGP intent: `lab render --node speaker --fabric tor/frr --family v4`.
    Render {
        #[command(flatten)]
        cells: CellArgs,
        /// Where the folders go (one per cell).
        #[arg(long, default_value = "target/lab-cells")]
        out: PathBuf,
    },
    /// Build the node images (base, speaker); nothing is rebuilt whose inputs did not change.
    Images {
        /// Rebuild even when the inputs did not change.
        #[arg(long)]
        force: bool,
        /// Build only this image.
        #[arg(long, value_parser = ["base", "speaker"])]
        only: Option<String>,
        /// The workspace root (holding images/); found from the current folder by default.
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PodVerb {
    /// Create a pod in a node: `lab pod add -t FILE n1 --ip 10.244.0.5 [--name web]`.
    /// An IP outside the node's block is a borrowed IP.
    Add {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
        node: String,
        #[arg(long)]
        ip: std::net::IpAddr,
        /// Its IPv6 address too (a dual-stack pod).
        #[arg(long)]
        ip6: Option<std::net::IpAddr>,
        /// Default: <node>-<ip with dashes>.
        #[arg(long)]
        name: Option<String>,
        /// Time the pod's /32 reaching every node's kernel, from route events.
        #[arg(long)]
        timing: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete a pod (its namespace, veth and host route).
    Del {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
        node: String,
        name: String,
        /// Time the pod's /32 leaving every kernel that had it, from route events.
        #[arg(long)]
        timing: bool,
        #[arg(long)]
        json: bool,
    },
    /// The pods of a lab, read from its nodes.
    List {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ServiceVerb {
    /// Create a service: `lab service add -t FILE web --ip 198.51.100.10 --port 80
    /// --type LoadBalancer --policy Local --endpoints n1-pod1,n3-pod1`. Each node is
    /// programmed as kube-proxy does, each endpoint pod answers on the port, and each
    /// speaker node's state file lists it.
    Add {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
        name: String,
        /// Its IP, or one of each family: `198.51.100.10,fd00:198::10`.
        #[arg(long)]
        ip: String,
        #[arg(long)]
        port: u16,
        /// ClusterIP, LoadBalancer or External (which BGPConfiguration field covers it).
        #[arg(long = "type", default_value = "LoadBalancer")]
        kind: String,
        /// Cluster or Local (externalTrafficPolicy; internalTrafficPolicy for ClusterIP).
        #[arg(long, default_value = "Cluster")]
        policy: String,
        /// Endpoint pods, by name.
        #[arg(long, value_delimiter = ',')]
        endpoints: Vec<String>,
    },
    /// Delete a service.
    Del {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
        name: String,
    },
    /// The services of a lab, with their endpoints and where those run.
    List {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Open TCP connections to a service from a client node and count who answered
    /// (and which client address it saw); exit 0 only when every one was answered.
    Connect {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
        name: String,
        /// The node to connect from (default: the lab's `lab.role: client` node).
        #[arg(long)]
        from: Option<String>,
        #[arg(long, default_value_t = 20)]
        count: usize,
        #[arg(long)]
        json: bool,
    },
}

/// Which cells of the matrix: every value of what is not given.
#[derive(Args, Clone, Debug, Default)]
struct CellArgs {
    /// Node speaker: speaker, bird, frr (repeat or comma-separate for several).
    #[arg(long, value_delimiter = ',')]
    node: Vec<String>,
    /// Fabric: mesh, tor/frr, tor/bird, rr/bird, rr/frr, rr/gobgp, rack, dualtor/frr, dualtor/bird.
    #[arg(long, value_delimiter = ',')]
    fabric: Vec<String>,
    /// Family: v4, dual, v6.
    #[arg(long, value_delimiter = ',')]
    family: Vec<String>,
}

impl CellArgs {
    fn is_empty(&self) -> bool {
        self.node.is_empty() && self.fabric.is_empty() && self.family.is_empty()
    }

    /// The cells asked for, as a user wrote them.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (key, values) in [("node", &self.node), ("fabric", &self.fabric), ("family", &self.family)] {
            if !values.is_empty() {
                parts.push(format!("{key}={}", values.join(",")));
            }
        }
        if parts.is_empty() {
            "every cell".into()
        } else {
            parts.join(" ")
        }
    }

    fn cells(&self) -> Result<Vec<render::Cell>> {
        let nodes = self
            .node
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<render::NodeSpeaker>, String>>()
            .map_err(anyhow::Error::msg)?;
        let fabrics = self
            .fabric
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<render::Fabric>, String>>()
            .map_err(anyhow::Error::msg)?;
        let families = self
            .family
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<render::Family>, String>>()
            .map_err(anyhow::Error::msg)?;
        Ok(render::Cell::matrix()
            .into_iter()
            .filter(|c| nodes.is_empty() || nodes.contains(&c.node))
            .filter(|c| fabrics.is_empty() || fabrics.contains(&c.fabric))
            .filter(|c| families.is_empty() || families.contains(&c.family))
            .collect())
    }
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct Target {
    #[arg(short = 't', long = "topo", value_name = "FILE")]
    topo: Option<PathBuf>,
    /// Every lab this runner deployed.
    #[arg(long)]
    all: bool,
}

impl Target {
    /// The lab name the target selects (None: all labs).
    fn lab(&self) -> Result<Option<String>> {
        match &self.topo {
            Some(f) => Ok(Some(load(f)?.name)),
            None => Ok(None),
        }
    }
}

fn load(path: &std::path::Path) -> Result<Topology> {
    Ok(Topology::load(path)?)
}

/// A topology and a connection to the engine it runs on: what most verbs start with.
async fn open(path: &std::path::Path) -> Result<(Topology, Runtime)> {
    Ok((load(path)?, Runtime::connect().await?))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAB_LOG").unwrap_or_else(|_| "warn,lab=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lab: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let progress = Progress::new(cli.quiet);
    match cli.verb {
        Verb::Validate { topo } => {
            let t = load(&topo)?;
            for f in &t.ignored {
                eprintln!("lab: note: {f} is a containerlab setting that lab ignores");
            }
            println!(
                "{}: lab {} is valid: {} nodes, {} links",
                topo.display(),
                t.name,
                t.nodes.len(),
                t.links.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Verb::Graph { topo } => {
            print!("{}", graph::mermaid(&load(&topo)?));
            Ok(ExitCode::SUCCESS)
        }
        Verb::Up {
            topo,
            wait,
            reconfigure,
            keep_on_error,
            json,
        } => {
            let (t, rt) = open(&topo).await?;
            let start = Instant::now();
            let opts = deploy::UpOptions {
                reconfigure,
                keep_on_error,
            };
            let report = match bringup::up(&rt, &t, &opts, Duration::from_secs(wait), &progress).await {
                Ok(r) => r,
                Err(e @ bringup::UpError::Deploy(_)) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "deploying lab {} from {}",
                        t.name,
                        topo.display()
                    )))
                }
                Err(e) => {
                    if let Some(table) = e.table() {
                        print_peers(table, json)?;
                    }
                    if let bringup::UpError::Ping { matrix, .. } = &e {
                        if !json {
                            print!("\n{}", report::ping_matrix(matrix));
                        }
                    }
                    if let bringup::UpError::Services { report, .. } = &e {
                        if !json {
                            print!("\n{}", services::up::render(report));
                        }
                    }
                    bail!(
                        "lab {}: {e}. Look with `lab exec -t {} NODE -- ...`; remove with `lab down -t {}`",
                        t.name,
                        topo.display(),
                        topo.display()
                    )
                }
            };
            let Some(report) = report else {
                progress.done(&format!("lab {} deployed", t.name), start);
                return Ok(ExitCode::SUCCESS);
            };
            progress.done(&format!("lab {} up", t.name), start);
            print_peers(&report.table, json)?;
            if let (Some(m), false) = (&report.matrix, json) {
                print!("\n{}", report::ping_matrix(m));
            }
            if let (Some(s), false) = (&report.services, json) {
                print!("\n{}", services::up::render(s));
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Down(target) => {
            let lab = target.lab()?;
            let rt = Runtime::connect().await?;
            match lab {
                Some(lab) => deploy::down(&rt, &lab, &progress).await?,
                None => deploy::down_all(&rt, &progress).await?,
            };
            Ok(ExitCode::SUCCESS)
        }
        Verb::Peers { target, json } => {
            let lab = target.lab()?;
            let rt = Runtime::connect().await?;
            let table = probes::peers(&rt, lab.as_deref()).await?;
            print_peers(&table, json)?;
            Ok(if table.all_established() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_NOT_HOLDING)
            })
        }
        Verb::Inspect { target, json } => inspect(&target, json).await,
        Verb::Exec { topo, node, cmd } => {
            let t = load(&topo)?;
            if !t.nodes.contains_key(&node) {
                bail!(
                    "{}: no node {node:?} (nodes: {})",
                    topo.display(),
                    t.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            let rt = Runtime::connect().await?;
            let out = rt.exec(&t.container_name(&node), &cmd).await?;
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            Ok(ExitCode::from(u8::try_from(out.code).unwrap_or(1)))
        }
        Verb::Pod { verb } => pod(verb).await,
        Verb::Service { verb } => service(verb).await,
        Verb::Ping { topo, wait, json } => {
            let (t, rt) = open(&topo).await?;
            let list = pods::list(&rt, &t).await?;
            if list.len() < 2 {
                bail!(
                    "lab {} has {} pods: nothing to ping (`lab pod add`, or lab.pods labels)",
                    t.name,
                    list.len()
                );
            }
            let m = pods::ping_matrix(&rt, &t, list, Duration::from_secs(wait)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&m)?);
            } else {
                print!("{}", report::ping_matrix(&m));
            }
            Ok(if m.complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_NOT_HOLDING)
            })
        }
        Verb::Test {
            cases,
            cells,
            shard,
            smoke,
            jobs,
            suites,
            report,
            overwrite,
            json,
            list,
        } => {
            let mut suite_files = lab::suite::case::load_dir(&suites)?;
            if smoke {
                for s in &mut suite_files {
                    s.cases.retain(|c| c.smoke);
                }
            }
            let what_cells = cells.describe();
            let every_cell = cells.is_empty() && shard.is_none();
            let mut cell_list = match cells.cells() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("lab: error: {e:#}");
                    return Ok(ExitCode::from(2));
                }
            };
            if let Some(spec) = &shard {
                let (i, n) = spec
                    .split_once('/')
                    .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
                    .filter(|(i, n)| *i >= 1 && i <= n)
                    .with_context(|| format!("--shard {spec}: write I/N, 1 <= I <= N"))?;
                cell_list = lab::suite::shard(cell_list, i, n);
            }
            let selection = lab::suite::select::Selection {
                cells: cell_list,
                full: every_cell && cases.is_empty() && !smoke,
                terms: cases.clone(),
            };
            if let Err(e) = selection.check(&suite_files, &what_cells) {
                eprintln!("lab: error: {e}");
                return Ok(ExitCode::from(2));
            }
            let cells = selection.cells.clone();
            let filter = |name: &str| selection.takes(name);
            if list {
                // Written, not printed: a reader that stops early (`| head`) ends the
                // listing, not the program with a panic.
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                for cell in &cells {
                    for (case, _, applies) in lab::suite::cases_for(&suite_files, cell) {
                        let name = lab::suite::test_name(case, cell);
                        if filter(&name) {
                            let line = match applies {
                                Ok(()) => writeln!(out, "{name}"),
                                Err(why) => writeln!(out, "{name} (left out: {why})"),
                            };
                            if line.is_err() {
                                return Ok(ExitCode::SUCCESS);
                            }
                        }
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            let report_dir =
                report.unwrap_or_else(|| lab::suite::select::default_report_dir(Path::new("target"), selection.full));
            let run_info = lab::suite::select::RunInfo {
                scope: if selection.full { "full" } else { "partial" }.into(),
                selection: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
                started: lab::clock::now(),
            };
            if let Err(e) = lab::suite::select::prepare_report_dir(&report_dir, &run_info, overwrite) {
                eprintln!("lab: error: {e}");
                return Ok(ExitCode::from(2));
            }
            let mut runners = Vec::new();
            for _ in 0..jobs {
                let runner = lab::suite::Runner::new(PathBuf::from("target/lab-cells"), report_dir.clone(), cli.quiet)
                    .await
                    .map_err(anyhow::Error::msg)?;
                runners.push(runner);
            }
            let results = lab::suite::run(&mut runners, &suite_files, &cells, &filter).await;
            lab::suite::report::write_all(&results, &report_dir)
                .with_context(|| format!("writing reports to {}", report_dir.display()))?;
            let failed = results
                .iter()
                .filter(|r| matches!(r.outcome, lab::suite::Outcome::Fail(_)))
                .count();
            let unexplained = lab::suite::unexplained(&results);
            if json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                let passed = results
                    .iter()
                    .filter(|r| r.outcome == lab::suite::Outcome::Pass)
                    .count();
                println!(
                    "{passed} passed, {failed} failed ({} of them known findings about BIRD or FRR), {} left out; reports in {}",
                    failed - unexplained,
                    results.len() - passed - failed,
                    report_dir.display()
                );
            }
            // A known finding about a reference row is a result, not a failure of the run.
            Ok(if unexplained == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_NOT_HOLDING)
            })
        }
        Verb::Mutants {
            names,
            check,
            applies,
            jobs,
            report,
            suites,
            list,
        } => {
            let check = match (check, applies) {
                (true, _) => Some(CheckDepth::Builds),
                (_, true) => Some(CheckDepth::Applies),
                _ => None,
            };
            mutants(names, check, jobs, report, &suites, list, cli.quiet).await
        }
        Verb::Report { inputs, report: out } => {
            let files: Vec<PathBuf> = inputs
                .iter()
                .map(|p| if p.is_dir() { p.join("results.json") } else { p.clone() })
                .collect();
            let refs: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
            let results = lab::suite::report::merge(&refs).map_err(anyhow::Error::msg)?;
            lab::suite::report::write_all(&results, &out).with_context(|| format!("writing {}", out.display()))?;
            let failed = results
                .iter()
                .filter(|r| matches!(r.outcome, lab::suite::Outcome::Fail(_)))
                .count();
            let unexplained = lab::suite::unexplained(&results);
            println!(
                "{} case runs from {} file(s), {failed} failed ({} of them known findings about BIRD or FRR); reports in {}",
                results.len(),
                files.len(),
                failed - unexplained,
                out.display()
            );
            Ok(if unexplained == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_NOT_HOLDING)
            })
        }
        Verb::Render { cells, out } => {
            let cells = cells.cells()?;
            let written = render::render_all(&cells, &out).map_err(anyhow::Error::msg)?;
            for (cell, path) in written {
                println!("{}  [{cell}]", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Images { force, only, root } => {
            let root = match root {
                Some(r) => r,
                None => images::find_root(&std::env::current_dir()?)
                    .context("no images/base/packages here or above: run from the workspace, or pass --root")?,
            };
            let rt = Runtime::connect().await?;
            if only.as_deref() != Some("speaker") {
                let t = Instant::now();
                let o = progress
                    .around("building the base image", images::build_base(&rt, &root, force))
                    .await?;
                progress.done(&format!("{} {}", images::BASE_IMAGE, outcome(&o)), t);
            }
            if only.as_deref() != Some("base") {
                let t = Instant::now();
                let o = progress
                    .around("building the speaker image", images::build_speaker(&rt, &root, force))
                    .await?;
                progress.done(&format!("{} {}", images::SPEAKER_IMAGE, outcome(&o)), t);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn pod(verb: PodVerb) -> Result<ExitCode> {
    match verb {
        PodVerb::Add {
            topo,
            node,
            ip,
            ip6,
            name,
            timing,
            json,
        } => {
            let (t, rt) = open(&topo).await?;
            let name = name.unwrap_or_else(|| format!("{node}-{}", ip.to_string().replace(['.', ':'], "-")));
            let p = pods::Pod {
                iface: pods::iface_name(&name),
                node,
                name,
                ip,
                ip6,
            };
            if !timing {
                pods::add(&rt, &t, &p).await?;
                services::follow_pods(&rt, &t).await?;
                println!("pod {} ({}) on {} via {}", p.name, p.ip, p.node, p.iface);
                return Ok(ExitCode::SUCCESS);
            }
            let followers: Vec<String> = t
                .nodes
                .values()
                .filter(|n| n.name != p.node && programs_fib(n))
                .map(|n| n.name.clone())
                .collect();
            let prefix = host_prefix(p.ip);
            let change = async {
                pods::add(&rt, &t, &p).await?;
                services::follow_pods(&rt, &t).await.map_err(anyhow::Error::from)
            };
            let prefixes = [prefix];
            let c = watch::Change {
                prefixes: &prefixes,
                deleted: false,
                origin: &p.node,
                followers: &followers,
                deadline: Duration::from_secs(10),
                from_origin_event: true,
                settle: Duration::ZERO,
            };
            let prop = watch::time_change(&rt, &t, c, change).await?;
            return print_propagation(&prop[0], json);
        }
        PodVerb::Del {
            topo,
            node,
            name,
            timing,
            json,
        } => {
            let (t, rt) = open(&topo).await?;
            if !timing {
                pods::delete(&rt, &t, &node, &name).await?;
                services::follow_pods(&rt, &t).await?;
                println!("pod {name} deleted from {node}");
                return Ok(ExitCode::SUCCESS);
            }
            let pod = pods::list(&rt, &t)
                .await?
                .into_iter()
                .find(|p| p.node == node && p.name == name)
                .with_context(|| format!("no pod {name} on node {node}"))?;
            let prefix = host_prefix(pod.ip);
            // The nodes whose kernels route to the pod now: each must let go.
            let mut followers = Vec::new();
            for n in t.nodes.values().filter(|n| n.name != node && programs_fib(n)) {
                let fib = probes::fib(&rt, &t.container_name(&n.name)).await?;
                if fib
                    .iter()
                    .any(|r| host_prefix_of(&r.dst) == prefix && r.kind != "blackhole")
                {
                    followers.push(n.name.clone());
                }
            }
            let change = async {
                pods::delete(&rt, &t, &node, &name).await?;
                services::follow_pods(&rt, &t).await.map_err(anyhow::Error::from)
            };
            let prefixes = [prefix];
            let c = watch::Change {
                prefixes: &prefixes,
                deleted: true,
                origin: &node,
                followers: &followers,
                deadline: Duration::from_secs(10),
                from_origin_event: true,
                settle: Duration::ZERO,
            };
            let prop = watch::time_change(&rt, &t, c, change).await?;
            return print_propagation(&prop[0], json);
        }
        PodVerb::List { topo, json } => {
            let (t, rt) = open(&topo).await?;
            let list = pods::list(&rt, &t).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|p| {
                        let ips: Vec<String> = p.addresses().iter().map(|a| a.to_string()).collect();
                        vec![p.node.clone(), p.name.clone(), ips.join(" "), p.iface.clone()]
                    })
                    .collect();
                print!("{}", report::table(&["NODE", "POD", "IP", "HOST IFACE"], &rows));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn service(verb: ServiceVerb) -> Result<ExitCode> {
    match verb {
        ServiceVerb::Add {
            topo,
            name,
            ip,
            port,
            kind,
            policy,
            endpoints,
        } => {
            let (t, rt) = open(&topo).await?;
            let s = services::Service {
                name,
                ips: services::parse_ips(&ip).map_err(anyhow::Error::msg)?,
                port,
                kind: kind.parse().map_err(anyhow::Error::msg)?,
                policy: policy.parse().map_err(anyhow::Error::msg)?,
                endpoints,
            };
            s.check().map_err(anyhow::Error::msg)?;
            let mut list = services::stored(&rt, &t).await?;
            if list.iter().any(|o| o.name == s.name) {
                bail!(
                    "lab {} already has a service {}: `lab service del` it first",
                    t.name,
                    s.name
                );
            }
            let pods = pods::list(&rt, &t).await?;
            let absent: Vec<&str> = s
                .endpoints
                .iter()
                .filter(|e| !pods.iter().any(|p| &p.name == *e))
                .map(String::as_str)
                .collect();
            list.push(s.clone());
            list.sort_by(|a, b| a.name.cmp(&b.name));
            services::apply(&rt, &t, &list).await?;
            println!(
                "service {} ({}, {} {}) on {}",
                s.name,
                s.addresses(),
                s.kind,
                s.policy,
                t.name
            );
            if !absent.is_empty() {
                println!(
                    "no pod yet for endpoint(s) {}: they join when created",
                    absent.join(", ")
                );
            }
        }
        ServiceVerb::Del { topo, name } => {
            let (t, rt) = open(&topo).await?;
            let mut list = services::stored(&rt, &t).await?;
            let before = list.len();
            list.retain(|s| s.name != name);
            if list.len() == before {
                bail!("lab {} has no service {name} (`lab service list`)", t.name);
            }
            services::apply(&rt, &t, &list).await?;
            println!("service {name} deleted from {}", t.name);
        }
        ServiceVerb::List { topo, json } => {
            let (t, rt) = open(&topo).await?;
            let list = services::stored(&rt, &t).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            let pods = pods::list(&rt, &t).await?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    let eps: Vec<String> = s
                        .endpoints
                        .iter()
                        .map(|e| match pods.iter().find(|p| &p.name == e) {
                            Some(p) => format!("{e}@{}", p.node),
                            None => format!("{e}@(no pod)"),
                        })
                        .collect();
                    vec![
                        s.name.clone(),
                        s.kind.to_string(),
                        s.addresses(),
                        s.policy.to_string(),
                        eps.join(" "),
                    ]
                })
                .collect();
            print!(
                "{}",
                report::table(&["SERVICE", "TYPE", "ADDRESS", "POLICY", "ENDPOINTS"], &rows)
            );
        }
        ServiceVerb::Connect {
            topo,
            name,
            from,
            count,
            json,
        } => {
            let (t, rt) = open(&topo).await?;
            let from = match from {
                Some(f) => f,
                None => t
                    .nodes
                    .values()
                    .find(|n| n.role() == Some("client"))
                    .map(|n| n.name.clone())
                    .with_context(|| {
                        format!(
                            "lab {} has no node with lab.role: client; say which with --from",
                            t.name
                        )
                    })?,
            };
            if !t.nodes.contains_key(&from) {
                bail!("no node {from:?} in lab {}", t.name);
            }
            let list = services::stored(&rt, &t).await?;
            let s = list
                .iter()
                .find(|s| s.name == name)
                .with_context(|| format!("lab {} has no service {name} (`lab service list`)", t.name))?;
            let mut all = Vec::new();
            for ip in &s.ips {
                let a = services::connect(&rt, &t, &from, *ip, s.port, count).await?;
                if !json {
                    println!("{} {} port {} from {from}: {}", s.name, ip, s.port, a.line());
                }
                all.push((ip.to_string(), a));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            }
            if all.iter().any(|(_, a)| a.failed > 0) {
                return Ok(ExitCode::from(EXIT_NOT_HOLDING));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `lab mutants`: each mutant built, its cases run, the verdicts reported.
/// How far `lab mutants --check` or `--applies` takes each patch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CheckDepth {
    Applies,
    Builds,
}

async fn mutants(
    names: Vec<String>,
    check: Option<CheckDepth>,
    jobs: u8,
    report_dir: PathBuf,
    suites: &Path,
    list: bool,
    quiet: bool,
) -> Result<ExitCode> {
    use lab::mutants::{self, Build};
    let root = images::find_root(&std::env::current_dir()?)
        .context("no images/base/packages here or above: run `lab mutants` from the workspace")?;
    let all = mutants::load_dir(&suites.join("mutants"))?;
    let mut chosen = Vec::new();
    for n in &names {
        let path = Path::new(n);
        if n.ends_with(".patch") && path.is_file() {
            chosen.push(mutants::load(path)?);
        } else if let Some(m) = all.iter().find(|m| m.name == *n) {
            chosen.push(m.clone());
        } else {
            let known: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
            eprintln!(
                "lab: error: no mutant {n:?} in {} (mutants: {}), and no patch file of that name",
                suites.join("mutants").display(),
                known.join(" ")
            );
            return Ok(ExitCode::from(2));
        }
    }
    if names.is_empty() {
        chosen = all;
    }
    let suite_files = lab::suite::case::load_dir(suites)?;
    for m in &chosen {
        for id in &m.header.cases {
            if !suite_files.iter().any(|s| s.cases.iter().any(|c| c.id == *id)) {
                bail!("{}: header: no case {id} in {}", m.file.display(), suites.display());
            }
        }
    }
    if list {
        for m in &chosen {
            let cells: Vec<String> = m.cells().iter().map(|c| format!("[{c}]")).collect();
            println!(
                "{}: {} ({}) - {} on {}",
                m.name,
                m.header.bug,
                m.header.source,
                m.header.cases.join(" "),
                cells.join(" ")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(depth) = check {
        let work = root.join("target/mutants");
        let mut broken = 0;
        for m in &chosen {
            let t = Instant::now();
            let built = async {
                let tree = mutants::tree(&root, m, &work.join("check-trees"))?;
                if depth == CheckDepth::Builds {
                    mutants::build(&tree, &work.join("check"), Build::Check).await?;
                }
                Ok::<_, mutants::MutantError>(())
            };
            match built.await {
                Ok(()) => {
                    if !quiet {
                        eprintln!(
                            "lab: mutant {} applies{} ({:.1}s)",
                            m.name,
                            if depth == CheckDepth::Builds { " and builds" } else { "" },
                            t.elapsed().as_secs_f64()
                        );
                    }
                }
                Err(e) => {
                    eprintln!("lab: error: mutant {}: {e}", m.name);
                    broken += 1;
                }
            }
        }
        return Ok(if broken == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let run = lab::suite::select::RunInfo {
        scope: "mutants".into(),
        selection: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        started: lab::clock::now(),
    };
    if let Err(e) = lab::suite::select::prepare_report_dir(&report_dir, &run, false) {
        eprintln!("lab: error: {e}");
        return Ok(ExitCode::from(2));
    }
    let verdicts = mutants::run_all(&root, &chosen, &suite_files, usize::from(jobs), &report_dir, quiet).await;
    std::fs::write(
        report_dir.join("mutants.json"),
        serde_json::to_string_pretty(&verdicts)?,
    )?;
    std::fs::write(report_dir.join("mutants.md"), mutants::report_md(&verdicts))?;
    let caught = verdicts.iter().filter(|v| v.caught).count();
    println!(
        "{caught} of {} mutants caught; reports in {}",
        verdicts.len(),
        report_dir.display()
    );
    for v in verdicts.iter().filter(|v| !v.caught) {
        println!("  {}: {}", v.name, v.error.as_deref().unwrap_or("SURVIVED"));
    }
    Ok(if caught == verdicts.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_HOLDING)
    })
}

/// Whether a node's kernel follows BGP: Kubernetes nodes and ToRs do; route
/// reflectors, scripted peers and switches are left out of timings, adding and
/// deleting alike.
fn programs_fib(n: &lab::topology::Node) -> bool {
    n.bgp().is_some() && !matches!(n.role(), Some("rr" | "peer" | "switch"))
}

/// A host route's prefix as route events and `ip -j route` name it.
fn host_prefix(ip: std::net::IpAddr) -> String {
    format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 })
}

/// `ip -j route` writes host routes without their length.
fn host_prefix_of(dst: &str) -> String {
    match dst.parse::<std::net::IpAddr>() {
        Ok(ip) => host_prefix(ip),
        Err(_) => dst.to_string(),
    }
}

fn print_propagation(p: &watch::Propagation, json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(p)?);
    } else {
        let what = if p.deleted { "removed" } else { "added" };
        match p.origin_at {
            None => println!("{} was not seen {what} on {}", p.prefix, p.origin),
            Some(_) => {
                let each: Vec<String> = p
                    .after_ms
                    .iter()
                    .map(|(n, ms)| match ms {
                        Some(ms) => format!("{n} +{ms:.1} ms"),
                        None => format!("{n} not within 10 s"),
                    })
                    .collect();
                println!("{} {what} on {}; followed by: {}", p.prefix, p.origin, each.join(", "));
            }
        }
    }
    Ok(if p.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_HOLDING)
    })
}

fn outcome(o: &images::Outcome) -> &'static str {
    match o {
        images::Outcome::UpToDate => "up to date",
        images::Outcome::Built => "built",
    }
}

fn print_peers(table: &PeerTable, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&table.rows)?);
        for u in &table.unreadable {
            eprintln!("lab: {}/{}: cannot read sessions: {}", u.lab, u.node, u.error);
        }
    } else {
        print!("{}", report::peer_table(table));
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct NodeRow {
    lab: String,
    node: String,
    container: String,
    state: String,
    image: String,
    bgp: Option<String>,
    role: Option<String>,
    mgmt_ipv4: Option<String>,
    interfaces: Vec<Iface>,
}

#[derive(serde::Serialize)]
struct Iface {
    name: String,
    state: String,
    addresses: Vec<String>,
}

async fn inspect(target: &Target, json: bool) -> Result<ExitCode> {
    let lab = target.lab()?;
    let rt = Runtime::connect().await?;
    let mut rows = Vec::new();
    for c in rt.containers(lab.as_deref()).await? {
        let labels = c.labels.clone().unwrap_or_default();
        let container = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let state = c.state.as_ref().map(|s| s.to_string()).unwrap_or_default();
        let mgmt_ipv4 = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| n.values().find_map(|e| e.ip_address.clone()))
            .filter(|a| !a.is_empty());
        let interfaces = if state == "running" {
            interfaces(&rt, &container).await.unwrap_or_default()
        } else {
            vec![]
        };
        rows.push(NodeRow {
            lab: labels.get(LABEL_LAB).cloned().unwrap_or_default(),
            node: labels.get(LABEL_NODE).cloned().unwrap_or_default(),
            container,
            state,
            image: c.image.clone().unwrap_or_default(),
            bgp: labels.get("lab.bgp").cloned(),
            role: labels.get("lab.role").cloned(),
            mgmt_ipv4,
            interfaces,
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let ifs: Vec<String> = r
                    .interfaces
                    .iter()
                    .filter(|i| i.name != "lo")
                    .map(|i| format!("{}[{}]", i.name, i.addresses.join(" ")))
                    .collect();
                vec![
                    r.lab.clone(),
                    r.node.clone(),
                    r.container.clone(),
                    r.state.clone(),
                    r.image.clone(),
                    r.bgp.clone().unwrap_or_else(|| "-".into()),
                    r.role.clone().unwrap_or_else(|| "-".into()),
                    r.mgmt_ipv4.clone().unwrap_or_else(|| "-".into()),
                    ifs.join(" "),
                ]
            })
            .collect();
        print!(
            "{}",
            report::table(
                &[
                    "LAB",
                    "NODE",
                    "CONTAINER",
                    "STATE",
                    "IMAGE",
                    "BGP",
                    "ROLE",
                    "MGMT IPV4",
                    "INTERFACES"
                ],
                &table
            )
        );
    }
    Ok(if rows.is_empty() && lab.is_some() {
        ExitCode::from(EXIT_NOT_HOLDING)
    } else {
        ExitCode::SUCCESS
    })
}

async fn interfaces(rt: &Runtime, container: &str) -> Result<Vec<Iface>> {
    let cmd: Vec<String> = ["ip", "-j", "addr", "show"].map(String::from).to_vec();
    let out = rt.exec(container, &cmd).await?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout)?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .map(|i| Iface {
                    name: i["ifname"].as_str().unwrap_or("").to_string(),
                    state: i["operstate"].as_str().unwrap_or("").to_string(),
                    addresses: i["addr_info"]
                        .as_array()
                        .map(|ai| {
                            ai.iter()
                                .filter(|x| x["scope"].as_str() != Some("link"))
                                .map(|x| format!("{}/{}", x["local"].as_str().unwrap_or(""), x["prefixlen"]))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default())
}
