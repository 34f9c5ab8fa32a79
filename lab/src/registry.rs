//! The lab's images in a registry, for labs that run beyond this machine (clabernetes,
//! containerlab on other hosts): a registry named as `docker push` takes it, our images
//! named in it, and pushed there through the Docker engine with the credentials
//! `docker login` stored.

use std::path::{Path, PathBuf};

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{PushImageOptionsBuilder, TagImageOptionsBuilder};
use futures::StreamExt;

use crate::runtime::Runtime;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry `{given}`: {why}")]
    Name { given: String, why: String },
    #[error("{0} is not in the local engine: build it first (`lab images`)")]
    Missing(String),
    #[error("pushing {image}: {message}")]
    Push { image: String, message: String },
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
}

/// A registry and the path under it that our images go to: `HOST[:PORT][/PATH]`, as
/// `docker push` reads the part of a name before the repository (no scheme).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry(String);

impl Registry {
    pub fn parse(given: &str) -> Result<Registry, RegistryError> {
        let err = |why: &str| RegistryError::Name {
            given: given.to_string(),
            why: why.to_string(),
        };
        let s = given.trim().trim_end_matches('/');
        if s.is_empty() {
            return Err(err("empty"));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(err(&format!(
                "a registry is named without a scheme, as `docker push` takes it: drop `{scheme}://`"
            )));
        }
        let (host, path) = s.split_once('/').unwrap_or((s, ""));
        let (name, port) = host.split_once(':').unwrap_or((host, ""));
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !name.split('.').all(label_ok) {
            return Err(err(&format!("`{name}` is not a host name or address")));
        }
        if host.contains(':') && !port.parse::<u16>().is_ok_and(|p| p != 0) {
            return Err(err(&format!("`{port}` is not a port")));
        }
        for c in path.split('/').filter(|_| !path.is_empty()) {
            let ok = !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric());
            if !ok {
                return Err(err(&format!(
                    "path part `{c}`: lower-case letters, digits and `._-` between them only"
                )));
            }
        }
        Ok(Registry(s.to_string()))
    }

    /// The host (and port) part: where credentials are kept for.
    pub fn host(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    /// A local image's name in this registry: `podlab/base:latest` -> `REG/podlab/base:latest`.
    pub fn name(&self, image: &str) -> String {
        format!("{}/{image}", self.0)
    }
}

impl std::fmt::Display for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits `REPO[:TAG]` where REPO may hold a registry's port: the tag is after the
/// last `:` that follows the last `/`.
fn repo_and_tag(name: &str) -> (&str, &str) {
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].rfind(':') {
        Some(i) => (&name[..last + i], &name[last + i + 1..]),
        None => (name, "latest"),
    }
}

/// What `docker login` stored for `host` in `$DOCKER_CONFIG/config.json` (or
/// `~/.docker/config.json`): the engine's API takes credentials from its client, as the
/// docker CLI sends them. A credential helper is not run: its registries are pushed to
/// anonymously, with a warning.
fn credentials(host: &str) -> DockerCredentials {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
    match dir {
        Some(d) => credentials_in(&d.join("config.json"), host),
        None => DockerCredentials::default(),
    }
}

fn credentials_in(path: &Path, host: &str) -> DockerCredentials {
    let anonymous = DockerCredentials::default();
    let Ok(text) = std::fs::read_to_string(path) else {
        return anonymous;
    };
    let Ok(config) = serde_json::from_str::<serde_json::Value>(&text) else {
        tracing::warn!(path = %path.display(), "not JSON: pushing without credentials");
        return anonymous;
    };
    let auth = config["auths"][host]["auth"].as_str().and_then(|a| {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD.decode(a.trim()).ok()?;
        let pair = String::from_utf8(raw).ok()?;
        let (user, pass) = pair.split_once(':')?;
        Some((user.to_string(), pass.to_string()))
    });
    match auth {
        Some((username, password)) => DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress: Some(host.to_string()),
            ..Default::default()
        },
        None => {
            if config["credHelpers"][host].is_string() || config["credsStore"].is_string() {
                tracing::warn!(
                    path = %path.display(),
                    host,
                    "credentials are kept by a credential helper, which lab does not run: pushing without them"
                );
            }
            anonymous
        }
    }
}

