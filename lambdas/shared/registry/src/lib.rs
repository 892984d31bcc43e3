//! The eventfabric topic registry.
//!
//! `schemas/topics/<topic>.json` holds one [`TopicSpec`] per topic. This crate reads them,
//! enforces the registry rules ([`check`]) and gives typed access by name or alias. The same
//! files are compiled into every binary that depends on this crate ([`Registry::embedded`]),
//! so a function and the registry it was tested against always ship together.

pub mod check;
pub mod evolution;
pub mod glue;
pub mod manifest;
pub mod model;

use std::collections::HashMap;
use std::path::Path;

pub use check::{SourceEntry, Violation};

/// The checkout being worked in: the nearest ancestor of the current directory that holds
/// `schemas/topics`, else the one `cargo run` names (`CARGO_MANIFEST_DIR` at run time, and the
/// crate's place in the workspace). Never the directory the binary was compiled in: a binary
/// reused from a build in another checkout (a shared cargo target dir, as `.ci/run` keeps) must
/// read this checkout's files.
pub fn checkout_root(crate_depth: usize) -> std::path::PathBuf {
    let has_registry = |d: &std::path::Path| d.join("schemas/topics").is_dir();
    if let Some(root) = std::env::current_dir().ok().and_then(|dir| {
        dir.ancestors()
            .find(|d| has_registry(d))
            .map(std::path::PathBuf::from)
    }) {
        return root;
    }
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    manifest_dir
        .ancestors()
        .nth(crate_depth)
        .map(std::path::PathBuf::from)
        .unwrap_or(manifest_dir)
}
pub use model::*;

/// Why the registry could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}: not a valid registry entry: {source}")]
    Parse {
        file: String,
        source: serde_json::Error,
    },
    #[error("the registry breaks {} rule(s):\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rules(Vec<Violation>),
}

/// A checked registry: every rule holds, every name and alias resolves to one topic.
#[derive(Debug, Clone)]
pub struct Registry {
    topics: Vec<TopicSpec>,
    /// Names and aliases. foldhash hashes a name in a few nanoseconds; a binary search over
    /// sorted names showed up in the forward hot path's profile as string comparisons.
    by_name: HashMap<String, usize, foldhash::fast::RandomState>,
}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_topics.rs"));
}

impl Registry {
    /// The registry this binary was built with (`schemas/topics` at compile time).
    pub fn embedded() -> Result<Self, RegistryError> {
        let sources = embedded::TOPICS
            .iter()
            .map(|(file, text)| ((*file).to_owned(), (*text).to_owned()))
            .collect::<Vec<_>>();
        Self::from_sources(sources)
    }

    /// Reads every `*.json` file of `dir` (not recursive), named relative to `dir`'s parent
    /// so messages read `topics/x.json` or `schemas/topics/x.json`.
    pub fn load_dir(dir: &Path) -> Result<Self, RegistryError> {
        Self::from_sources(read_dir_sources(dir)?)
    }

    /// Parses and checks `(file name, JSON text)` pairs. Parse errors and rule violations are
    /// all reported together.
    pub fn from_sources(sources: Vec<(String, String)>) -> Result<Self, RegistryError> {
        let entries = parse_sources(sources)?;
        let violations = check::check_registry(&entries);
        if !violations.is_empty() {
            return Err(RegistryError::Rules(violations));
        }
        let mut entries = entries;
        entries.sort_by(|a, b| a.spec.topic.cmp(&b.spec.topic));
        let topics: Vec<TopicSpec> = entries.into_iter().map(|e| e.spec).collect();
        // The rules made every name unique.
        let by_name = topics
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                std::iter::once(&t.topic)
                    .chain(&t.aliases)
                    .map(move |n| (n.clone(), i))
            })
            .collect();
        Ok(Self { topics, by_name })
    }

    /// The topic a name or alias refers to.
    pub fn resolve(&self, name: &str) -> Option<&TopicSpec> {
        self.resolve_index(name).map(|i| &self.topics[i])
    }

    /// The position in [`Registry::topics`] of the topic a name or alias refers to, for callers
    /// that keep per-topic data in a parallel table.
    pub fn resolve_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> &[TopicSpec] {
        &self.topics
    }
}

