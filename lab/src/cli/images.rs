//! `lab images`: the node images, built from Debian packages.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::args::*;
use crate::print::*;
use lab::images;
use lab::progress::Progress;
use lab::registry::{self, Registry};
use lab::runtime::Runtime;

pub async fn images(a: ImagesArgs, progress: &Progress) -> Result<ExitCode> {
    let ImagesArgs {
        force,
        only,
        root,
        push,
    } = a;
    // A mistyped registry is refused before anything is built.
    let registry = push.as_deref().map(Registry::parse).transpose()?;
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
    if let Some(registry) = registry {
        let built = [("base", images::BASE_IMAGE), ("speaker", images::SPEAKER_IMAGE)];
        for (_, image) in built
            .iter()
            .filter(|(which, _)| only.as_deref().is_none_or(|o| o == *which))
        {
            let t = Instant::now();
            let name = progress
                .around(&format!("pushing {image}"), registry::push(&rt, &registry, image))
                .await?;
            progress.done(&format!("pushed {name}"), t);
        }
    }
    Ok(ExitCode::SUCCESS)
}
