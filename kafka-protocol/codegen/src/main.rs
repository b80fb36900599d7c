//! Generates kafka-protocol's message types from Kafka's JSON message definitions.
//!
//! ```text
//! cargo run -p kafka-protocol-codegen -- \
//!     --specs ../shared/reference/kafka-message-specs \
//!     --errors ../shared/reference/kafka-error-codes.tsv \
//!     --out kafka-protocol/src
//! ```
//!
//! Writes `messages/*.rs` (one module per message, plus `mod.rs` with `ApiKey`,
//! `RequestKind` and `ResponseKind`) and `error_code.rs`, then formats them with
//! rustfmt. Generation is strict: an unknown schema key, type or default fails it.

mod emit;
mod model;
mod schema;
mod tables;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

struct Args {
    specs: PathBuf,
    errors: PathBuf,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut specs = None;
    let mut errors = None;
    let mut out = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--specs" => specs = Some(PathBuf::from(val()?)),
            "--errors" => errors = Some(PathBuf::from(val()?)),
            "--out" => out = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        specs: specs.ok_or("--specs DIR is required")?,
        errors: errors.ok_or("--errors FILE is required")?,
        out: out.ok_or("--out DIR is required")?,
    })
}

/// Which specs are generated: client-facing requests (listeners include `broker`),
/// their responses, the headers, and the data schemas clients use (not raft's).
fn wanted(spec: &schema::Spec, client_keys: &[i16]) -> bool {
    match spec.kind.as_str() {
        "request" => spec.listeners.iter().any(|l| l == "broker"),
        "response" => spec.api_key.is_some_and(|k| client_keys.contains(&k)),
        "header" => true,
        "data" => matches!(
            spec.name.as_str(),
            "ConsumerProtocolAssignment" | "ConsumerProtocolSubscription" | "DefaultPrincipalData"
        ),
        _ => false,
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&args.specs)
        .map_err(|e| format!("{}: {e}", args.specs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    let mut specs = Vec::new();
    for path in &entries {
        let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let spec = schema::parse(&src).map_err(|e| format!("{}: {e}", path.display()))?;
        specs.push(spec);
    }
    let client_keys: Vec<i16> = specs
        .iter()
        .filter(|s| s.kind == "request" && s.listeners.iter().any(|l| l == "broker"))
        .filter_map(|s| s.api_key)
        .collect();
    let mut messages = Vec::new();
    for spec in specs.into_iter().filter(|s| wanted(s, &client_keys)) {
        let name = spec.name.clone();
        messages.push(model::MessageDef::build(spec).map_err(|e| format!("{name}: {e}"))?);
    }

    let dir = args.out.join("messages");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    remove_stale(&dir)?;
    let mut written = Vec::new();
    for m in &messages {
        let code = emit::message_module(m)?;
        let path = dir.join(format!("{}.rs", model::snake(&m.spec.name)));
        std::fs::write(&path, code).map_err(|e| e.to_string())?;
        written.push(path);
    }
    let mod_rs = tables::messages_mod(&messages)?;
    let path = dir.join("mod.rs");
    std::fs::write(&path, mod_rs).map_err(|e| e.to_string())?;
    written.push(path);

    let tsv = std::fs::read_to_string(&args.errors)
        .map_err(|e| format!("{}: {e}", args.errors.display()))?;
    let path = args.out.join("error_code.rs");
    std::fs::write(&path, tables::error_codes(&tsv)?).map_err(|e| e.to_string())?;
    written.push(path);

    let status = Command::new("rustfmt")
        .args(["--edition", "2021"])
        .args(&written)
        .status()
        .map_err(|e| format!("running rustfmt: {e}"))?;
    if !status.success() {
        return Err("rustfmt failed on the generated code".into());
    }
    println!(
        "generated {} messages into {}",
        messages.len(),
        dir.display()
    );
    Ok(())
}

/// Removes earlier generated modules (those starting with the generator's header).
fn remove_stale(dir: &Path) -> Result<(), String> {
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let path = e.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.starts_with(emit::HEADER.lines().next().unwrap_or_default()) {
                std::fs::remove_file(&path).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kafka-protocol-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
