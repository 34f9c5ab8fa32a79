//! `speaker`: the command line. `run` is the daemon; `status`, `routes`, `drain`
//! and `undrain` talk to a running one through its API socket; `check` validates
//! a configuration.
//!
//! Exit codes: 0 success, 1 the daemon failed, 2 bad command line (clap),
//! 3 invalid configuration, 4 the API socket could not be reached, 5 a drain
//! or undrain not confirmed by every established peer in time.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use speaker::config::Config;
use speaker::{api, daemon};

const EXIT_FAILURE: u8 = 1;
/// A bad argument, as clap exits on one.
const EXIT_USAGE: u8 = 2;
const EXIT_CONFIG: u8 = 3;
const EXIT_UNREACHABLE: u8 = 4;
const EXIT_UNCONFIRMED: u8 = 5;
const DEFAULT_SOCKET: &str = "/run/speaker/speaker.sock";

#[derive(Parser)]
#[command(name = "speaker", version, about = "A BGP speaker for Kubernetes pod networks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground.
    ///
    /// SIGTERM stops it: with graceful restart
    /// enabled sessions are closed silently and the FIB is kept; without, peers
    /// get Cease/Administrative Shutdown and our routes leave the FIB. SIGHUP
    /// re-reads FILE: added peers start, removed ones stop (Cease/Peer
    /// De-configured), changed ones reset, the others keep their sessions; an
    /// invalid file is logged and the running configuration stays.
    Run {
        /// The YAML configuration (Calico BGPConfiguration/BGPPeer field names).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Write every input of the daemon's core to FILE, one JSON line each
        /// (kernel and peer events, FIB answers, reloads, drains, ticks), to be
        /// replayed against the core (see speaker/tests/replay).
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
    },
    /// Show the BGP sessions, like `calicoctl node status`.
    ///
    /// Per peer its state,
    /// since when, and why it is not Established (wrong AS, connection refused,
    /// NOTIFICATION received, ...); and whether the node is drained.
    Status {
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
        /// The daemon's API socket.
        #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Show local (advertised) and learned routes with their FIB state and every
    /// path attribute.
    Routes {
        /// Only the routes that cover this prefix or lie inside it; an address
        /// stands for its /32 or /128 (`speaker routes 10.244.1.5` shows the block
        /// that carries a pod IP and the pod's own route).
        #[arg(value_name = "PREFIX")]
        prefix: Option<String>,
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
        /// The daemon's API socket.
        #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Withdraw this node's routes from every peer before maintenance.
    ///
    /// Withdraws every route
    /// it advertises from every peer (or, with `drain: {mode: gracefulShutdown}`
    /// in the configuration, re-advertises them with the GRACEFUL_SHUTDOWN
    /// community and LOCAL_PREF 0 towards iBGP peers). Waits until every
    /// established peer has acknowledged the change on its TCP connection, prints
    /// what each peer was sent, and exits 0 only when all of them have it (5 when
    /// one did not confirm in time). The node stays drained, also for peers that
    /// connect later, until `speaker undrain`; `speaker status` shows it.
    Drain {
        /// Undo a drain (same as `speaker undrain`).
        #[arg(long)]
        cancel: bool,
        #[command(flatten)]
        args: DrainArgs,
    },
    /// Advertise the node's routes again after `speaker drain`.
    ///
    /// Waits for the peers' acknowledgements like drain does.
    Undrain {
        #[command(flatten)]
        args: DrainArgs,
    },
    /// Validate a configuration file and exit (3 when it is invalid).
    ///
    /// With `--services`, a service state file too, and the service routes this node
    /// would advertise from it, with why.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// A service state file (a Kubernetes List of Services and EndpointSlices).
        #[arg(long, value_name = "FILE")]
        services: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config: path, record } => {
            let config = match Config::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("speaker: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            init_logging();
            match run(config, path, record) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("speaker: {e:#}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
        Command::Check { config, services } => match Config::load(&config) {
            Ok(c) => {
                println!(
                    "{}: valid: AS {}, router ID {}, {} peer(s)",
                    config.display(),
                    c.as_number,
                    c.router_id,
                    c.neighbors().len()
                );
                for f in &c.filters {
                    let users: Vec<String> = c
                        .peers
                        .iter()
                        .filter(|p| p.filters.contains(&f.name))
                        .map(|p| p.peer_ip.to_string())
                        .collect();
                    match users.is_empty() {
                        true => println!("BGPFilter {}: defined, used by no peer", f.name),
                        false => println!("BGPFilter {}: used by {}", f.name, users.join(", ")),
                    }
                }
                for u in &c.resources {
                    match (u.used, u.resource.as_str()) {
                        (_, "(note)") => println!("note: {}", u.why),
                        (true, r) => println!("used {r}: {}", u.why),
                        (false, r) => println!("left out {r}: {}", u.why),
                    }
                }
                for a in &c.prefix_advertisements {
                    println!(
                        "prefixAdvertisement {}: communities {}",
                        a.cidr,
                        a.communities.join(", ")
                    );
                }
                match services {
                    Some(file) => check_services(&c, &file),
                    None => ExitCode::SUCCESS,
                }
            }
            Err(e) => {
                eprintln!("speaker: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Status { json, socket } => query(&socket, json!({ "cmd": "status" }), json, print_status),
        Command::Routes { prefix, json, socket } => {
            let request = match prefix.as_deref().map(api::parse_prefix).transpose() {
                Ok(prefix) => json!({ "cmd": "routes", "prefix": prefix.map(|p| p.to_string()) }),
                Err(e) => {
                    eprintln!("speaker: routes: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            show(routes_all_pages(&socket, request), json, print_routes)
        }
        Command::Drain { cancel, args } => drain(!cancel, &args),
        Command::Undrain { args } => drain(false, &args),
    }
}

/// What `drain` and `undrain` share.
#[derive(clap::Args)]
struct DrainArgs {
    /// Seconds to wait for the peers (default: the configuration's drain.timeoutSeconds, 10).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
    /// The daemon's API socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
}

fn drain(drain: bool, args: &DrainArgs) -> ExitCode {
    let DrainArgs {
        timeout,
        json,
        ref socket,
    } = *args;
    let cmd = if drain { "drain" } else { "undrain" };
    let mut request = serde_json::json!({ "cmd": cmd });
    if let Some(t) = timeout {
        request["timeout"] = t.into();
    }
    // The daemon bounds its own wait; this only guards against a hung daemon.
    let wait = std::time::Duration::from_secs_f64(timeout.unwrap_or(300.0).clamp(1.0, 3600.0) + 5.0);
    match api::request_json(socket, &request, wait) {
        Ok(value) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                let state = value["drained"]
                    .as_str()
                    .map_or("not drained".to_string(), |m| format!("drained ({m})"));
                println!("node {state}");
                let rows: Vec<Vec<String>> = value["peers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| vec![text(&p["address"]), text(&p["action"]), text(&p["result"])])
                    .collect();
                table(&["PEER ADDRESS", "SENT", "RESULT"], &rows);
            }
            if value["ok"] == Value::Bool(true) {
                ExitCode::SUCCESS
            } else {
                eprintln!("speaker: {cmd}: not every established peer confirmed it");
                ExitCode::from(EXIT_UNCONFIRMED)
            }
        }
        Err(e @ api::ClientError::Connect { .. }) => {
            eprintln!("speaker: {e}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
        Err(e) => {
            eprintln!("speaker: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(config: Config, path: PathBuf, record: Option<PathBuf>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let stop = async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                std::future::pending::<()>().await;
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
            }
        };
        let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
        if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    match Config::load(&path) {
                        Ok(c) => {
                            tracing::info!(file = %path.display(), "SIGHUP: reloading");
                            if reload_tx.send(c).is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::error!("SIGHUP: {e}: keeping the running configuration"),
                    }
                }
            });
        }
        daemon::run(config, stop, reload_rx, record)
            .await
            .context("speaker daemon")
    })
}

fn query(socket: &std::path::Path, request: Value, json: bool, print: fn(&Value)) -> ExitCode {
    show(
        api::request_json(socket, &request, std::time::Duration::from_secs(5)),
        json,
        print,
    )
}

/// Prints an answer of the API (its JSON, or `print`'s table), or the error.
fn show(answer: Result<Value, api::ClientError>, json: bool, print: fn(&Value)) -> ExitCode {
    match answer {
        Ok(value) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                print(&value);
            }
            ExitCode::SUCCESS
        }
        Err(e @ api::ClientError::Connect { .. }) => {
            eprintln!("speaker: {e}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
        Err(e) => {
            eprintln!("speaker: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `speaker check --services`: the state file read as the daemon reads it, and what
/// this node would advertise from it.
fn check_services(config: &Config, file: &std::path::Path) -> ExitCode {
    let state = match speaker::service_watch::read(file) {
        speaker::service_watch::Read::State(s) => s,
        speaker::service_watch::Read::Failed { error, .. } => {
            eprintln!("speaker: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let routes = speaker::services::routes(&config.service_cidrs(), config.node_name(), &state);
    println!(
        "{}: valid: {} service(s); node {} advertises {} service route(s)",
        file.display(),
        state.services.len(),
        config.node_name(),
        routes.len()
    );
    for (prefix, why) in &routes {
        let mut v = json!(why);
        v["prefix"] = json!(prefix);
        println!("  {prefix}  {}", service_why(&v));
    }
    ExitCode::SUCCESS
}

/// Every page of the routes (the daemon answers a page at a time), as one answer.
fn routes_all_pages(socket: &std::path::Path, mut request: Value) -> Result<Value, api::ClientError> {
    let mut all = api::request_json(socket, &request, std::time::Duration::from_secs(5))?;
    while let Some(next) = all.as_object_mut().and_then(|o| o.remove("next")) {
        request["after"] = next;
        let mut page = api::request_json(socket, &request, std::time::Duration::from_secs(5))?;
        if page.get("error").is_some() {
            return Ok(page);
        }
        if let (Some(into), Some(more)) = (all["learned"].as_array_mut(), page["learned"].as_array_mut()) {
            into.append(more);
        }
        if let Some(next) = page.get("next") {
            all["next"] = next.clone();
        }
    }
    Ok(all)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A table with `+---+` borders, as calicoctl prints it.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+";
    let line = |cells: Vec<String>| {
        let body: String = cells.iter().zip(&widths).map(|(c, w)| format!("| {c:<w$} ")).collect();
        println!("{body}|");
    };
    println!("{rule}");
    line(headers.iter().map(|h| h.to_string()).collect());
    println!("{rule}");
    for row in rows {
        line(row.clone());
    }
    println!("{rule}");
}

fn print_status(v: &Value) {
    println!(
        "BGP speaker: AS {}, router ID {}",
        text(&v["as"]),
        text(&v["router_id"])
    );
    if let Some(mode) = v["drained"].as_str() {
        println!("Node drained ({mode}): run `speaker undrain` to advertise its routes again");
    }
    let svc = &v["services"];
    if svc["routes"].as_u64().unwrap_or(0) > 0 || svc["state"] != "missing" {
        println!(
            "Services: {} from {} ({}), {} routes advertised",
            text(&svc["services"]),
            text(&svc["file"]),
            text(&svc["state"]),
            text(&svc["routes"])
        );
    }
    if let Some(error) = svc["error"]
        .as_str()
        .filter(|_| svc["services"].as_u64().unwrap_or(0) > 0)
    {
        println!("Service state not read ({error}): the services read before stay advertised");
    }
    let rows: Vec<Vec<String>> = v["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let since = text(&p["since"]).replace('T', " ").replace('Z', "");
            let bfd = &p["bfd"];
            let bfd = match (bfd["state"].as_str(), bfd["diag"].as_str()) {
                (None, _) => "-".to_string(),
                (Some("up"), _) => format!("up ({} ms)", text(&bfd["detect_ms"])),
                (Some(state), Some(diag)) if !diag.is_empty() => format!("{state} ({diag})"),
                (Some(state), _) => state.to_string(),
            };
            vec![
                text(&p["address"]),
                text(&p["type"]),
                text(&p["state"]),
                since,
                bfd,
                text(&p["info"]),
            ]
        })
        .collect();
    table(&["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "BFD", "INFO"], &rows);
}

fn print_routes(v: &Value) {
    let mut rows = Vec::new();
    let services: std::collections::HashMap<String, &Value> = v["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (text(&s["prefix"]), s))
        .collect();
    for p in v["local"].as_array().into_iter().flatten() {
        let (from, why) = match services.get(&text(p)) {
            Some(s) => ("service", service_why(s)),
            None => ("local", String::new()),
        };
        rows.push(vec![
            text(p),
            from.into(),
            String::new(),
            String::new(),
            "advertised".into(),
            String::new(),
            why,
        ]);
    }
    for r in v["learned"].as_array().into_iter().flatten() {
        for path in r["paths"].as_array().into_iter().flatten() {
            let mut flags = Vec::new();
            if path["best"] == Value::Bool(true) {
                flags.push("best".to_string());
            } else if path["multipath"] == Value::Bool(true) {
                flags.push("multipath".to_string());
            }
            if path["stale"] == Value::Bool(true) {
                flags.push("stale".to_string());
            }
            if let Some(why) = path["rejected"].as_str() {
                flags.push(format!("rejected: {why}"));
            }
            if let Some(why) = path["unresolved"].as_str() {
                flags.push(format!("next hop unresolved: {why}"));
            }
            rows.push(vec![
                text(&r["prefix"]),
                text(&path["from"]),
                text(&path["next_hop"]),
                text(&path["attrs"]["as_path"]),
                flags.join(", "),
                if path["best"] == Value::Bool(true) {
                    text(&r["fib"])
                } else {
                    String::new()
                },
                attributes_text(&path["attrs"]),
            ]);
        }
    }
    table(
        &["PREFIX", "FROM", "NEXT HOP", "AS PATH", "STATUS", "FIB", "ATTRIBUTES"],
        &rows,
    );
}

/// Why a service route is advertised: `serviceLoadBalancerIPs, policy Local: shop/web
/// 198.51.100.10 (endpoints here: web-1)`.
fn service_why(s: &Value) -> String {
    let services: Vec<String> = s["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            let eps: Vec<String> = w["local_endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            match eps.is_empty() {
                true => format!("{} {}", text(&w["service"]), text(&w["ip"])),
                false => format!(
                    "{} {} (endpoints here: {})",
                    text(&w["service"]),
                    text(&w["ip"]),
                    eps.join(", ")
                ),
            }
        })
        .collect();
    let head = format!("{}, policy {}", text(&s["field"]), text(&s["policy"]));
    match services.len() {
        0 => head,
        n if n > 4 => format!("{head}: {} and {} more", services[..3].join("; "), n - 3),
        _ => format!("{head}: {}", services.join("; ")),
    }
}

/// A path's attributes besides the AS path, as `birdc show route all` lists them,
/// on one line: `origin igp; med 10; local-pref 100; communities 65000:1 ...`.
fn attributes_text(attrs: &Value) -> String {
    let list = |v: &Value| -> String {
        v.as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut parts = Vec::new();
    for (key, name) in [("origin", "origin"), ("med", "med"), ("local_pref", "local-pref")] {
        if !attrs[key].is_null() {
            parts.push(format!("{name} {}", text(&attrs[key])));
        }
    }
    if attrs["atomic_aggregate"] == Value::Bool(true) {
        parts.push("atomic-aggregate".into());
    }
    if let Some(agg) = attrs["aggregator"].as_object() {
        parts.push(format!("aggregator {} {}", text(&agg["asn"]), text(&agg["address"])));
    }
    for (key, name) in [
        ("communities", "communities"),
        ("large_communities", "large-communities"),
        ("extended_communities", "ext-communities"),
        ("ipv6_extended_communities", "ipv6-ext-communities"),
        ("cluster_list", "cluster-list"),
    ] {
        if attrs[key].as_array().is_some_and(|a| !a.is_empty()) {
            parts.push(format!("{name} {}", list(&attrs[key])));
        }
    }
    if !attrs["originator_id"].is_null() {
        parts.push(format!("originator {}", text(&attrs["originator_id"])));
    }
    for raw in attrs["unknown"].as_array().into_iter().flatten() {
        let flags = raw["flags"].as_u64().unwrap_or(0);
        parts.push(format!(
            "attribute {} flags 0x{flags:02x} value {}",
            text(&raw["type"]),
            text(&raw["value"])
        ));
    }
    parts.join("; ")
}
