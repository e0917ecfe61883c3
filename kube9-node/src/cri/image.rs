//! Image references and pull policies, as Kubernetes reads them.

use std::fmt;

/// `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull every time a container is created, even when the image is present.
    Always,
    /// Pull only when the engine does not have the image.
    IfNotPresent,
    /// Never pull: a missing image is an error (`ErrImageNeverPull`).
    Never,
}

impl PullPolicy {
    /// The policy a container asks for; empty means Kubernetes' default: `Always` for an image
    /// tagged `latest` or not tagged at all (and not pinned by digest), `IfNotPresent`
    /// otherwise. An unknown word is treated as empty (the API server validates the field).
    pub fn resolve(policy: &str, image: &str) -> Self {
        match policy {
            "Always" => PullPolicy::Always,
            "IfNotPresent" => PullPolicy::IfNotPresent,
            "Never" => PullPolicy::Never,
            _ => {
                let reference = Reference::parse(image);
                if reference.digest.is_none()
                    && reference.tag.as_deref().is_none_or(|t| t == "latest")
                {
                    PullPolicy::Always
                } else {
                    PullPolicy::IfNotPresent
                }
            }
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        })
    }
}

/// An image reference split into its repository, tag and digest
/// (`registry:5000/team/app:1.2@sha256:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Everything before the tag: `registry:5000/team/app`, `busybox`.
    pub repository: String,
    /// `1.2`; `None` when the reference has no tag.
    pub tag: Option<String>,
    /// `sha256:…`; `None` when the reference is not pinned.
    pub digest: Option<String>,
}

impl Reference {
    /// Splits `image`. A `:` counts as the tag separator only after the last `/`, so a
    /// registry port is never taken for a tag.
    pub fn parse(image: &str) -> Self {
        let (name, digest) = match image.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_string())),
            None => (image, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        match name[last_slash..].rfind(':') {
            Some(colon) => {
                let colon = last_slash + colon;
                Reference {
                    repository: name[..colon].to_string(),
                    tag: Some(name[colon + 1..].to_string()),
                    digest,
                }
            }
            None => Reference {
                repository: name.to_string(),
                tag: None,
                digest,
            },
        }
    }

    /// What to ask the engine to pull as its `tag` parameter: the digest when pinned, the tag,
    /// or `latest`. Never empty: an empty tag would make Docker pull every tag of the
    /// repository.
    pub fn pull_tag(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_has_no_tag_and_pulls_latest() {
        let r = Reference::parse("busybox");
        assert_eq!(r.repository, "busybox");
        assert_eq!(r.tag, None);
        assert_eq!(r.pull_tag(), "latest");
    }

    #[test]
    fn a_registry_port_is_not_a_tag() {
        let r = Reference::parse("registry:5000/team/app");
        assert_eq!(r.repository, "registry:5000/team/app");
        assert_eq!(r.tag, None);
        let r = Reference::parse("registry:5000/team/app:1.2");
        assert_eq!(r.repository, "registry:5000/team/app");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
    }

    #[test]
    fn a_digest_is_pulled_by_digest() {
        let r = Reference::parse("app:1@sha256:abc");
        assert_eq!(r.repository, "app");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(r.pull_tag(), "sha256:abc");
    }

    #[test]
    fn the_default_policy_follows_the_tag() {
        let resolve = |image| PullPolicy::resolve("", image);
        assert_eq!(resolve("nginx"), PullPolicy::Always);
        assert_eq!(resolve("nginx:latest"), PullPolicy::Always);
        assert_eq!(resolve("nginx:1.27"), PullPolicy::IfNotPresent);
        assert_eq!(resolve("nginx@sha256:abc"), PullPolicy::IfNotPresent);
        assert_eq!(resolve("localhost:5000/nginx"), PullPolicy::Always);
    }

    #[test]
    fn an_explicit_policy_wins() {
        assert_eq!(PullPolicy::resolve("Never", "nginx"), PullPolicy::Never);
        assert_eq!(PullPolicy::resolve("Always", "nginx:1"), PullPolicy::Always);
        assert_eq!(
            PullPolicy::resolve("IfNotPresent", "nginx"),
            PullPolicy::IfNotPresent
        );
    }
}
