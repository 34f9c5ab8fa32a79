//! Node images, built here with no registry: a Debian root file system made by
//! mmdebstrap and imported into Docker (the base), and the base plus the speaker binary.
//! Each image is labelled with a hash of its inputs; a build whose inputs did not change
//! does nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::runtime::Runtime;

pub const BASE_IMAGE: &str = "podlab/base:latest";
pub const SPEAKER_IMAGE: &str = "podlab/speaker:latest";
use crate::labels::LABEL_INPUTS;
const SUITE: &str = "bookworm";
/// The host's own Debian sources, used where they exist (see images/README.md).
const HOST_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Build(String),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a build did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    UpToDate,
    Built,
}

/// Finds the workspace root (the folder holding `images/`) from `start` upwards.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("images/base/packages").is_file())
        .map(Path::to_path_buf)
}

fn hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Package names from `images/base/packages` (comments and blank lines skipped).
pub fn base_packages(root: &Path) -> Result<Vec<String>, ImageError> {
    let path = root.join("images/base/packages");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

const BASE_CHANGES: [&str; 2] = [r#"ENTRYPOINT ["/usr/bin/tini", "--"]"#, r#"CMD ["sleep", "infinity"]"#];

/// Builds `podlab/base:latest` unless an image with the same inputs exists.
pub async fn build_base(rt: &Runtime, root: &Path, force: bool) -> Result<Outcome, ImageError> {
    let packages = base_packages(root)?;
    let hook = root.join("images/base/customize.sh");
    let hook_text = std::fs::read(&hook).map_err(io(&hook))?;
    let sources = Path::new(HOST_SOURCES).is_file().then(|| PathBuf::from(HOST_SOURCES));
    let inputs = hash(&[
        packages.join(",").as_bytes(),
        &hook_text,
        SUITE.as_bytes(),
        BASE_CHANGES.join("\n").as_bytes(),
    ]);
    if !force && rt.image_label(BASE_IMAGE, LABEL_INPUTS).await?.as_deref() == Some(inputs.as_str()) {
        return Ok(Outcome::UpToDate);
    }

    let cache = root.join(".lab/cache");
    std::fs::create_dir_all(&cache).map_err(io(&cache))?;
    let tarball = cache.join(format!("base-{inputs}.tar"));
    let mut cmd = tokio::process::Command::new("mmdebstrap");
    cmd.arg("--variant=minbase")
        .arg(format!("--include={}", packages.join(",")))
        .arg(format!("--customize-hook=sh {} \"$1\"", hook.display()))
        .arg(SUITE)
        .arg(&tarball);
    if let Some(s) = &sources {
        cmd.arg(s);
    }
    tracing::info!(packages = packages.len(), sources = ?sources, "running mmdebstrap");
    let out = cmd.stdin(Stdio::null()).output().await.map_err(|e| {
        ImageError::Build(format!(
            "cannot run mmdebstrap: {e} (install it: `apt-get install mmdebstrap`)"
        ))
    })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tarball);
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        return Err(ImageError::Build(format!(
            "mmdebstrap failed ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }

    let mut changes: Vec<String> = BASE_CHANGES.iter().map(|s| s.to_string()).collect();
    changes.push(format!("LABEL {LABEL_INPUTS}={inputs}"));
    let (repo, tag) = BASE_IMAGE.split_once(':').expect("image has a tag");
    let opts = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(changes)
        .build();
    let file = tokio::fs::File::open(&tarball).await.map_err(io(&tarball))?;
    let chunks = futures::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut stream = rt
        .docker
        .create_image(Some(opts), Some(bollard::body_try_stream(chunks)), None);
    while let Some(item) = stream.next().await {
        item.map_err(|e| ImageError::Build(format!("docker import of {}: {e}", tarball.display())))?;
    }
    let _ = std::fs::remove_file(&tarball);
    if rt.image_label(BASE_IMAGE, LABEL_INPUTS).await?.as_deref() != Some(inputs.as_str()) {
        return Err(ImageError::Build(format!(
            "imported {BASE_IMAGE} but it lacks label {LABEL_INPUTS}={inputs}"
        )));
    }
    Ok(Outcome::Built)
}

/// Builds the speaker binary with cargo and `podlab/speaker:latest` on top of the base.
///
/// cargo unifies dependency features across the packages one command selects, so
/// `cargo build -p speaker` and `cargo build -p lab -p speaker` compile the speaker's
/// dependencies twice and write different binaries to the same path. Every build of
/// the project's own (this one, `make build`, the end-to-end tests' `lab`) selects the
/// whole workspace, as `cargo test --workspace` does: one set of features, the
/// dependencies compiled once, and a binary (cargo links it again into
/// `target/release` even when fresh) that changes only with the source, so the
/// image's input hash does too.
pub async fn build_speaker(rt: &Runtime, root: &Path, force: bool) -> Result<Outcome, ImageError> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let status = tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--workspace", "--bin", "speaker"])
        .current_dir(root)
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(|e| ImageError::Build(format!("cannot run cargo: {e}")))?;
    if !status.success() {
        return Err(ImageError::Build(format!(
            "cargo build of the speaker failed ({status})"
        )));
    }
    speaker_image(rt, root, &target.join("release/speaker"), SPEAKER_IMAGE, force).await
}

/// The base image plus the speaker binary at `bin`, tagged `tag` (our speaker's, or a
/// mutant's of `lab mutants`), unless an image with the same inputs exists.
pub async fn speaker_image(
    rt: &Runtime,
    root: &Path,
    bin: &Path,
    tag: &str,
    force: bool,
) -> Result<Outcome, ImageError> {
    let bin_path = bin;
    let bin = std::fs::read(bin_path).map_err(io(bin_path))?;
    let dockerfile_path = root.join("images/speaker/Dockerfile");
    let dockerfile = std::fs::read(&dockerfile_path).map_err(io(&dockerfile_path))?;
    let base_id = rt
        .docker
        .inspect_image(BASE_IMAGE)
        .await
        .map_err(|e| ImageError::Build(format!("{BASE_IMAGE} is needed first: {e}")))?
        .id
        .unwrap_or_default();
    let inputs = hash(&[&bin, &dockerfile, base_id.as_bytes()]);
    if !force && rt.image_label(tag, LABEL_INPUTS).await?.as_deref() == Some(inputs.as_str()) {
        return Ok(Outcome::UpToDate);
    }

    let mut context = tar::Builder::new(Vec::new());
    for (name, data, mode) in [("Dockerfile", &dockerfile, 0o644), ("speaker", &bin, 0o755)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        context
            .append_data(&mut header, name, data.as_slice())
            .map_err(|e| ImageError::Build(format!("build context: {e}")))?;
    }
    let context = context
        .into_inner()
        .map_err(|e| ImageError::Build(format!("build context: {e}")))?;
    let labels = std::collections::HashMap::from([(LABEL_INPUTS, inputs.as_str())]);
    let args = std::collections::HashMap::from([("BASE", BASE_IMAGE)]);
    let opts = BuildImageOptionsBuilder::new()
        .t(tag)
        .rm(true)
        .forcerm(true)
        .labels(&labels)
        .buildargs(&args)
        .build();
    let mut stream = rt
        .docker
        .build_image(opts, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| ImageError::Build(format!("docker build of {tag}: {e}")))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(ImageError::Build(format!("docker build of {tag}: {err}")));
        }
    }
    Ok(Outcome::Built)
}
