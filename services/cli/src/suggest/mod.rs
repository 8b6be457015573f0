//! `switchyard mappings suggest`: proposes a mapping file from one sample payload — field-name
//! similarity plus value patterns, each candidate dry-run through the real transforms and checked
//! against the contract's rule — with a confidence and the evidence on every line. It writes a
//! proposal for a person to review (stdout or the file named with `--out`); it never deploys one.

mod candidates;
mod checker;
mod evidence;
mod names;
mod output;
mod proposal;
mod record;
mod sampling;
mod vocabulary;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use switchyard_proto::contracts::{self, Contract};
use switchyard_transform::mapping::{Context, Mapping, Registry};

use checker::Checker;
use output::{dry_run_comment, render, summary};
use proposal::{Options, suggest};

/// `switchyard mappings …`
#[derive(Debug, Subcommand)]
pub enum MappingsCommand {
    /// Propose a mapping file from one sample payload, with a confidence per field (a proposal to
    /// review: it is written where you say, never deployed).
    Suggest(SuggestArgs),
}

/// `switchyard mappings suggest`
#[derive(Debug, Args)]
pub struct SuggestArgs {
    /// One sample payload (JSON) as the vendor sends it.
    pub sample: PathBuf,
    /// The contract object to produce: contact, lead, company, product, deal, order, invoice.
    #[arg(long)]
    pub object: String,
    /// The contract version (default: the newest).
    #[arg(long)]
    pub version: Option<u32>,
    /// The source kind the mapping is for.
    #[arg(long, default_value = "standard-webhooks")]
    pub source_kind: String,
    /// The event type (default: the sample's `type`, `eventType` or `topic`, else TODO).
    #[arg(long)]
    pub event_type: Option<String>,
    /// The mapping's name (default: <source-kind>-<object>).
    #[arg(long)]
    pub name: Option<String>,
    /// Write the proposal to this file instead of stdout; an existing file is kept.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Let --out replace an existing file.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Your own contracts (beside the built-in ones).
    #[arg(long)]
    pub contracts: Option<PathBuf>,
}

/// Candidates below this score are not proposed.
const THRESHOLD: f64 = 0.45;
/// How much the name counts against the value (the rest).
const NAME_WEIGHT: f64 = 0.65;
const VALUE_WEIGHT: f64 = 0.35;
/// What a path outside the record (in the envelope) costs.
const OUTSIDE_PENALTY: f64 = 0.1;
/// At most this many paths per field (the first non-empty one wins at run time).
const MAX_PATHS: usize = 3;
/// The region the dry run gives `e164` (transform's default, `dedupe.default_region`).
const DRY_RUN_REGION: phonenumber::country::Id = phonenumber::country::Id::US;

/// Runs `switchyard mappings …`.
pub fn run(command: MappingsCommand) -> anyhow::Result<()> {
    let MappingsCommand::Suggest(args) = command;
    let loaded = contracts::load(args.contracts.as_deref())?;
    let contract = pick_contract(&loaded, &args.object, args.version)?;
    let text = std::fs::read_to_string(&args.sample)
        .with_context(|| format!("cannot read {}", args.sample.display()))?;
    let sample: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.sample.display()))?;
    if let Some(out) = &args.out
        && out.exists()
        && !args.force
    {
        bail!("{} exists; pass --force to replace it", out.display());
    }
    let options = Options {
        name: args
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", args.source_kind, contract.object)),
        source_kind: args.source_kind.clone(),
        event_type: args.event_type.clone(),
        sample_label: args.sample.display().to_string(),
    };
    let checker = Checker::new(&contract.object);
    let proposal = suggest(&sample, contract, &options, &checker);
    let mut yaml = render(&proposal);
    // The proposal must load as a mapping in the product itself; a failure is a bug here.
    let mapping = validate(&yaml, &proposal.name, &loaded)
        .context("the proposal does not load as a mapping (a bug in `mappings suggest`)")?;
    let problems = dry_run(&mapping, contract, &sample, &checker.ctx);
    yaml.push_str(&dry_run_comment(&proposal, contract, &problems));
    match &args.out {
        Some(out) => write_new(out, &yaml, args.force)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(yaml.as_bytes())?;
            stdout.flush()?;
        }
    }
    let mut summary = summary(&proposal, contract, &problems);
    let replaces_built_in = Registry::load(None, &loaded)
        .is_ok_and(|built_in| built_in.all().iter().any(|m| m.name == proposal.name));
    if replaces_built_in {
        let _ = writeln!(
            summary,
            "note: {} is the name of a built-in mapping; in transform.mappings_dir this file would replace it",
            proposal.name
        );
    }
    if let Some(out) = &args.out {
        let _ = writeln!(
            summary,
            "wrote the proposal to {} (nothing deployed: review it, then copy it into transform.mappings_dir)",
            out.display()
        );
    }
    let _ = std::io::stderr().lock().write_all(summary.as_bytes());
    Ok(())
}

/// The contract for `object` at `version` (the newest when none is given).
fn pick_contract<'a>(
    loaded: &'a [Contract],
    object: &str,
    version: Option<u32>,
) -> anyhow::Result<&'a Contract> {
    let mut versions: Vec<&Contract> = loaded.iter().filter(|c| c.object == object).collect();
    versions.sort_by_key(|c| c.version);
    if versions.is_empty() {
        let mut known: Vec<&str> = loaded.iter().map(|c| c.object.as_str()).collect();
        known.sort_unstable();
        known.dedup();
        bail!(
            "unknown object {object:?}: the contracts define {}",
            known.join(", ")
        );
    }
    match version {
        None => versions
            .last()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no contract for {object}")),
        Some(v) => versions
            .iter()
            .find(|c| c.version == v)
            .copied()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{object} has no version {v} (known: {})",
                    versions
                        .iter()
                        .map(|c| format!("v{}", c.version))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
    }
}

/// Writes `text` to `path`, never over an existing file unless `force`.
fn write_new(path: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    let opened = if force {
        std::fs::File::create(path)
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    };
    let mut file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} exists; pass --force to replace it", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Loads the proposal the way transform does (the `Registry`, against the contracts) from a
/// scratch directory, and returns it.
fn validate(yaml: &str, name: &str, loaded: &[Contract]) -> anyhow::Result<Mapping> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir =
        std::env::temp_dir().join(format!("switchyard-suggest-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let loaded = std::fs::write(dir.join("proposal.yaml"), yaml)
        .map_err(anyhow::Error::from)
        .and_then(|()| Registry::load(Some(&dir), loaded).map_err(anyhow::Error::from));
    let _ = std::fs::remove_dir_all(&dir);
    loaded?
        .all()
        .iter()
        .rev()
        .find(|m| m.name == name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("mapping {name} is missing after loading"))
}

/// Applies the loaded proposal to the sample and checks the record against the contract: the
/// problems, each naming its field.
fn dry_run(mapping: &Mapping, contract: &Contract, sample: &Value, ctx: &Context) -> Vec<String> {
    let (mapped, mut problems) = mapping.apply_all(sample, ctx);
    let mut record = mapped.record;
    if let Err(violations) = contract.apply(&mut record) {
        problems.extend(violations);
    }
    problems
}

#[cfg(test)]
mod tests;
