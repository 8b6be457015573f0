//! What a run measured and how it is printed: one result line per run, in the format that
//! `scripts/bench.sh` and `scripts/chaos.sh` parse.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

#[derive(Debug, Default)]
pub struct Tally {
    pub statuses: BTreeMap<u16, u64>,
    pub errors: u64,
    /// Record ids of the webhooks ingest accepted (2xx): the sender's side of the ledger.
    pub accepted: std::collections::HashSet<String>,
}

pub fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Prints a run's result line: what was offered and sent, what ingest accepted and how fast,
/// its answers by status, transport errors and the latency of the accepted requests.
pub fn result(
    label: &str,
    rate: u64,
    sent: u64,
    elapsed: f64,
    tally: &Tally,
    histogram: &Histogram<u64>,
) {
    let ok: u64 = tally
        .statuses
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let accepted_rate = ok as f64 / elapsed;
    say(&format!(
        "{label}: offered={} sent={sent} accepted={ok} ({accepted_rate:.0}/s) statuses={:?} errors={} latency_ms p50={:.2} p90={:.2} p99={:.2} p99.9={:.2} max={:.2}",
        if rate == 0 {
            "max".to_owned()
        } else {
            format!("{rate}/s")
        },
        tally.statuses,
        tally.errors,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0,
    ));
}

/// Prints how often a sender honouring `Retry-After` was told to hold its sends.
pub fn held(label: &str, told: u64) {
    say(&format!(
        "{label}: told to retry later {told} times; every send held for the Retry-After given"
    ));
}
