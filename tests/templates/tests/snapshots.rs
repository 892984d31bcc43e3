//! Snapshots of every synthesized CloudFormation template, per environment.
//!
//! An infrastructure change shows up here as a snapshot diff to review (`cargo insta review`).
//! Asset hashes are redacted, so a change to Rust code alone never fails these tests.
//!
//! Templates come from `EVENTFABRIC_TEMPLATES_DIR` (default `<target>/templates`), written by
//! `node --import tsx cdk/scripts/synth-templates.ts <dir>`; scripts/test.sh does both.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn templates_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EVENTFABRIC_TEMPLATES_DIR") {
        return PathBuf::from(dir);
    }
    // `cargo test` sets CARGO_MANIFEST_DIR at run time: this checkout's, even for a test binary
    // compiled in another one.
    let manifest_dir =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    Path::new(&manifest_dir).join("../../target/templates")
}

/// `(stack file stem, template)` of every stack of `env`, sorted.
fn templates(env: &str) -> Vec<(String, Value)> {
    let dir = templates_dir().join(env);
    let assembly = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "no synthesized templates in {} ({e}): run scripts/test.sh, or \
                 `node --import tsx cdk/scripts/synth-templates.ts <dir>` with EVENTFABRIC_TEMPLATES_DIR=<dir>",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("assembly-")))
        .unwrap_or_else(|| panic!("no assembly-* directory in {}", dir.display()));
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&assembly)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".template.json"))
        .map(|p| {
            let stem = p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches(".template.json")
                .to_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            (stem, serde_json::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Replaces every 64-hex-digit run (asset hashes in S3 keys and asset parameters) with a marker.
fn redact_asset_hashes(value: &mut Value) {
    match value {
        Value::String(s) => *s = redact_str(s),
        Value::Array(items) => items.iter_mut().for_each(redact_asset_hashes),
        Value::Object(map) => map.values_mut().for_each(redact_asset_hashes),
        _ => {}
    }
}

fn redact_str(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let bounded = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if run == 64 && bounded {
            out.push_str("[asset-hash]");
            i += run;
        } else if run > 0 {
            out.push_str(&s[i..i + run]);
            i += run;
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn snapshot_env(env: &str) {
    let stacks = templates(env);
    let names: Vec<&str> = stacks.iter().map(|(stem, _)| stem.as_str()).collect();
    assert_eq!(
        names.len(),
        11,
        "{env}: expected a stateful and a stateless stack each for the platform, the session pipeline, the ingest stream, realtime and the tunnel, and the delivery stack, found {names:?}"
    );
    for (stem, mut template) in stacks {
        redact_asset_hashes(&mut template);
        insta::assert_json_snapshot!(format!("{env}__{stem}"), template);
    }
}

#[test]
fn dev_templates() {
    snapshot_env("dev");
}

#[test]
fn staging_templates() {
    snapshot_env("staging");
}

#[test]
fn prod_templates() {
    snapshot_env("prod");
}

#[test]
fn asset_hashes_are_redacted_and_nothing_else() {
    let hash = "1887f10cf8b4f823778df84a8fe2a82f9ba06bebb3082cc0cdbf8ea635596eb8";
    assert_eq!(redact_str(&format!("{hash}.zip")), "[asset-hash].zip");
    assert_eq!(redact_str(&format!("cdk/{hash}")), "cdk/[asset-hash]");
    // Logical-id suffixes and shorter hex runs are part of the infrastructure: kept.
    assert_eq!(redact_str("SessionBus5BEA75C7"), "SessionBus5BEA75C7");
    assert_eq!(redact_str(&hash[..63]), &hash[..63]);
    assert_eq!(redact_str(&format!("{hash}0")), format!("{hash}0"));
}
