//! `lab images`: the node images, built from Debian packages.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::args::*;
use crate::print::*;
use lab::images;
use lab::progress::Progress;
use lab::runtime::Runtime;

pub async fn images(a: ImagesArgs, progress: &Progress) -> Result<ExitCode> {
    let ImagesArgs { force, only, root } = a;
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
