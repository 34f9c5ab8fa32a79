//! The command line: every verb and its arguments, as clap reads them.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::load;
use lab::render;

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
pub struct Cli {
    /// Print only errors (no progress).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Subcommand)]
pub enum Verb {
    /// Deploy a topology, wait for every BGP session, print the peer table.
    Up(UpArgs),
    /// Remove a lab's containers and its management network.
    Down(DownArgs),
    /// Nodes of deployed labs: container, state, image, addresses, interfaces. `-f json`
    /// prints containerlab's `inspect -f json` document (what lab adds is under `podlab`).
    Inspect(InspectArgs),
    /// Every BGP session of every node, read from each implementation's own interface.
    Peers(PeersArgs),
    /// Run a command in nodes: `lab exec -t FILE n1 n2 -- ip route`, or as containerlab
    /// takes it, `lab exec -t FILE --label lab.role=node --cmd "ip -j route" -f json`.
    /// Every running node of the lab when none is named or selected.
    Exec(ExecArgs),
    /// Impair what leaves a node's interface: `lab impair -t FILE n1:eth1 --loss 20`.
    /// Loss (nftables) and --rate (tbf) work on any kernel; --delay needs netem.
    Impair(ImpairArgs),
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
    Ping(PingArgs),
    /// The topology as a Mermaid graph, or Graphviz dot (`-f dot | dot -Tsvg`).
    Graph(GraphArgs),
    /// Check a topology file without creating anything.
    Validate(ValidateArgs),
    /// Run the conformance suite over cells of the matrix: each cell rendered and
    /// deployed once, its cases run in turn, reports written (`--report`).
    Test(TestArgs),
    /// Build deliberately broken speakers (`suites/mutants/*.patch`, or patch files
    /// given by path) each into an image of its own, run the cases its header names on
    /// its cells, and report which the suite caught (mutants.md, mutants.json).
    Mutants(MutantsArgs),
    /// Merge the results of several `lab test` runs (the shards of one matrix) into one
    /// set of reports: `lab report --report OUT shard-*/results.json`.
    Report(ReportArgs),
    /// Write cells of the conformance matrix as containerlab folders, from each node's
    /// BGP intent: `lab render --node speaker --fabric tor/frr --family v4`.
    Render(RenderArgs),
    /// Build the node images (base, speaker); nothing is rebuilt whose inputs did not change.
    Images(ImagesArgs),
}

#[derive(Subcommand)]
pub enum PodVerb {
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
pub enum ServiceVerb {
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
        service_type: String,
        /// Cluster or Local (externalTrafficPolicy; internalTrafficPolicy for ClusterIP).
        #[arg(long, default_value = "Cluster")]
        policy: String,
        /// Endpoint pods, by name.
        #[arg(long, value_delimiter = ',')]
        endpoints: Vec<String>,
        /// Endpoints among them that are not ready (their readiness probe failing).
        #[arg(long, value_delimiter = ',')]
        not_ready: Vec<String>,
    },
    /// Make endpoints of a service ready, or not ready with `--not` (a readiness probe
    /// that starts or stops failing): kube-proxy's rules, the Local routes and the
    /// state files follow.
    Ready {
        #[arg(short = 't', long = "topo", value_name = "FILE")]
        topo: PathBuf,
        name: String,
        /// Endpoint pods, by name.
        #[arg(required = true, value_delimiter = ',')]
        pods: Vec<String>,
        #[arg(long)]
        not: bool,
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
pub struct CellArgs {
    /// Node speaker: speaker, bird, frr (repeat or comma-separate for several).
    #[arg(long, value_delimiter = ',')]
    pub node: Vec<String>,
    /// Fabric: mesh, tor/frr, tor/bird, rr/bird, rr/frr, rr/gobgp, rack, dualtor/frr, dualtor/bird.
    #[arg(long, value_delimiter = ',')]
    pub fabric: Vec<String>,
    /// Family: v4, dual, v6.
    #[arg(long, value_delimiter = ',')]
    pub family: Vec<String>,
}

impl CellArgs {
    pub fn is_empty(&self) -> bool {
        self.node.is_empty() && self.fabric.is_empty() && self.family.is_empty()
    }

    /// The cells asked for, as a user wrote them.
    pub fn describe(&self) -> String {
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

    pub fn cells(&self) -> Result<Vec<render::Cell>> {
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

/// A lab, by its topology file or its name, or every lab.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    #[arg(short = 't', long = "topo", value_name = "FILE")]
    pub topo: Option<PathBuf>,
    /// The lab's name (its topology file is not needed).
    #[arg(long, value_name = "LAB")]
    pub name: Option<String>,
    /// Every lab this runner deployed.
    #[arg(short = 'a', long)]
    pub all: bool,
}

impl Target {
    /// The lab name the target selects (None: all labs).
    pub fn lab(&self) -> Result<Option<String>> {
        match (&self.topo, &self.name) {
            (Some(f), _) => Ok(Some(load(f)?.name)),
            (None, Some(n)) => Ok(Some(n.clone())),
            (None, None) => Ok(None),
        }
    }
}

/// One lab, by its topology file or its name.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct LabTarget {
    #[arg(short = 't', long = "topo", value_name = "FILE")]
    pub topo: Option<PathBuf>,
    /// The lab's name (its topology file is not needed).
    #[arg(long, value_name = "LAB")]
    pub name: Option<String>,
}

impl LabTarget {
    pub fn lab(&self) -> Result<String> {
        match (&self.topo, &self.name) {
            (Some(f), _) => Ok(load(f)?.name),
            (None, Some(n)) => Ok(n.clone()),
            (None, None) => unreachable!("clap requires one"),
        }
    }
}

/// The nodes a `--node-filter` names, checked against the topology when there is one.
pub fn node_set(target: &Target, filter: &[String]) -> Result<Option<std::collections::BTreeSet<String>>> {
    if filter.is_empty() {
        return Ok(None);
    }
    if let Some(f) = &target.topo {
        load(f)?.filtered(filter).map_err(anyhow::Error::msg)?;
    }
    Ok(Some(filter.iter().cloned().collect()))
}

#[derive(Args)]
pub struct UpArgs {
    #[arg(short = 't', long = "topo", value_name = "FILE")]
    pub topo: PathBuf,
    /// Seconds to wait for every session to be Established (0: do not wait).
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
    /// Remove a running deployment of the same lab first.
    #[arg(long)]
    pub reconfigure: bool,
    /// Keep what was made when a step fails, to look at it (`lab down` removes it).
    #[arg(long)]
    pub keep_on_error: bool,
    /// Print the peer table as JSON.
    #[arg(long)]
    pub json: bool,
    /// Deploy only these nodes and the links among them (containerlab's
    /// `--node-filter`); other nodes of the lab may be up already. Nothing is
    /// waited for: sessions to the nodes left out cannot come up.
    #[arg(long, value_delimiter = ',', value_name = "NODE,...")]
    pub node_filter: Vec<String>,
}

#[derive(Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub target: Target,
    /// Remove only these nodes; the network goes with the lab's last container.
    #[arg(long, value_delimiter = ',', value_name = "NODE,...", conflicts_with = "all")]
    pub node_filter: Vec<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub target: Target,
    /// table or json.
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// The same as `-f json`.
    #[arg(long, hide = true)]
    pub json: bool,
    /// Only these nodes.
    #[arg(long, value_delimiter = ',', value_name = "NODE,...")]
    pub node_filter: Vec<String>,
}

#[derive(Args)]
pub struct PeersArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub target: LabTarget,
    /// Nodes to run in.
    pub nodes: Vec<String>,
    /// Only nodes whose container has this label (KEY=VALUE; repeat: all must hold).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = lab::exec::parse_label)]
    pub labels: Vec<(String, String)>,
    /// The command as one string, split as a shell splits words (not run by a shell).
    #[arg(long = "cmd", value_name = "COMMAND", conflicts_with = "argv")]
    pub command: Option<String>,
    /// plain or json (containerlab's: `{"<container>": [{"cmd", "return-code", "stdout", "stderr"}]}`).
    #[arg(short = 'f', long, default_value = "plain", value_parser = ["plain", "json"])]
    pub format: String,
    #[arg(last = true)]
    pub argv: Vec<String>,
}

#[derive(Args)]
pub struct ImpairArgs {
    #[command(flatten)]
    pub target: LabTarget,
    /// The interface, NODE:IF; with --clear and none, every node's.
    #[arg(value_name = "NODE:IF", value_parser = lab::impair::parse_link_end)]
    pub link: Option<(String, String)>,
    /// Percent of packets dropped at random.
    #[arg(long, value_name = "PCT")]
    pub loss: Option<f64>,
    /// Delay in ms (needs the kernel's netem).
    #[arg(long, value_name = "MS")]
    pub delay: Option<u32>,
    /// Jitter in ms, with --delay.
    #[arg(long, value_name = "MS")]
    pub jitter: Option<u32>,
    /// Rate limit in kbit/s.
    #[arg(long, value_name = "KBIT")]
    pub rate: Option<u64>,
    /// Take away what lab impair put there.
    #[arg(long, conflicts_with_all = ["loss", "delay", "jitter", "rate"])]
    pub clear: bool,
}

#[derive(Args)]
pub struct PingArgs {
    #[arg(short = 't', long = "topo", value_name = "FILE")]
    pub topo: PathBuf,
    /// Seconds to retry failed pairs (routes of new pods may be on their way).
    #[arg(long, default_value_t = 10)]
    pub wait: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct GraphArgs {
    #[arg(short = 't', long = "topo", value_name = "FILE")]
    pub topo: PathBuf,
    #[arg(short = 'f', long, default_value = "mermaid", value_parser = ["mermaid", "dot"])]
    pub format: String,
    /// Only these nodes and the links among them.
    #[arg(long, value_delimiter = ',', value_name = "NODE,...")]
    pub node_filter: Vec<String>,
}

#[derive(Args)]
pub struct ValidateArgs {
    #[arg(short = 't', long = "topo", value_name = "FILE")]
    pub topo: PathBuf,
}

#[derive(Args)]
pub struct TestArgs {
    /// Run only the cases whose name holds one of these (`WD-01`, `tor/frr`, ...).
    pub cases: Vec<String>,
    #[command(flatten)]
    pub cells: CellArgs,
    /// This shard of the cells, `I/N` (every N-th cell from the I-th).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Only the cases marked for the smoke subset.
    #[arg(long)]
    pub smoke: bool,
    /// How many cells are up at once, each running its cases (1-4). Two suit a
    /// 2-core machine: the cases mostly wait on timers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub jobs: u8,
    /// Where the case files are.
    #[arg(long, default_value = "suites")]
    pub suites: PathBuf,
    /// Where the reports go (emptied first: a folder holds one run). By default
    /// target/lab-report/conformance for the whole matrix, target/lab-report/partial
    /// for anything less.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Let a partial run replace the whole matrix's reports in --report.
    #[arg(long)]
    pub overwrite: bool,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// List the case runs instead of running them.
    #[arg(long)]
    pub list: bool,
}

#[derive(Args)]
pub struct MutantsArgs {
    /// Mutant names (of suites/mutants), or paths of patch files; all by default.
    pub names: Vec<String>,
    /// Only check that every patch still applies and builds (`cargo check`).
    #[arg(long)]
    pub check: bool,
    /// Only check that every patch still applies, without building (seconds where
    /// `--check` takes minutes: `make test` runs this).
    #[arg(long, conflicts_with = "check")]
    pub applies: bool,
    /// How many cells are up at once (1-4).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub jobs: u8,
    /// Where the reports go (emptied first).
    #[arg(long, default_value = "target/lab-report/mutants")]
    pub report: PathBuf,
    /// Where the case files are.
    #[arg(long, default_value = "suites")]
    pub suites: PathBuf,
    /// List the mutants with their bug and cells instead of running them.
    #[arg(long)]
    pub list: bool,
}

#[derive(Args)]
pub struct ReportArgs {
    /// The runs' `results.json` files, or the folders holding them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[arg(long, default_value = "target/lab-report/conformance")]
    pub report: PathBuf,
}

#[derive(Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub cells: CellArgs,
    /// Where the folders go (one per cell).
    #[arg(long, default_value = "target/lab-cells")]
    pub out: PathBuf,
    /// Who deploys the cells: containerlab (or `lab up`) here, or clabernetes on
    /// Kubernetes (a `<lab>.c9s.yaml` per cell for `kubectl apply -f`).
    #[arg(long = "for", value_name = "DEPLOYER", default_value = "containerlab", value_parser = ["containerlab", "clabernetes"])]
    pub deployer: String,
    /// The registry the nodes pull the lab's images from, as `lab images --push` put
    /// them there (`HOST[:PORT][/PATH]`). clabernetes needs one.
    #[arg(long)]
    pub registry: Option<String>,
    /// The Kubernetes namespace of the clabernetes resources.
    #[arg(long, default_value = "podlab")]
    pub namespace: String,
}

#[derive(Args)]
pub struct ImagesArgs {
    /// Rebuild even when the inputs did not change.
    #[arg(long)]
    pub force: bool,
    /// Build only this image.
    #[arg(long, value_parser = ["base", "speaker"])]
    pub only: Option<String>,
    /// The workspace root (holding images/); found from the current folder by default.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Then push the images to this registry (`HOST[:PORT][/PATH]`, as `docker push`
    /// names it), as `REGISTRY/podlab/base:latest` and `REGISTRY/podlab/speaker:latest`,
    /// with the credentials `docker login` stored. `lab render --registry` names them so.
    #[arg(long, value_name = "REGISTRY")]
    pub push: Option<String>,
}
