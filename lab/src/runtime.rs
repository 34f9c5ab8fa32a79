//! The container runtime: Docker through bollard, with the API version negotiated so an
//! engine as old as 20.10 (API 1.41) works. It owns containers, the management network,
//! exec, and the labels by which `lab` finds everything it made.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, ContainerSummary, EndpointIpamConfig, EndpointSettings, ExecConfig, HostConfig, Ipam,
    IpamConfig, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;
use ipnet::IpNet;

use crate::topology::{Mgmt, Node, Topology};

pub use crate::labels::{LABEL_GROUP, LABEL_KIND, LABEL_LAB, LABEL_NODE, LABEL_OWNER, LABEL_RUNNER, LABEL_TOPO};

/// Every node's sysctls, under what its topology sets: both families on and forwarding.
pub const NODE_SYSCTLS: [(&str, &str); 6] = [
    ("net.ipv6.conf.all.disable_ipv6", "0"),
    ("net.ipv6.conf.default.disable_ipv6", "0"),
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv6.conf.all.forwarding", "1"),
    // A link taken down and up must keep the lab's IPv6 addressing, as IPv4 keeps its
    // own: a link fault is not a reconfiguration.
    ("net.ipv6.conf.all.keep_addr_on_down", "1"),
    ("net.ipv6.conf.default.keep_addr_on_down", "1"),
];

/// A listed container's name, without Docker's leading `/`.
pub fn name_of(c: &ContainerSummary) -> Option<String> {
    c.names.as_ref()?.first().map(|n| n.trim_start_matches('/').to_string())
}

/// The lab node a listed container is (its `clab-node-name` label).
pub fn node_of(c: &ContainerSummary) -> Option<String> {
    c.labels.as_ref()?.get(LABEL_NODE).cloned()
}

/// Whether a listed container runs.
pub fn is_running(c: &ContainerSummary) -> bool {
    c.state.as_ref().is_some_and(|s| s.to_string() == "running")
}

/// The lab's owner as containerlab records it.
fn owner() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "root".into())
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "cannot reach the Docker engine ({0}); is dockerd running? (`systemctl start docker`, \
         or `dockerd &` where there is no systemd; DOCKER_HOST selects another engine)"
    )]
    Unreachable(bollard::errors::Error),
    #[error("image {image} not found for node {node}: run `lab images` (or `make images`) to build it")]
    MissingImage { node: String, image: String },
    #[error("{what}: {source}")]
    Docker {
        what: String,
        source: bollard::errors::Error,
    },
    #[error("{0}")]
    Other(String),
}

