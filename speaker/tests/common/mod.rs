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

    /// kill -9 of one process we started, by its PID.
    pub fn kill(&mut self, name: &str) {
        if let Some(i) = self.procs.iter().position(|(n, _)| n == name) {
            let (_, mut child) = self.procs.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
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

    pub fn speaker_config(&self, extra_peer_fields: &str) -> PathBuf {
        let sock = self.path("speaker.sock");
        let text = format!(
            r#"asNumber: {SPEAKER_AS}
routerID: 10.0.0.1
pools: [10.244.0.0/16, "fd00:244::/32"]
gracefulRestart: {{enabled: false}}
apiSocket: {sock}
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
        let bin = env!("CARGO_BIN_EXE_speaker");
        let ns = self.a.clone();
        let config = config.display().to_string();
        self.spawn(
            "speaker",
            &ns,
            &[bin, "run", "-c", &config],
            &[("RUST_LOG", "speaker=debug")],
        );
    }

    /// The speaker's own status, through its CLI.
    pub fn speaker_status(&self) -> Value {
        let bin = env!("CARGO_BIN_EXE_speaker");
        let sock = self.path("speaker.sock");
        run(&format!("{bin} status --json --socket {}", sock.display()))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    }

    pub fn speaker_peer_state(&self, addr: &str) -> String {
        let st = self.speaker_status();
        st["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["address"] == addr)
            .map(|p| p["state"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
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

/// Prints a timing line the test report keeps.
pub fn timing(what: &str, d: Duration) {
    eprintln!("timing: {what}: {} ms", d.as_millis());
}