/// Reads `dir/*.json` as `(display name, text)` pairs in a stable order.
pub fn read_dir_sources(dir: &Path) -> Result<Vec<(String, String)>, RegistryError> {
    let io = |source| RegistryError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(|source| RegistryError::Io {
                path: p.display().to_string(),
                source,
            })?;
            Ok((display_name(&p), text))
        })
        .collect()
}

fn display_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    match path.parent().and_then(Path::file_name) {
        Some(parent) => format!("{}/{file}", parent.to_string_lossy()),
        None => file,
    }
}

/// Parses every source; on any parse failure, reports all of them at once.
pub fn parse_sources(sources: Vec<(String, String)>) -> Result<Vec<SourceEntry>, RegistryError> {
    let mut entries = Vec::with_capacity(sources.len());
    let mut failures = Vec::new();
    for (file, text) in sources {
        match serde_json::from_str::<TopicSpec>(&text) {
            Ok(spec) => entries.push(SourceEntry { file, spec }),
            Err(e) => failures.push(Violation {
                file,
                rule: "parse",
                message: e.to_string(),
            }),
        }
    }
    if failures.is_empty() {
        Ok(entries)
    } else {
        Err(RegistryError::Rules(failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_registry_is_valid_and_resolves_aliases() {
        let registry = Registry::embedded().expect("schemas/topics must pass the registry rules");
        assert!(registry.topics().len() >= 6);
        let summary = registry
            .resolve("session.summary.final")
            .expect("summary topic");
        assert_eq!(summary.route(), Some(Route::Bus(Bus::Session)));
        for t in registry.topics() {
            for alias in &t.aliases {
                assert_eq!(registry.resolve(alias).map(|r| &r.topic), Some(&t.topic));
            }
        }
        assert!(registry.resolve("no.such.topic").is_none());
    }

    #[test]
    fn the_registry_covers_every_forwarding_policy() {
        let registry = Registry::embedded().unwrap();
        let has = |p: ForwardingPolicy| registry.topics().iter().any(|t| t.forwarding_policy == p);
        assert!(has(ForwardingPolicy::Default));
        assert!(has(ForwardingPolicy::Sampled));
        assert!(has(ForwardingPolicy::Deny));
        assert!(
            registry
                .topics()
                .iter()
                .any(|t| t.pii_level == PiiLevel::High && t.redaction_hint.is_some())
        );
    }

    #[test]
    fn parse_errors_name_the_file_and_the_field() {
        let err = Registry::from_sources(vec![
            (
                "topics/a.b.json".into(),
                r#"{"topic": "a.b", "colour": 1}"#.into(),
            ),
            ("topics/c.d.json".into(), "not json".into()),
        ])
        .unwrap_err();
        let RegistryError::Rules(v) = err else {
            panic!("expected rule violations")
        };
        assert_eq!(v.len(), 2);
        assert!(
            v[0].to_string().starts_with("topics/a.b.json: [parse]"),
            "{}",
            v[0]
        );
        assert!(v[0].message.contains("colour"), "{}", v[0]);
    }
}

/// The reference tokens of a JSON pointer (RFC 6901), unescaped (`~1` is `/`, `~0` is `~`, in
/// that order): `None` unless it is empty (the whole document) or starts with `/`. The one
/// place pointers are split, for the registry's checks and the forward function's redaction.
pub fn pointer_tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    Some(
        pointer
            .strip_prefix('/')?
            .split('/')
            .map(|token| token.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

#[cfg(test)]
mod pointer_tests {
    #[test]
    fn pointer_tokens_are_unescaped_in_rfc_6901_order() {
        assert_eq!(super::pointer_tokens(""), Some(vec![]));
        assert_eq!(
            super::pointer_tokens("/a~1b/~01"),
            Some(vec!["a/b".into(), "~1".into()])
        );
        assert_eq!(super::pointer_tokens("/"), Some(vec![String::new()]));
        assert_eq!(super::pointer_tokens("a"), None);
    }
}