/// Tags the local `image` with its name in `registry` and pushes it there. Returns the
/// name it was pushed under; the tag stays in the engine, as after `docker push`, and
/// goes again when the push fails.
pub async fn push(rt: &Runtime, registry: &Registry, image: &str) -> Result<String, RegistryError> {
    if !rt.image_exists(image).await? {
        return Err(RegistryError::Missing(image.to_string()));
    }
    let target = registry.name(image);
    let (repo, tag) = repo_and_tag(&target);
    let fail = |message: String| RegistryError::Push {
        image: target.clone(),
        message,
    };
    rt.docker
        .tag_image(image, Some(TagImageOptionsBuilder::new().repo(repo).tag(tag).build()))
        .await
        .map_err(|e| fail(format!("tagging {image}: {e}")))?;
    let pushed = async {
        let mut stream = rt.docker.push_image(
            repo,
            Some(PushImageOptionsBuilder::new().tag(tag).build()),
            Some(credentials(registry.host())),
        );
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| fail(e.to_string()))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(fail(message));
            }
        }
        Ok(())
    }
    .await;
    if pushed.is_err() {
        // Not pushed: the name we tagged goes again (the image keeps its own).
        let _ = rt.remove_image(&target).await;
    }
    pushed.map(|()| target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_named_as_docker_push_takes_them() {
        for ok in [
            "127.0.0.1:5000",
            "registry.example.com",
            "ghcr.io/our-team/lab",
            "localhost:5000/a/b",
            "r.example/x/",
        ] {
            let r = Registry::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(!r.to_string().ends_with('/'), "{r}");
        }
        assert_eq!(Registry::parse("ghcr.io/team").unwrap().host(), "ghcr.io");
        assert_eq!(
            Registry::parse("127.0.0.1:5000/").unwrap().name("podlab/base:latest"),
            "127.0.0.1:5000/podlab/base:latest"
        );
        for (bad, says) in [
            ("", "empty"),
            ("http://127.0.0.1:5000", "drop `http://`"),
            ("reg:port", "`port` is not a port"),
            ("reg:0", "`0` is not a port"),
            ("reg_istry.io", "not a host name"),
            ("ghcr.io/Team", "path part `Team`"),
            ("ghcr.io//x", "path part ``"),
        ] {
            let e = Registry::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_tag_is_after_the_port() {
        assert_eq!(
            repo_and_tag("127.0.0.1:5000/podlab/base:latest"),
            ("127.0.0.1:5000/podlab/base", "latest")
        );
        assert_eq!(
            repo_and_tag("127.0.0.1:5000/podlab/base"),
            ("127.0.0.1:5000/podlab/base", "latest")
        );
        assert_eq!(repo_and_tag("podlab/speaker:mutant-x"), ("podlab/speaker", "mutant-x"));
    }

    #[test]
    fn credentials_from_docker_login() {
        let dir = std::env::temp_dir().join(format!("lab-docker-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // "user:pa:ss" in base64: a password may hold a colon.
        std::fs::write(
            dir.join("config.json"),
            r#"{"auths": {"reg.example:5000": {"auth": "dXNlcjpwYTpzcw=="}}, "credsStore": "desktop"}"#,
        )
        .unwrap();
        let path = dir.join("config.json");
        let c = credentials_in(&path, "reg.example:5000");
        assert_eq!(c.username.as_deref(), Some("user"));
        assert_eq!(c.password.as_deref(), Some("pa:ss"));
        let none = credentials_in(&path, "other.example");
        assert!(none.username.is_none() && none.password.is_none());
        assert!(credentials_in(&dir.join("absent.json"), "reg.example:5000")
            .username
            .is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
