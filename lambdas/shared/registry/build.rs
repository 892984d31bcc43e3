//! Compiles `schemas/topics/*.json` into the crate, so every binary carries the registry it was
//! built and tested with. The files are checked at start-up by `Registry::embedded`.
//!
//! The generated code holds the files' text, not their paths, and the rerun paths are relative
//! to this crate: nothing in the build depends on where the checkout lives, so a build cache
//! shared between clones stays valid (`.ci/run`).

use std::path::{Path, PathBuf};

const TOPICS_DIR: &str = "../../../schemas/topics";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let topics_dir = manifest_dir.join(TOPICS_DIR);
    // The directory itself, so that an added or removed topic file reruns this script.
    println!("cargo::rerun-if-changed={TOPICS_DIR}");

    let mut names: Vec<String> = std::fs::read_dir(&topics_dir)
        .unwrap_or_else(|e| {
            panic!(
                "the topic registry {} is missing: {e}",
                topics_dir.display()
            )
        })
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| Path::new(name).extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();

    let mut code = String::from("pub static TOPICS: &[(&str, &str)] = &[\n");
    for name in &names {
        println!("cargo::rerun-if-changed={TOPICS_DIR}/{name}");
        let path = topics_dir.join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        code.push_str(&format!(
            "    ({:?}, {text:?}),\n",
            format!("topics/{name}")
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded_topics.rs");
    std::fs::write(out, code).expect("write embedded_topics.rs");
}
