//! `switchyard contracts check` (the contract and mapping files, locally) and
//! `switchyard admin contracts` (the contracts in force, from monitor).

use std::path::PathBuf;

use clap::Subcommand;
use switchyard_proto::v1::ListContractsRequest;

use super::{Client, dash, request};
use crate::demo::say;

/// `switchyard contracts …`
#[derive(Debug, Subcommand)]
pub enum ContractsCommand {
    /// Validate every contract file, run its samples, and load every mapping against them.
    Check {
        /// Your own contracts (beside the built-in ones).
        #[arg(long)]
        contracts: Option<PathBuf>,
        /// Your own mappings (beside the built-in ones).
        #[arg(long)]
        mappings: Option<PathBuf>,
    },
}

pub fn contracts(command: ContractsCommand) -> anyhow::Result<()> {
    let ContractsCommand::Check {
        contracts,
        mappings,
    } = command;
    let loaded = switchyard_proto::contracts::load(contracts.as_deref())?;
    let mut failures = Vec::new();
    for contract in &loaded {
        let problems = contract.check_samples();
        say(&format!(
            "{} {:<12} {} samples{}",
            if problems.is_empty() { "ok  " } else { "FAIL" },
            contract.id(),
            contract.samples.len(),
            if problems.is_empty() {
                String::new()
            } else {
                format!(": {}", problems.join("; "))
            }
        ));
        failures.extend(problems);
    }
    let registry = switchyard_transform::mapping::Registry::load(mappings.as_deref(), &loaded)?;
    for mapping in registry.all() {
        say(&format!(
            "ok   mapping {} ({} → {})",
            mapping.name, mapping.source_kind, mapping.contract
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} contract sample(s) failed", failures.len())
    }
}

/// `admin contracts`: the data contracts in force.
pub(super) async fn list(client: &mut Client, token: &str) -> anyhow::Result<()> {
    let contracts = client
        .list_contracts(request(ListContractsRequest {}, token)?)
        .await?
        .into_inner()
        .contracts;
    say(&format!(
        "{:<12} {:<8} {:<16} {:<20} fields",
        "object", "version", "owner", "system of record"
    ));
    for c in contracts {
        say(&format!(
            "{:<12} {:<8} {:<16} {:<20} {}",
            c.object,
            format!("v{}", c.version),
            dash(&c.owner),
            dash(&c.system_of_record),
            c.field_count
        ));
    }
    Ok(())
}
