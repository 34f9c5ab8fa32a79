//! `lab`: deploy containerlab topologies of real BGP daemons through Docker, read their
//! sessions, and tear them down. This file reads the command line and hands each verb
//! to its module, as containerlab has `cmd/<verb>`: what a verb does lives in the
//! library (`lab::...`); these modules parse, call and print.

mod args;
mod images;
mod lifecycle;
mod nodes;
mod pod;
mod print;
mod service;
mod suite;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use args::{Cli, Verb};
use lab::progress::Progress;
use lab::runtime::Runtime;
use lab::topology::Topology;

/// Exit code when the command worked but what it checks does not hold (a session is
/// not Established).
pub(crate) const EXIT_NOT_HOLDING: u8 = 3;

pub(crate) fn load(path: &std::path::Path) -> Result<Topology> {
    Ok(Topology::load(path)?)
}

/// A topology and a connection to the engine it runs on: what most verbs start with.
pub(crate) async fn open(path: &std::path::Path) -> Result<(Topology, Runtime)> {
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
    let quiet = cli.quiet;
    match cli.verb {
        Verb::Validate(a) => lifecycle::validate(a).await,
        Verb::Graph(a) => lifecycle::graph(a).await,
        Verb::Up(a) => lifecycle::up(a, &progress).await,
        Verb::Down(a) => lifecycle::down(a, &progress).await,
        Verb::Peers(a) => nodes::peers(a).await,
        Verb::Inspect(a) => nodes::inspect(a).await,
        Verb::Exec(a) => nodes::exec(a).await,
        Verb::Impair(a) => nodes::impair(a).await,
        Verb::Ping(a) => nodes::ping(a).await,
        Verb::Test(a) => suite::test(a, quiet).await,
        Verb::Mutants(a) => suite::mutants(a, quiet).await,
        Verb::Report(a) => suite::report(a).await,
        Verb::Render(a) => suite::render(a).await,
        Verb::Images(a) => images::images(a, &progress).await,
        Verb::Pod { verb } => pod::pod(verb).await,
        Verb::Service { verb } => service::service(verb).await,
    }
}
