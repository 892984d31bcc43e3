//! `registry check`  — enforce the registry rules; one line per violation, exit 1 if any.
//! `registry export` — write the routing manifest the CDK app reads (`--check`: fail if stale).
//! `registry evolve --base REF` — fail on breaking changes against the registry at git REF.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use eventfabric_registry::evolution::check_evolution;
use eventfabric_registry::manifest::{MANIFEST_PATH, Manifest};
use eventfabric_registry::{Registry, RegistryError, parse_sources};

const USAGE: &str = "usage: registry <check|export|evolve> [--root DIR] [--check] [--base REF]
  check              enforce the registry rules on DIR/schemas/topics
  export             write DIR/cdk/generated/registry.json from the registry
  export --check     fail if DIR/cdk/generated/registry.json is not up to date
  evolve --base REF  fail on breaking schema changes since git REF (no major bump, no prior deprecation)
  --root DIR         the workspace root (default: the nearest directory up from the current
                     one that holds schemas/topics, else the workspace this was built from)";

/// The checkout being worked in (`eventfabric_registry::checkout_root`; this crate is three
/// levels below the workspace root).
fn default_root() -> PathBuf {
    eventfabric_registry::checkout_root(3)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut root = default_root();
    let mut command = None;
    let mut check_only = false;
    let mut base = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--root" => match it.next() {
                Some(dir) => root = PathBuf::from(dir),
                None => return usage_error("--root needs a directory"),
            },
            "--check" => check_only = true,
            "--base" => match it.next() {
                Some(rev) => base = Some(rev.clone()),
                None => return usage_error("--base needs a git revision"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "check" | "export" | "evolve" if command.is_none() => command = Some(arg.as_str()),
            other => return usage_error(&format!("unexpected argument '{other}'")),
        }
    }
    let topics_dir = root.join("schemas/topics");
    match command {
        Some("check") => check(&topics_dir),
        Some("export") => export(&topics_dir, &root.join(MANIFEST_PATH), check_only),
        Some("evolve") => match base {
            Some(base) => evolve(&root, &topics_dir, &base),
            None => usage_error("evolve needs --base REF"),
        },
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

/// The registry sources at git revision `base`, or None when it had no registry.
fn sources_at(root: &Path, base: &str) -> Result<Option<Vec<(String, String)>>, String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))
    };
    let listing = git(&["ls-tree", "--name-only", base, "schemas/topics/"])?;
    if !listing.status.success() {
        return Err(format!(
            "git ls-tree {base}: {}",
            String::from_utf8_lossy(&listing.stderr).trim()
        ));
    }
    let files: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter(|f| f.ends_with(".json"))
        .map(str::to_owned)
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        let shown = git(&["show", &format!("{base}:{file}")])?;
        if !shown.status.success() {
            return Err(format!(
                "git show {base}:{file}: {}",
                String::from_utf8_lossy(&shown.stderr).trim()
            ));
        }
        let name = file.trim_start_matches("schemas/").to_owned();
        sources.push((name, String::from_utf8_lossy(&shown.stdout).into_owned()));
    }
    Ok(Some(sources))
}

fn evolve(root: &Path, topics_dir: &Path, base: &str) -> ExitCode {
    let current = match load(topics_dir) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let base_sources = match sources_at(root, base) {
        Ok(Some(sources)) => sources,
        Ok(None) => {
            println!("registry evolve: {base} has no registry; nothing to compare");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("registry evolve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let base_topics = match parse_sources(base_sources) {
        Ok(entries) => entries.into_iter().map(|e| e.spec).collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("registry evolve: the registry at {base} does not parse: {e}");
            return ExitCode::FAILURE;
        }
    };
    let violations = check_evolution(&base_topics, current.topics());
    if violations.is_empty() {
        println!(
            "registry evolve passed: {} topics compatible with {base}",
            current.topics().len()
        );
        return ExitCode::SUCCESS;
    }
    for v in &violations {
        eprintln!("{v}");
    }
    eprintln!(
        "registry evolve failed: {} breaking change(s) since {base}",
        violations.len()
    );
    ExitCode::FAILURE
}
