//! A short command run in a container without the Docker engine: `nsenter` into the
//! namespaces of the container's init process, after joining its cgroups, with its
//! environment, root and working directory, as `docker exec` places a command. It
//! costs a few milliseconds where `docker exec` costs fifty and a `runc` start, and
//! the matrix runs thousands of reads of FIBs, RIBs and sessions through it.
//!
//! Used only where it is the same as `docker exec`: the lab runs as root, the host has
//! `nsenter`, the container runs (not paused: a frozen node must refuse commands as
//! Docker makes it) and runs its commands as root. `LAB_EXEC=docker` turns it off.

use std::path::Path;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::AsyncReadExt;

const NSENTER: &str = "/usr/bin/nsenter";

/// What a command printed, and how it ended.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// What a container must offer for a command to enter it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The host PID of the container's init process.
    pub pid: u32,
    /// The container's environment (`KEY=VALUE`), as Docker gives it to `exec`.
    pub env: Vec<String>,
    pub hostname: Option<String>,
}

/// Whether this process may enter containers: root, with `nsenter` on the host, and
/// not turned off by `LAB_EXEC=docker`.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::env::var("LAB_EXEC").map(|v| v != "docker").unwrap_or(true)
            && Path::new(NSENTER).exists()
            && effective_uid() == Some(0)
    })
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The cgroup directories of a process, one per hierarchy (cgroup v1 and v2). The
/// freezer's among them: a daemon started through here must stop when its node is
/// paused, as it does when `docker exec` starts it.
fn cgroups(pid: u32) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| format!("the container's init process ({pid}) is gone: /proc/{pid}/cgroup: {e}"))?;
    Ok(cgroup_dirs(&text, Path::new("/sys/fs/cgroup")))
}

fn cgroup_dirs(text: &str, root: &Path) -> Vec<String> {
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let mount = match controllers {
            "" if root.join("cgroup.controllers").exists() => root.to_path_buf(),
            "" => root.join("unified"),
            c => {
                let c = c.trim_start_matches("name=");
                let joined = root.join(c);
                if joined.exists() {
                    joined
                } else {
                    // A co-mounted hierarchy (`cpu,cpuacct`) may be mounted under
                    // either name.
                    match c.split(',').map(|c| root.join(c)).find(|p| p.exists()) {
                        Some(p) => p,
                        None => continue,
                    }
                }
            }
        };
        let dir = mount.join(path.trim_start_matches('/'));
        if dir.join("cgroup.procs").exists() {
            dirs.push(dir.display().to_string());
        }
    }
    dirs
}

/// Runs `cmd` in the container, as root, and collects what it printed and its exit
/// code. Output that background processes keep writing after the command ended is
/// not waited for.
pub async fn run(target: &Target, cmd: &[String]) -> Result<Finished, String> {
    let mut child = command(target, cmd, false)?
        .spawn()
        .map_err(|e| format!("{NSENTER}: {e}"))?;
    let stdout = Pipe::read(child.stdout.take());
    let stderr = Pipe::read(child.stderr.take());
    let status = child.wait().await.map_err(|e| format!("{NSENTER}: {e}"))?;
    Ok(Finished {
        code: status.code().map(i64::from).unwrap_or(-1),
        stdout: stdout.finish().await,
        stderr: stderr.finish().await,
    })
}

/// Starts a long-running `cmd` in the container; its output (standard output and
/// error together) arrives line by line until it ends.
pub fn lines(target: &Target, cmd: &[String]) -> Result<tokio::sync::mpsc::UnboundedReceiver<String>, String> {
    use tokio::io::AsyncBufReadExt;
    let mut child = command(target, cmd, true)?
        .spawn()
        .map_err(|e| format!("{NSENTER}: {e}"))?;
    let stdout = child.stdout.take().ok_or_else(|| format!("{NSENTER}: no output"))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line.trim_end().to_string()).is_err() {
                break;
            }
        }
        // Reaped, whether it ended or its reader went away (then it is killed).
        let _ = child.kill().await;
    });
    Ok(rx)
}

/// `sh` joining the container's cgroups, then becoming `nsenter` running `cmd`.
fn command(target: &Target, cmd: &[String], merge_stderr: bool) -> Result<tokio::process::Command, String> {
    let mut script = String::new();
    for dir in cgroups(target.pid)? {
        if dir.contains('\'') {
            return Err(format!("cgroup {dir:?}: cannot be quoted"));
        }
        script.push_str(&format!("echo 0 > '{dir}/cgroup.procs' || exit 126; "));
    }
    if merge_stderr {
        script.push_str("exec 2>&1; ");
    }
    script.push_str(&format!(
        "exec {NSENTER} --target {} --all --root --wd -- \"$@\"",
        target.pid
    ));
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(cmd)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Out of the lab's process group, as `docker exec` is: a Ctrl-C meant for `lab`
        // must not reach a daemon started in a node.
        .process_group(0)
        .kill_on_drop(true);
    for kv in &target.env {
        if let Some((k, v)) = kv.split_once('=') {
            command.env(k, v);
        }
    }
    // Docker's defaults where the image sets none.
    if !target.env.iter().any(|kv| kv.starts_with("PATH=")) {
        command.env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }
    if !target.env.iter().any(|kv| kv.starts_with("HOME=")) {
        command.env("HOME", "/root");
    }
    if let Some(h) = &target.hostname {
        command.env("HOSTNAME", h);
    }
    Ok(command)
}

/// A pipe read to its end in the background.
struct Pipe {
    task: tokio::task::JoinHandle<()>,
    buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Pipe {
    fn read<R: tokio::io::AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Pipe {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = buf.clone();
        let task = tokio::spawn(async move {
            let Some(mut p) = pipe else { return };
            let mut chunk = [0u8; 8192];
            while let Ok(n) = p.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                into.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&chunk[..n]);
            }
        });
        Pipe { task, buf }
    }

    /// What was read once the command has ended: a daemon it started in the
    /// background may hold the pipe open for good, so what arrived within a moment
    /// of the end is what the command printed.
    async fn finish(mut self) -> String {
        if tokio::time::timeout(Duration::from_millis(100), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
        let buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_dirs_of_v1_skip_missing_hierarchies() {
        let root = std::env::temp_dir().join(format!("enter-test-{}", std::process::id()));
        for d in [
            "memory/docker/abc",
            "cpu,cpuacct/docker/abc",
            "systemd/docker/abc",
            "unified/docker/abc",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
            std::fs::write(root.join(d).join("cgroup.procs"), "").unwrap();
        }
        std::fs::create_dir_all(root.join("freezer/docker/abc")).unwrap();
        std::fs::write(root.join("freezer/docker/abc/cgroup.procs"), "").unwrap();
        let text = "9:name=systemd:/docker/abc\n6:freezer:/docker/abc\n4:memory:/docker/abc\n\
                    2:cpu,cpuacct:/docker/abc\n8:pids:/docker/abc\n0::/docker/abc\n";
        let dirs = cgroup_dirs(text, &root);
        let rel: Vec<String> = dirs
            .iter()
            .map(|d| d.trim_start_matches(&root.display().to_string()).to_string())
            .collect();
        assert_eq!(
            rel,
            [
                "/systemd/docker/abc",
                "/freezer/docker/abc",
                "/memory/docker/abc",
                "/cpu,cpuacct/docker/abc",
                "/unified/docker/abc"
            ]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
