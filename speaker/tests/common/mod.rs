//! Interop test harness: two network namespaces joined by a veth pair, our
//! speaker in one (`a`, 10.0.0.1 / fd00::1), a real BGP daemon in the other
//! (`b`, 10.0.0.2 / fd00::2). Everything is torn down on drop, even on failure:
//! processes are killed by PID, never by name.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const SPEAKER_AS: u32 = 64512;
pub const PEER_AS: u32 = 65000;
/// Our routes' kernel protocol number (the speaker's default).
pub const PROTO: &str = "201";

pub struct Lab {
    pub a: String,
    pub b: String,
    pub dir: PathBuf,
    procs: Vec<(String, Child)>,
}

pub fn run(cmd: &str) -> Result<String, String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{cmd}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn must(cmd: &str) -> String {
    run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

impl Lab {
    /// Namespaces named after the test and our PID, so parallel tests and
    /// parallel runs never meet.
    pub fn new(test: &str) -> Lab {
        assert!(
            is_root(),
            "interop tests need root (network namespaces); run `cargo test -p speaker` as root"
        );
        let pid = std::process::id();
        let a = format!("spk-{test}-{pid}-a");
        let b = format!("spk-{test}-{pid}-b");
        let dir = std::env::temp_dir().join(format!("spk-{test}-{pid}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let lab = Lab {
            a: a.clone(),
            b: b.clone(),
            dir,
            procs: Vec::new(),
        };
        for ns in [&a, &b] {
            must(&format!("ip netns add {ns}"));
            must(&format!("ip -n {ns} link set lo up"));
            must(&format!("ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 net.ipv6.conf.default.accept_dad=0 net.ipv4.ip_forward=1"));
        }
        must(&format!("ip -n {a} link add eth1 type veth peer name eth1 netns {b}"));
        for (ns, v4, v6) in [(&a, "10.0.0.1/24", "fd00::1/64"), (&b, "10.0.0.2/24", "fd00::2/64")] {
            must(&format!("ip -n {ns} addr add {v4} dev eth1"));
            must(&format!("ip -n {ns} addr add {v6} dev eth1 nodad"));
            must(&format!("ip -n {ns} link set eth1 up"));
        }
        lab
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, text).unwrap();
        p
    }

    /// Starts `args` inside `ns` (ip netns exec execs it, so the child's PID is
    /// the daemon's), logging to `<name>.log`.
    pub fn spawn(&mut self, name: &str, ns: &str, args: &[&str], env: &[(&str, &str)]) {
        let log = fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"));
        self.procs.push((name.to_string(), child));
    }

    /// The PID of a process we started (the daemon's own: `ip netns exec` execs it).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.procs.iter().find(|(n, _)| n == name).map(|(_, c)| c.id())
    }

    /// kill -9 of one process we started, by its PID.
    pub fn kill(&mut self, name: &str) {
        if let Some(i) = self.procs.iter().position(|(n, _)| n == name) {
            let (_, mut child) = self.procs.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`HUP`, `TERM`, ...) to a process we started, by its PID.
    pub fn signal(&self, name: &str, signal: &str) {
        let (_, child) = self
            .procs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no process {name}"));
        must(&format!("kill -{signal} {}", child.id()));
    }

    /// Waits (bounded) for a process we started to exit by itself.
    pub fn wait_exit(&mut self, name: &str, timeout: Duration) -> Option<std::process::ExitStatus> {
        let i = self.procs.iter().position(|(n, _)| n == name)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.procs[i].1.try_wait() {
                self.procs.remove(i);
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// SIGTERM to one process we started, then wait for it (bounded).
    pub fn terminate(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        let i = self.procs.iter().position(|(n, _)| n == name)?;
        let (_, mut child) = self.procs.remove(i);
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    pub fn log(&self, name: &str) -> String {
        let text = fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default();
        // The end is what matters in a failure message.
        let start = text.len().saturating_sub(6000);
        let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text[start..].to_string()
    }

    pub fn exec(&self, ns: &str, cmd: &str) -> String {
        run(&format!("ip netns exec {ns} {cmd}")).unwrap_or_else(|e| e)
    }

    /// The IPv6 link-local address of `dev` in `ns`.
    pub fn link_local(&self, ns: &str, dev: &str) -> String {
        let out = must(&format!("ip -n {ns} -6 -j addr show dev {dev} scope link"));
        let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        // `ip -j` prints an empty object for each filtered-out address.
        v[0]["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|a| a["local"].as_str())
            .unwrap_or_else(|| panic!("no link-local address on {dev} in {ns}: {out}"))
            .to_string()
    }

    /// Kernel routes of `ns` (`-4` or `-6`), optionally of one protocol.
    pub fn routes(&self, ns: &str, family: &str, proto: Option<&str>) -> Vec<Value> {
        let proto = proto.map(|p| format!(" proto {p}")).unwrap_or_default();
        let out = run(&format!("ip -n {ns} {family} -j route show table main{proto}")).unwrap_or_default();
        serde_json::from_str::<Vec<Value>>(&out).unwrap_or_default()
    }

    pub fn route(&self, ns: &str, prefix: &str, proto: Option<&str>) -> Option<Value> {
        let family = if prefix.contains(':') { "-6" } else { "-4" };
        // `ip` prints host routes without the /32 or /128.
        let bare = prefix.trim_end_matches("/32").trim_end_matches("/128");
        self.routes(ns, family, proto)
            .into_iter()
            .find(|r| r["dst"] == prefix || r["dst"] == bare)
    }

    /// A pod in `ns` as Calico makes one, reduced to what routing sees: a `cali`
    /// interface (a veth whose other end stays in `ns`) and the host route to
    /// `ip` on it, with the kernel's default protocol (boot).
    pub fn pod_route(&self, ns: &str, ifname: &str, ip: &str) {
        must(&format!(
            "ip -n {ns} link add {ifname} type veth peer name {ifname}p && ip -n {ns} link set {ifname} up && ip -n {ns} link set {ifname}p up"
        ));
        must(&format!("ip -n {ns} route add {ip}/32 dev {ifname}"));
    }

    /// Our routes in `ns`'s kernel (IPv4 and IPv6): prefix -> next hops, sorted.
    pub fn own_routes(&self, ns: &str) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut out = std::collections::BTreeMap::new();
        for family in ["-4", "-6"] {
            for r in self.routes(ns, family, Some(PROTO)) {
                let dst = r["dst"].as_str().unwrap_or_default().to_string();
                let dst = if dst.contains('/') {
                    dst
                } else if dst.contains(':') {
                    format!("{dst}/128")
                } else {
                    format!("{dst}/32")
                };
                let mut hops: Vec<String> = r["gateway"].as_str().map(String::from).into_iter().collect();
                for nh in r["nexthops"].as_array().into_iter().flatten() {
                    hops.extend(nh["gateway"].as_str().map(String::from));
                }
                hops.sort();
                out.insert(dst, hops);
            }
        }
        out
    }

    /// Waits until our routes in `ns` are exactly `expected` (prefix, next hop):
    /// nothing missing, nothing stale.
    pub fn wait_own_routes(&self, ns: &str, expected: &[(&str, &str)], timeout: Duration) -> Duration {
        let want: std::collections::BTreeMap<String, Vec<String>> = expected
            .iter()
            .map(|(p, nh)| (p.to_string(), vec![nh.to_string()]))
            .collect();
        self.wait(
            &format!("our routes in {ns} exactly {want:?}"),
            timeout,
            || (self.own_routes(ns) == want).then_some(()),
            || {
                format!(
                    "our routes in {ns}: {:?}\n{}",
                    self.own_routes(ns),
                    self.speaker_cli("routes").unwrap_or_else(|e| e)
                )
            },
        )
        .1
    }

    /// The protocol and device of the route to `ip`/32 in `ns`, as `ip` prints them.
    pub fn pod_route_owner(&self, ns: &str, ip: &str) -> Option<(String, String)> {
        let r = self.route(ns, &format!("{ip}/32"), None)?;
        Some((
            r["protocol"].as_str().unwrap_or_default().to_string(),
            r["dev"].as_str().unwrap_or_default().to_string(),
        ))
    }

    /// Starts BIRD 2 in `b` with `conf`, its control socket in the test's directory.
    pub fn start_bird(&mut self, conf: &str) {
        self.start_bird_as("bird", conf, &[]);
    }

    /// Starts BIRD as process `name` (its log `<name>.log`) with extra arguments
    /// (`-R`: recovering from a graceful restart).
    pub fn start_bird_as(&mut self, name: &str, conf: &str, extra: &[&str]) {
        let conf = self.write("bird.conf", conf).display().to_string();
        let (sock, pid) = (self.path("bird.ctl"), self.path("bird.pid"));
        let b = self.b.clone();
        let (sock, pid) = (sock.display().to_string(), pid.display().to_string());
        let mut args = vec!["bird", "-f", "-c", &conf, "-s", &sock, "-P", &pid];
        args.extend_from_slice(extra);
        self.spawn(name, &b, &args, &[]);
    }

    /// A `birdc` command against the BIRD of [`Lab::start_bird`]; its output or its error.
    pub fn birdc(&self, cmd: &str) -> String {
        let sock = self.path("bird.ctl");
        self.exec(&self.b, &format!("birdc -s {} {cmd}", sock.display()))
    }

    /// Whether BIRD shows protocol `name` Established.
    pub fn bird_established(&self, name: &str) -> bool {
        self.birdc("show protocols")
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name) && l.contains("Established"))
    }

    /// A request to the speaker's API through its CLI (`status`, `routes`, ...).
    pub fn speaker_cli(&self, args: &str) -> Result<String, String> {
        let bin = env!("CARGO_BIN_EXE_speaker");
        let sock = self.path("speaker.sock");
        run(&format!("{bin} {args} --socket {}", sock.display()))
    }

    /// A v4 and a v6 session to `b`, graceful restart off.
    pub fn speaker_config(&self, extra_peer_fields: &str) -> PathBuf {
        self.speaker_config_with("gracefulRestart: {enabled: false}", extra_peer_fields)
    }

    /// A v4 and a v6 session to `b`; `globals` are top-level YAML lines,
    /// `extra_peer_fields` indented lines added to both peers.
    pub fn speaker_config_with(&self, globals: &str, extra_peer_fields: &str) -> PathBuf {
        let sock = self.path("speaker.sock");
        let text = format!(
            r#"asNumber: {SPEAKER_AS}
routerID: 10.0.0.1
pools: [10.244.0.0/16, "fd00:244::/32"]
apiSocket: {sock}
{globals}
peers:
  - peerIP: 10.0.0.2
    asNumber: {PEER_AS}
    holdTime: 9
    connectRetryTime: 1
{extra_peer_fields}
  - peerIP: "fd00::2"
    asNumber: {PEER_AS}
    holdTime: 9
    connectRetryTime: 1
{extra_peer_fields}
"#,
            sock = sock.display()
        );
        self.write("speaker.yaml", &text)
    }

    pub fn start_speaker(&mut self, config: &std::path::Path) {
        self.start_speaker_as("speaker", config);
    }

    /// Starts the speaker as process `name`, its log in `<name>.log`.
    pub fn start_speaker_as(&mut self, name: &str, config: &std::path::Path) {
        let bin = env!("CARGO_BIN_EXE_speaker");
        let ns = self.a.clone();
        let config = config.display().to_string();
        self.spawn(
            name,
            &ns,
            &[bin, "run", "-c", &config],
            &[("RUST_LOG", "speaker=debug")],
        );
    }

    /// The speaker's own status, through its CLI.
    pub fn speaker_status(&self) -> Value {
        self.speaker_cli("status --json")
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    }

    /// One peer's entry in the speaker's status (`Null` when absent).
    pub fn speaker_peer(&self, addr: &str) -> Value {
        let st = self.speaker_status();
        st["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["address"] == addr)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub fn speaker_peer_state(&self, addr: &str) -> String {
        self.speaker_peer(addr)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> Option<T>,
        diag: impl Fn() -> String,
    ) -> (T, Duration) {
        let start = Instant::now();
        loop {
            if let Some(v) = probe() {
                return (v, start.elapsed());
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for: {what}\n--- diagnostics ---\n{}\n--- speaker status ---\n{}\n--- speaker log (tail) ---\n{}",
                    diag(),
                    serde_json::to_string_pretty(&self.speaker_status()).unwrap_or_default(),
                    self.log("speaker")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in &mut self.procs {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.a, &self.b] {
            let _ = run(&format!("ip netns del {ns}"));
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("test files kept in {}", self.dir.display());
        }
    }
}

fn is_root() -> bool {
    run("id -u").map(|s| s.trim() == "0").unwrap_or(false)
}

/// FRR (zebra + bgpd) in `b`, in its own path space (`-N`), so several
/// instances never collide. Its run directory goes with it.
pub struct Frr {
    pub name: String,
    pub conf: String,
}

impl Frr {
    /// Starts zebra, then bgpd, with `conf`; `tag` makes the instance name unique.
    pub fn start(lab: &mut Lab, tag: &str, conf: &str) -> Frr {
        let frr = Frr {
            name: format!("spk-{tag}-{}", std::process::id()),
            conf: lab.write("frr.conf", conf).display().to_string(),
        };
        let run_dir = format!("/var/run/frr/{}", frr.name);
        fs::create_dir_all(&run_dir).unwrap();
        must(&format!("chown frr:frr {run_dir} && chmod 755 {}", lab.dir.display()));
        let b = lab.b.clone();
        lab.spawn(
            "zebra",
            &b,
            &["/usr/lib/frr/zebra", "-N", &frr.name, "-f", &frr.conf],
            &[],
        );
        lab.wait(
            "zebra's socket",
            Duration::from_secs(5),
            || {
                std::path::Path::new(&format!("{run_dir}/zserv.api"))
                    .exists()
                    .then_some(())
            },
            || lab.log("zebra"),
        );
        frr.start_bgpd(lab, "bgpd");
        frr
    }

    /// (Re)starts bgpd as process `name`.
    pub fn start_bgpd(&self, lab: &mut Lab, name: &str) {
        let b = lab.b.clone();
        lab.spawn(
            name,
            &b,
            &["/usr/lib/frr/bgpd", "-N", &self.name, "-f", &self.conf],
            &[],
        );
    }

    pub fn vtysh(&self, lab: &Lab, args: &str) -> String {
        lab.exec(&lab.b, &format!("vtysh -N {} {args}", self.name))
    }

    pub fn json(&self, lab: &Lab, cmd: &str) -> Value {
        serde_json::from_str(&self.vtysh(lab, &format!("-c '{cmd}'"))).unwrap_or(Value::Null)
    }

    /// The state FRR shows for neighbor `peer` (`Established`, `Active`, ...).
    pub fn peer_state(&self, lab: &Lab, peer: &str) -> String {
        let n = self.json(lab, &format!("show bgp neighbors {peer} json"));
        n[peer]["bgpState"].as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(format!("/var/run/frr/{}", self.name));
    }
}

/// Polls one kernel route every 20 ms in a thread and records every poll that
/// did not find it: the proof that a route never flapped.
pub struct RouteWatch {
    what: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<Duration>)>,
}

impl RouteWatch {
    pub fn start(ns: &str, prefix: &str, proto: Option<&str>) -> RouteWatch {
        let family = if prefix.contains(':') { "-6" } else { "-4" };
        let proto = proto.map(|p| format!(" proto {p}")).unwrap_or_default();
        let cmd = format!("ip -n {ns} {family} -j route show exact {prefix}{proto}");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let (mut polls, mut missing) = (0, Vec::new());
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let present = run(&cmd)
                    .ok()
                    .and_then(|s| serde_json::from_str::<Vec<Value>>(&s).ok())
                    .is_some_and(|v| !v.is_empty());
                polls += 1;
                if !present {
                    missing.push(start.elapsed());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (polls, missing)
        });
        RouteWatch {
            what: format!("{prefix} in {ns}"),
            stop,
            thread,
        }
    }

    /// Stops polling; panics with the times it was missing, if it ever was.
    pub fn assert_never_missing(self, context: impl Fn() -> String) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (polls, missing) = self.thread.join().expect("watch thread");
        assert!(
            missing.is_empty(),
            "{} was missing in {} of {polls} polls (first at {:?})\n{}",
            self.what,
            missing.len(),
            missing.first(),
            context()
        );
        eprintln!("watch: {} present in all {polls} polls", self.what);
    }
}

/// Runs `f` on a thread that joined network namespace `ns`; sockets it creates
/// stay in `ns` wherever they are used afterwards.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: a valid namespace fd; only this thread changes namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("netns thread")
}

/// The workspace's target directory, where the benchmarks write their reports.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace")
            .join("target")
    })
}

/// Prints a timing line the test report keeps.
pub fn timing(what: &str, d: Duration) {
    eprintln!("timing: {what}: {} ms", d.as_millis());
}