fn docker_err(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> RuntimeError {
    let what = what.into();
    move |source| RuntimeError::Docker { what, source }
}

/// What a command run in a container printed, and how it ended.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

/// An attached exec's output, as bollard hands it over.
type OutputStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>> + Send>,
>;

#[derive(Clone)]
pub struct Runtime {
    pub docker: Docker,
}

impl Runtime {
    /// Connects to the local engine (or DOCKER_HOST) and negotiates the API version.
    pub async fn connect() -> Result<Runtime, RuntimeError> {
        let docker = Docker::connect_with_local_defaults().map_err(RuntimeError::Unreachable)?;
        let docker = docker.negotiate_version().await.map_err(RuntimeError::Unreachable)?;
        docker.ping().await.map_err(RuntimeError::Unreachable)?;
        Ok(Runtime { docker })
    }

    pub async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
            Err(e) => Err(docker_err(format!("inspect image {image}"))(e)),
        }
    }

    /// The value of a label on an image, if the image exists and has it.
    pub async fn image_label(&self, image: &str, key: &str) -> Result<Option<String>, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(i.config.and_then(|c| c.labels).and_then(|mut l| l.remove(key))),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(docker_err(format!("inspect image {image}"))(e)),
        }
    }

    /// Creates the management network unless it exists; an existing one is reused when
    /// its subnet matches, so several labs can share containerlab's default `clab`.
    pub async fn ensure_network(&self, lab: &str, mgmt: &Mgmt) -> Result<(), RuntimeError> {
        if let Ok(n) = self.docker.inspect_network(&mgmt.network, None).await {
            let subnets: Vec<String> = n
                .ipam
                .and_then(|i| i.config)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| c.subnet)
                .collect();
            if !subnets.iter().any(|s| *s == mgmt.ipv4_subnet.to_string()) {
                return Err(RuntimeError::Other(format!(
                    "management network {} exists with subnets [{}], not {}: pick another mgmt.network or mgmt.ipv4-subnet",
                    mgmt.network,
                    subnets.join(", "),
                    mgmt.ipv4_subnet
                )));
            }
            return Ok(());
        }
        let mut config = vec![IpamConfig {
            subnet: Some(mgmt.ipv4_subnet.to_string()),
            ..Default::default()
        }];
        if let Some(v6) = mgmt.ipv6_subnet {
            config.push(IpamConfig {
                subnet: Some(v6.to_string()),
                ..Default::default()
            });
        }
        let req = NetworkCreateRequest {
            name: mgmt.network.clone(),
            driver: Some("bridge".into()),
            enable_ipv6: Some(mgmt.ipv6_subnet.is_some()),
            ipam: Some(Ipam {
                config: Some(config),
                ..Default::default()
            }),
            labels: Some(HashMap::from([
                (LABEL_RUNNER.to_string(), "lab".to_string()),
                (LABEL_LAB.to_string(), lab.to_string()),
            ])),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(_) => Ok(()),
            Err(e @ bollard::errors::Error::DockerResponseServerError { status_code: 403, .. }) => {
                // Docker says only "Pool overlaps": name who holds the address space.
                let holders = self.networks_overlapping(mgmt).await.unwrap_or_default();
                if holders.is_empty() {
                    return Err(docker_err(format!("create management network {}", mgmt.network))(e));
                }
                Err(RuntimeError::Other(format!(
                    "management network {} ({}) overlaps {}: take that lab down (`lab down`), or pick another mgmt.ipv4-subnet",
                    mgmt.network,
                    mgmt.ipv4_subnet,
                    holders.join(", ")
                )))
            }
            Err(e) => Err(docker_err(format!("create management network {}", mgmt.network))(e)),
        }
    }

    /// The networks whose subnets overlap `mgmt`'s, each as `NAME (SUBNET, lab LAB)`.
    async fn networks_overlapping(&self, mgmt: &Mgmt) -> Result<Vec<String>, RuntimeError> {
        let ours: Vec<IpNet> = std::iter::once(IpNet::V4(mgmt.ipv4_subnet))
            .chain(mgmt.ipv6_subnet.map(IpNet::V6))
            .collect();
        let nets = self
            .docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
            .map_err(docker_err("list networks"))?;
        let mut out = Vec::new();
        for n in nets {
            let lab = n.labels.as_ref().and_then(|l| l.get(LABEL_LAB)).cloned();
            let subnets = n.ipam.and_then(|i| i.config).unwrap_or_default();
            for s in subnets.into_iter().filter_map(|c| c.subnet) {
                let Ok(theirs) = s.parse::<IpNet>() else { continue };
                if ours
                    .iter()
                    .any(|o| o.contains(&theirs.network()) || theirs.contains(&o.network()))
                {
                    let owner = lab.as_deref().map(|l| format!(", lab {l}")).unwrap_or_default();
                    out.push(format!("{} ({s}{owner})", n.name.clone().unwrap_or_default()));
                }
            }
        }
        Ok(out)
    }

    /// Removes a management network this runner made, once no container uses it.
    /// Returns whether it was removed.
    pub async fn remove_network_if_unused(&self, name: &str) -> Result<bool, RuntimeError> {
        let Ok(n) = self.docker.inspect_network(name, None).await else {
            return Ok(false);
        };
        let ours = n.labels.as_ref().is_some_and(|l| l.contains_key(LABEL_RUNNER));
        let used = n.containers.as_ref().is_some_and(|c| !c.is_empty());
        if !ours || used {
            return Ok(false);
        }
        self.docker
            .remove_network(name)
            .await
            .map_err(docker_err(format!("remove network {name}")))?;
        Ok(true)
    }

    /// Management networks this runner made.
    pub async fn our_networks(&self) -> Result<Vec<String>, RuntimeError> {
        let filters = HashMap::from([("label", vec![LABEL_RUNNER])]);
        let nets = self
            .docker
            .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
            .await
            .map_err(docker_err("list networks"))?;
        Ok(nets.into_iter().filter_map(|n| n.name).collect())
    }

    /// Creates (not starts) a node's container with what a router needs: every
    /// capability the host can grant, writable sysctls, IPv6 on.
    pub async fn create_node(&self, topo: &Topology, node: &Node) -> Result<String, RuntimeError> {
        if !self.image_exists(&node.image).await? {
            return Err(RuntimeError::MissingImage {
                node: node.name.clone(),
                image: node.image.clone(),
            });
        }
        let name = topo.container_name(&node.name);
        let mut labels: HashMap<String, String> = node.labels.clone().into_iter().collect();
        labels.insert(LABEL_RUNNER.into(), "lab".into());
        labels.insert(LABEL_LAB.into(), topo.name.clone());
        labels.insert(LABEL_NODE.into(), node.name.clone());
        labels.insert(LABEL_KIND.into(), node.kind.clone());
        labels.insert(LABEL_TOPO.into(), topo.file.display().to_string());
        labels.insert(LABEL_OWNER.into(), owner());

        let mut sysctls: HashMap<String, String> = NODE_SYSCTLS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sysctls.extend(node.sysctls.clone());

        let endpoint = EndpointSettings {
            ipam_config: (node.mgmt_ipv4.is_some() || node.mgmt_ipv6.is_some()).then(|| EndpointIpamConfig {
                ipv4_address: node.mgmt_ipv4.map(|a| a.to_string()),
                ipv6_address: node.mgmt_ipv6.map(|a| a.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(node.image.clone()),
            hostname: Some(node.name.clone()),
            env: Some(node.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: node.cmd.as_deref().map(crate::argv::split),
            entrypoint: node.entrypoint.as_deref().map(crate::argv::split),
            labels: Some(labels),
            host_config: Some(HostConfig {
                binds: Some(node.binds.iter().map(|b| b.docker()).collect()),
                cap_add: Some(vec!["ALL".into()]),
                cap_drop: Some(crate::caps::missing_from_bounding_set()),
                security_opt: Some(vec!["seccomp=unconfined".into(), "apparmor=unconfined".into()]),
                // The CLI's `systempaths=unconfined`: /proc and /sys writable (sysctls,
                // netns mounts), which the API spells as empty masked and read-only paths.
                masked_paths: Some(vec![]),
                readonly_paths: Some(vec![]),
                sysctls: Some(sysctls),
                network_mode: Some(topo.mgmt.network.clone()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(topo.mgmt.network.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(docker_err(format!("create container {name} for node {}", node.name)))?;
        Ok(created.id)
    }

    pub async fn start(&self, container: &str) -> Result<(), RuntimeError> {
        self.docker
            .start_container(container, None)
            .await
            .map_err(docker_err(format!("start container {container}")))
    }

    /// Freezes every process of a container (`docker pause`): a node that stops
    /// answering without closing anything, as one that lost power.
    pub async fn pause(&self, container: &str) -> Result<(), RuntimeError> {
        self.docker
            .pause_container(container)
            .await
            .map_err(docker_err(format!("pause container {container}")))
    }

    pub async fn unpause(&self, container: &str) -> Result<(), RuntimeError> {
        self.docker
            .unpause_container(container)
            .await
            .map_err(docker_err(format!("unpause container {container}")))
    }

    /// A container's address on its management network, if it has one.
    pub async fn mgmt_address(&self, container: &str) -> Result<Option<std::net::IpAddr>, RuntimeError> {
        let info = self
            .docker
            .inspect_container(container, None)
            .await
            .map_err(docker_err(format!("inspect container {container}")))?;
        Ok(info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|n| n.values().find_map(|e| e.ip_address.clone()))
            .and_then(|a| a.parse().ok()))
    }

    /// The host PID of a running container's init process (for its network namespace).
    pub async fn pid(&self, container: &str) -> Result<u32, RuntimeError> {
        let info = self
            .docker
            .inspect_container(container, None)
            .await
            .map_err(docker_err(format!("inspect container {container}")))?;
        info.state
            .and_then(|s| s.pid)
            .filter(|p| *p > 0)
            .map(|p| p as u32)
            .ok_or_else(|| RuntimeError::Other(format!("container {container} is not running")))
    }

    /// Starts a command in a container, attached to its output; returns the exec's id
    /// and the output stream.
    async fn start_exec(&self, container: &str, cmd: &[String]) -> Result<(String, OutputStream), RuntimeError> {
        use bollard::exec::StartExecResults;
        let what = || format!("exec `{}` in {container}", cmd.join(" "));
        let created = self
            .docker
            .create_exec(
                container,
                ExecConfig {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(docker_err(what()))?;
        match self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(docker_err(what()))?
        {
            StartExecResults::Attached { output, .. } => Ok((created.id, output)),
            StartExecResults::Detached => Err(RuntimeError::Other(format!("{}: not attached", what()))),
        }
    }

    /// Runs a command in a container and collects its output and exit code: entered
    /// directly where that is the same as `docker exec` (see [`crate::enter`]), through
    /// the engine otherwise.
    pub async fn exec(&self, container: &str, cmd: &[String]) -> Result<ExecOutput, RuntimeError> {
        if let Some(target) = self.enter_target(container).await? {
            return crate::enter::run(&target, cmd)
                .await
                .map(|f| ExecOutput {
                    code: f.code,
                    stdout: f.stdout,
                    stderr: f.stderr,
                })
                .map_err(|e| RuntimeError::Other(format!("exec `{}` in {container}: {e}", cmd.join(" "))));
        }
        self.docker_exec(container, cmd).await
    }

    /// What [`crate::enter`] needs of a container that it may enter: one that runs,
    /// is not paused and runs its commands as root, with entering available here.
    async fn enter_target(&self, container: &str) -> Result<Option<crate::enter::Target>, RuntimeError> {
        if !crate::enter::available() {
            return Ok(None);
        }
        let info = self
            .docker
            .inspect_container(container, None)
            .await
            .map_err(docker_err(format!("inspect container {container}")))?;
        let state = info.state.unwrap_or_default();
        let config = info.config.unwrap_or_default();
        let root = config
            .user
            .as_deref()
            .is_none_or(|u| u.is_empty() || u == "root" || u == "0");
        match state.pid {
            Some(pid) if pid > 0 && state.running == Some(true) && state.paused != Some(true) && root => {
                Ok(Some(crate::enter::Target {
                    pid: pid as u32,
                    env: config.env.unwrap_or_default(),
                    hostname: config.hostname,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Runs a command through the engine's exec.
    async fn docker_exec(&self, container: &str, cmd: &[String]) -> Result<ExecOutput, RuntimeError> {
        use bollard::container::LogOutput;
        let what = || format!("exec `{}` in {container}", cmd.join(" "));
        let (id, mut output) = self.start_exec(container, cmd).await?;
        let mut out = ExecOutput::default();
        while let Some(chunk) = output.next().await {
            match chunk.map_err(docker_err(what()))? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    out.stdout.push_str(&String::from_utf8_lossy(&message))
                }
                LogOutput::StdErr { message } => out.stderr.push_str(&String::from_utf8_lossy(&message)),
                LogOutput::StdIn { .. } => {}
            }
        }
        let inspect = self.docker.inspect_exec(&id).await.map_err(docker_err(what()))?;
        out.code = inspect.exit_code.unwrap_or(-1);
        Ok(out)
    }

    /// Starts a long-running command in a container; its output arrives line by line
    /// (standard output and error together) until it ends.
    pub async fn exec_lines(
        &self,
        container: &str,
        cmd: &[String],
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<String>, RuntimeError> {
        if let Some(target) = self.enter_target(container).await? {
            return crate::enter::lines(&target, cmd)
                .map_err(|e| RuntimeError::Other(format!("exec `{}` in {container}: {e}", cmd.join(" "))));
        }
        let (_, mut output) = self.start_exec(container, cmd).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut partial = String::new();
            while let Some(Ok(chunk)) = output.next().await {
                partial.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                while let Some(i) = partial.find('\n') {
                    let line: String = partial.drain(..=i).collect();
                    if tx.send(line.trim_end().to_string()).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Containers this runner made, of one lab or of all.
    pub async fn containers(&self, lab: Option<&str>) -> Result<Vec<ContainerSummary>, RuntimeError> {
        let mut labels = vec![LABEL_RUNNER.to_string()];
        if let Some(lab) = lab {
            labels.push(format!("{LABEL_LAB}={lab}"));
        }
        let filters = HashMap::from([("label", labels)]);
        let opts = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let mut list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(docker_err("list containers"))?;
        list.sort_by(|a, b| a.names.cmp(&b.names));
        Ok(list)
    }

    /// Removes an image (a mutant's, once its cases ran); gone already is fine.
    pub async fn remove_image(&self, image: &str) -> Result<(), RuntimeError> {
        let opts = bollard::query_parameters::RemoveImageOptionsBuilder::new()
            .force(true)
            .build();
        match self.docker.remove_image(image, Some(opts), None).await {
            Ok(_) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(docker_err(format!("remove image {image}"))(e)),
        }
    }

    pub async fn remove(&self, container: &str) -> Result<(), RuntimeError> {
        let opts = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match self.docker.remove_container(container, Some(opts)).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(docker_err(format!("remove container {container}"))(e)),
        }
    }
}
