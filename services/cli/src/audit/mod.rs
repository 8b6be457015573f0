//! `switchyard audit`: reads a flow map (systems, licences and the flows people re-key by hand)
//! and reports overlap, ROI, a weighted scorecard, pilots and payback; can emit a starter config.
//! The format, formulas and scoring rules are documented in docs/audit.md.

mod actual;
pub mod analysis;
pub mod emit;
mod locate;
pub mod model;
pub mod overlap;
pub mod report;
mod validate;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use analysis::Settings;
use model::FlowMap;

/// Arguments of `switchyard audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The flow map (YAML; format in docs/audit.md, example in config/flowmap.example.yaml).
    pub map: PathBuf,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Loaded cost of one hour of manual work (overrides assumptions.hourly_rate; default 35).
    #[arg(long)]
    pub hourly_rate: Option<f64>,
    /// Cost of one hour of setup work (overrides assumptions.setup_hourly_rate).
    #[arg(long)]
    pub setup_hourly_rate: Option<f64>,
    /// Weeks of re-keying counted per month (overrides assumptions.weeks_per_month; default
    /// 4.333, a calendar month; 1 counts one week's re-keying as the month's figure).
    #[arg(long)]
    pub weeks_per_month: Option<f64>,
    /// Override one scorecard weight, e.g. `--weight time_saved=40`; all must add up to 100.
    #[arg(long = "weight", value_name = "CRITERION=PERCENT")]
    pub weights: Vec<String>,
    /// How many pilots to pick.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub pilots: u8,
    /// Write a starter config for the pilots (default switchyard.yaml) and its contract checklist.
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true,
          default_missing_value = "switchyard.yaml")]
    pub emit_config: Option<PathBuf>,
    /// Let --emit-config replace existing files.
    #[arg(long, requires = "emit_config")]
    pub force: bool,
    /// Put measured volumes and value from monitor's admin API beside the estimates.
    #[arg(long)]
    pub actual: bool,
    /// Where monitor's admin API is, for --actual.
    #[command(flatten)]
    pub admin: crate::admin::AdminArgs,
}

/// Writes report text to stdout (the CLI's output, not a log line).
fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Combines the map's assumptions with the command-line overrides.
pub fn settings(map: &FlowMap, args: &AuditArgs) -> anyhow::Result<Settings> {
    let a = &map.assumptions;
    let mut weights = a.weights;
    for spec in &args.weights {
        let (name, value) = spec
            .split_once('=')
            .with_context(|| format!("--weight {spec:?}: write CRITERION=PERCENT"))?;
        let percent: f64 = value
            .trim()
            .parse()
            .with_context(|| format!("--weight {spec:?}: {value:?} is not a number"))?;
        weights
            .set(name.trim(), percent)
            .map_err(|e| anyhow::anyhow!("--weight {spec:?}: {e}"))?;
    }
    if let Some(problem) = weights.problem() {
        bail!("--weight: {problem}");
    }
    let hourly_rate = args.hourly_rate.unwrap_or(a.hourly_rate);
    let setup_hourly_rate = args
        .setup_hourly_rate
        .or(a.setup_hourly_rate)
        .unwrap_or(hourly_rate);
    let weeks_per_month = args.weeks_per_month.unwrap_or(a.weeks_per_month);
    for (flag, value) in [
        ("--hourly-rate", hourly_rate),
        ("--setup-hourly-rate", setup_hourly_rate),
        ("--weeks-per-month", weeks_per_month),
    ] {
        if !value.is_finite() || value <= 0.0 {
            bail!("{flag}: {value} must be more than 0");
        }
    }
    Ok(Settings {
        hourly_rate,
        setup_hourly_rate,
        weeks_per_month,
        weights,
        pilots: usize::from(args.pilots),
    })
}

/// Runs the audit command.
pub async fn run(args: &AuditArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.map)
        .with_context(|| format!("cannot read flow map {}", args.map.display()))?;
    let name = args.map.display().to_string();
    let map = FlowMap::parse(&text, &name)?;
    let settings = settings(&map, args)?;
    let audit = analysis::analyse(&map, &settings);
    if args.actual {
        let mut text = report::render(&audit);
        text.push('\n');
        text.push_str(&actual::render(&audit, &args.admin).await?);
        return print(&text);
    }
    if let Some(path) = &args.emit_config {
        return write_config(&map, &audit, &name, path, args.force);
    }
    if args.json {
        print(&serde_json::to_string_pretty(&audit)?)
    } else {
        print(&report::render(&audit))
    }
}

/// Where the checklist goes: beside the config, `<stem>.contracts.md`.
pub fn checklist_path(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map_or_else(|| "switchyard".into(), |s| s.to_string_lossy().into_owned());
    config.with_file_name(format!("{stem}.contracts.md"))
}

fn write_config(
    map: &FlowMap,
    audit: &analysis::Audit,
    map_name: &str,
    path: &Path,
    force: bool,
) -> anyhow::Result<()> {
    if audit.pilots.is_empty() {
        bail!("no flow saves time, so there is no pilot to write a config for");
    }
    let emitted = emit::emit(map, audit, map_name);
    // The emitted file must load in the product itself; a failure here is a bug in the emitter.
    emit::check(&emitted).context("the generated config does not pass Switchyard's validation")?;
    let checklist = checklist_path(path);
    for target in [path, checklist.as_path()] {
        if target.exists() && !force {
            bail!("{} exists; pass --force to replace it", target.display());
        }
    }
    std::fs::write(path, &emitted.config)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::write(&checklist, &emitted.checklist)
        .with_context(|| format!("cannot write {}", checklist.display()))?;
    print(&format!(
        "wrote {} ({} sources, {} destinations, {} flows for pilots: {})\nwrote {} (data-contract checklist)\nset these secrets before `switchyard check-config -c {}`: {}",
        path.display(),
        emitted.sources,
        emitted.destinations,
        emitted.flows,
        audit.pilots.join(", "),
        checklist.display(),
        path.display(),
        emitted.secret_envs.join(", ")
    ))
}
