//! Compiles `schemas/topics/*.json` into the crate, so every binary carries the registry it was
//! built and tested with. The files are checked at start-up by `Registry::embedded`.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let topics_dir = manifest_dir.join("../../../schemas/topics");
    let topics_dir = topics_dir.canonicalize().unwrap_or_else(|e| {
        panic!(
            "the topic registry {} is missing: {e}",
            topics_dir.display()
        )
    });
    println!("cargo::rerun-if-changed={}", topics_dir.display());

    let mut files: Vec<PathBuf> = std::fs::read_dir(&topics_dir)
        .expect("read schemas/topics")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();

    let mut code = String::from("pub static TOPICS: &[(&str, &str)] = &[\n");
    for path in &files {
        println!("cargo::rerun-if-changed={}", path.display());
        let name = format!("topics/{}", path.file_name().unwrap().to_string_lossy());
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded_topics.rs");
    std::fs::write(out, code).expect("write embedded_topics.rs");
}
