//! `registry check`  — enforce the registry rules; one line per violation, exit 1 if any.
//! `registry export` — write the routing manifest the CDK app reads (`--check`: fail if stale).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use eventfabric_registry::manifest::{MANIFEST_PATH, Manifest};
use eventfabric_registry::{Registry, RegistryError};

const USAGE: &str = "usage: registry <check|export> [--root DIR] [--check]
  check            enforce the registry rules on DIR/schemas/topics
  export           write DIR/cdk/generated/registry.json from the registry
  export --check   fail if DIR/cdk/generated/registry.json is not up to date
  --root DIR       the workspace root (default: this workspace)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.."));
    let mut command = None;
    let mut check_only = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--root" => match it.next() {
                Some(dir) => root = PathBuf::from(dir),
                None => return usage_error("--root needs a directory"),
            },
            "--check" => check_only = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "check" | "export" if command.is_none() => command = Some(arg.as_str()),
            other => return usage_error(&format!("unexpected argument '{other}'")),
        }
    }
    let topics_dir = root.join("schemas/topics");
    match command {
        Some("check") => check(&topics_dir),
        Some("export") => export(&topics_dir, &root.join(MANIFEST_PATH), check_only),
        _ => usage_error("missing command"),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("registry: {message}\n{USAGE}");
    ExitCode::from(2)
}

fn load(topics_dir: &Path) -> Result<Registry, ExitCode> {
    Registry::load_dir(topics_dir).map_err(|e| {
        match e {
            RegistryError::Rules(violations) => {
                for v in &violations {
                    eprintln!("{v}");
                }
                eprintln!("registry check failed: {} violation(s)", violations.len());
            }
            other => eprintln!("registry check failed: {other}"),
        }
        ExitCode::FAILURE
    })
}

fn check(topics_dir: &Path) -> ExitCode {
    match load(topics_dir) {
        Ok(registry) => {
            println!("registry check passed: {} topics", registry.topics().len());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn export(topics_dir: &Path, manifest_path: &Path, check_only: bool) -> ExitCode {
    let registry = match load(topics_dir) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let fresh = Manifest::from_registry(&registry).to_json();
    if check_only {
        let current = std::fs::read_to_string(manifest_path).unwrap_or_default();
        if current == fresh {
            println!("{MANIFEST_PATH} is up to date");
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "{MANIFEST_PATH} is stale: run `cargo run -p eventfabric-registry --bin registry -- export` and commit it"
        );
        return ExitCode::FAILURE;
    }
    if let Some(dir) = manifest_path.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("cannot create {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    match std::fs::write(manifest_path, fresh) {
        Ok(()) => {
            println!("wrote {MANIFEST_PATH} ({} topics)", registry.topics().len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", manifest_path.display());
            ExitCode::FAILURE
        }
    }
}
