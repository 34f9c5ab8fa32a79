//! The lab beyond this machine: images pushed to a real registry (Debian's
//! docker-registry, unpacked by `make deps`) and cells rendered for clabernetes, checked
//! against containerlab's schema and read back by `lab`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use e2e::{lab, lab_ok, root, sh, target_dir};
use serde_json::Value;

/// A registry process, stopped by its PID when dropped.
struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on 127.0.0.1:port: (status, body).
fn get(port: u16, path: &str, accept: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: {accept}\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad status line: {head}"))?;
    Ok((status, body.to_string()))
}

/// `lab images --push` to a registry started here: the registry then serves both images,
/// their manifests naming the very image configurations of the local engine.
pub fn images_pushed() -> Result<()> {
    let bin = root().join(".lab/registry/usr/bin/docker-registry");
    ensure!(
        bin.exists(),
        "{} is missing: run `make deps` (or `make test`)",
        bin.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = target_dir().join(format!("e2e-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        ),
    )?;
    let log = std::fs::File::create(dir.join("registry.log"))?;
    let _registry = Registry(
        Command::new(&bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?,
    );
    let t = Instant::now();
    while get(port, "/v2/", "*/*").map(|(s, _)| s).ok() != Some(200) {
        ensure!(
            t.elapsed() < Duration::from_secs(15),
            "the registry did not answer on :{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A registry named with a scheme is refused before anything is built or pushed.
    let bad = lab(&["images", "--push", &format!("http://127.0.0.1:{port}")])?;
    let err = String::from_utf8_lossy(&bad.stderr);
    ensure!(!bad.status.success() && err.contains("without a scheme"), "{err}");

    let registry = format!("127.0.0.1:{port}/e2e");
    let out = lab_ok(&["images", "--root", root().to_str().unwrap(), "--push", &registry]);
    let pushed: Vec<String> = ["podlab/base:latest", "podlab/speaker:latest"]
        .iter()
        .map(|i| format!("{registry}/{i}"))
        .collect();
    // The engine keeps the registry's names, as after `docker push`: removed whatever
    // the outcome (the images stay under their own names).
    let untag = || {
        for p in &pushed {
            let _ = Command::new("docker").args(["rmi", p]).output();
        }
    };
    let checked = (|| -> Result<()> {
        out?;
        for image in ["base", "speaker"] {
            let (status, body) = get(port, &format!("/v2/e2e/podlab/{image}/tags/list"), "*/*")?;
            ensure!(status == 200, "tags of podlab/{image}: {status} {body}");
            let tags: Value = serde_json::from_str(&body)?;
            ensure!(tags["tags"] == serde_json::json!(["latest"]), "{body}");
            let (status, body) = get(
                port,
                &format!("/v2/e2e/podlab/{image}/manifests/latest"),
                "application/vnd.docker.distribution.manifest.v2+json",
            )?;
            ensure!(status == 200, "manifest of podlab/{image}: {status} {body}");
            let manifest: Value = serde_json::from_str(&body)?;
            let id = sh(
                "docker",
                &["image", "inspect", "-f", "{{.Id}}", &format!("podlab/{image}:latest")],
            )?;
            ensure!(
                manifest["config"]["digest"].as_str() == Some(id.trim()),
                "podlab/{image}: the registry holds {} but the engine {}",
                manifest["config"]["digest"],
                id.trim()
            );
        }
        // The control: an image the registry was not given is not there.
        let (status, _) = get(port, "/v2/e2e/podlab/nothing/tags/list", "*/*")?;
        ensure!(status == 404, "an image never pushed answered {status}");
        Ok(())
    })();
    untag();
    let _ = std::fs::remove_dir_all(&dir);
    checked
}

/// `lab render --for clabernetes`: every cell's containerlab definition validates against
/// containerlab's schema and with `lab`, carries no link address, and clabernetes'
/// resources are beside it; without a registry it is refused.
pub fn clabernetes_render() -> Result<()> {
    let dir = target_dir().join(format!("e2e-c9s-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let refused = lab(&["render", "--for", "clabernetes", "--out", d])?;
    let err = String::from_utf8_lossy(&refused.stderr);
    ensure!(!refused.status.success() && err.contains("--registry"), "{err}");
    ensure!(!dir.exists(), "a refused render wrote {d}");

    let out = lab_ok(&[
        "render",
        "--for",
        "clabernetes",
        "--registry",
        "registry.example:5000/lab",
        "--out",
        d,
    ])?;
    let mut definitions = Vec::new();
    for line in out.lines() {
        let resources = line.split_whitespace().next().context("an empty line")?;
        ensure!(resources.ends_with(".c9s.yaml"), "{line}");
        let text = std::fs::read_to_string(resources)?;
        ensure!(
            text.contains("kind: Topology") && text.contains("kind: ConfigMap"),
            "{resources}"
        );
        let definition = resources.replace(".c9s.yaml", ".clab.yml");
        let topo: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&definition)?)?;
        for l in topo["topology"]["links"].as_sequence().into_iter().flatten() {
            if l.get("ipv4").is_some() || l.get("ipv6").is_some() {
                bail!("{definition}: a link with addresses, which clabernetes drops: {l:?}");
            }
        }
        let valid = lab_ok(&["validate", "-t", &definition])?;
        ensure!(valid.contains("is valid"), "{valid}");
        definitions.push(definition);
    }
    ensure!(definitions.len() >= 40, "{} cells rendered:\n{out}", definitions.len());
    let checker = root().join(".lab/venv/bin/check-jsonschema");
    let schema = root().join("lab/schema/clab.schema.json");
    let mut args = vec!["--schemafile".to_string(), schema.to_string_lossy().to_string()];
    args.extend(definitions);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sh(checker.to_str().unwrap(), &args).context("not valid for containerlab's schema")?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
