//! Status reports for monitor's alerts (`FlowStatus` on `<prefix>.ops.status.<key>`): a flow
//! paused or resumed, and a destination's OAuth2 credentials failing, expiring or fine again.
//! Reports are queued and published by one task, so the code that notices a change (a flow's
//! handler, the token manager under its lock) never waits on the bus.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use prost::Message as _;
use switchyard_chassis::CancellationToken;
use switchyard_chassis::bus::Bus;
use switchyard_chassis::oauth::{RefreshObserver, RefreshOutcome, TokenError};
use switchyard_proto::v1::{FlowStatus, FlowStatusKind};
use tokio::sync::mpsc;

/// Consecutive transient refresh failures (token endpoint down, timeouts) before the credentials
/// are reported failing; a refusal (invalid_grant, any 4xx) is reported at once.
const FAILING_AFTER: u32 = 3;
/// A refresh token that expires sooner than this is reported as expiring.
const EXPIRING_WITHIN: Duration = Duration::from_secs(14 * 24 * 3600);
/// Tries to publish one report before it is given up (logged): the next change of state, or
/// deliver's start-up for pauses, reports again.
const PUBLISH_TRIES: u32 = 20;

/// Queues status reports; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    queue: mpsc::UnboundedSender<FlowStatus>,
}

impl Reporter {
    /// The reporter and its publishing task, which stops at `shutdown`.
    pub fn start(bus: Bus, shutdown: CancellationToken) -> Self {
        let (queue, mut reports) = mpsc::unbounded_channel::<FlowStatus>();
        tokio::spawn(async move {
            loop {
                let status = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = reports.recv() => match next {
                        Some(status) => status,
                        None => return,
                    },
                };
                publish(&bus, &status, &shutdown).await;
            }
        });
        Self { queue }
    }

    fn send(&self, status: FlowStatus) {
        if self.queue.send(status).is_err() {
            tracing::warn!("status report not queued: deliver is stopping");
        }
    }

    /// `flow` is paused (since `at`): its destination answered 410.
    pub fn paused(&self, flow: &str, destination: &str, reason: &str, at: SystemTime) {
        self.send(FlowStatus {
            flow: flow.to_owned(),
            destination: destination.to_owned(),
            kind: FlowStatusKind::Paused.into(),
            reason: reason.to_owned(),
            at: Some(switchyard_proto::timestamp(at)),
            credentials_expire_at: None,
        });
    }

    /// `flow` was resumed by the operator command issued at `at`.
    pub fn resumed(&self, flow: &str, destination: &str, at: SystemTime) {
        self.send(FlowStatus {
            flow: flow.to_owned(),
            destination: destination.to_owned(),
            kind: FlowStatusKind::Resumed.into(),
            reason: String::new(),
            at: Some(switchyard_proto::timestamp(at)),
            credentials_expire_at: None,
        });
    }

    fn credentials(
        &self,
        destination: &str,
        kind: FlowStatusKind,
        reason: String,
        expire_at: Option<SystemTime>,
    ) {
        self.send(FlowStatus {
            flow: String::new(),
            destination: destination.to_owned(),
            kind: kind.into(),
            reason,
            at: Some(switchyard_proto::timestamp(SystemTime::now())),
            credentials_expire_at: expire_at.map(switchyard_proto::timestamp),
        });
    }
}

async fn publish(bus: &Bus, status: &FlowStatus, shutdown: &CancellationToken) {
    let key = if status.flow.is_empty() {
        &status.destination
    } else {
        &status.flow
    };
    let at = status.at.map_or(0, |t| {
        i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
    });
    // The same report published twice (a retry after a lost ack) is stored once.
    let msg_id = format!("status:{key}:{}:{at}", status.kind);
    let payload = Bytes::from(status.encode_to_vec());
    let mut delay = Duration::from_millis(200);
    for _ in 0..PUBLISH_TRIES {
        match bus
            .publish(
                bus.names().ops_status(key),
                &msg_id,
                Default::default(),
                payload.clone(),
            )
            .await
        {
            Ok(_) => return,
            Err(error) => tracing::warn!(%error, "status report not published; will retry"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    tracing::error!(kind = status.kind, "status report given up");
}

/// What was last reported of a destination's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credentials {
    Unknown,
    Ok,
    Failing,
    Expiring,
}

/// Watches one destination's token refreshes and reports when its credentials change state.
#[derive(Debug)]
pub(crate) struct CredentialWatch {
    destination: String,
    reporter: Reporter,
    state: Mutex<Credentials>,
}

impl CredentialWatch {
    pub fn new(destination: &str, reporter: Reporter) -> Self {
        Self {
            destination: destination.to_owned(),
            reporter,
            state: Mutex::new(Credentials::Unknown),
        }
    }

    /// The state `outcome` leads to from `now`, and the reason and expiry to report with it.
    fn next(
        now: Credentials,
        outcome: &RefreshOutcome,
    ) -> Option<(Credentials, String, Option<Duration>)> {
        match outcome {
            RefreshOutcome::Refreshed {
                refresh_expires_in: Some(left),
            } if *left < EXPIRING_WITHIN => Some((
                Credentials::Expiring,
                format!(
                    "the refresh token expires in {} days",
                    left.as_secs() / 86_400
                ),
                Some(*left),
            )),
            // No word on expiry (most vendors; or a token another replica refreshed): an expiry
            // reported earlier still stands.
            RefreshOutcome::Refreshed {
                refresh_expires_in: None,
            } if now == Credentials::Expiring => None,
            RefreshOutcome::Refreshed { .. } => {
                Some((Credentials::Ok, "token refreshed".to_owned(), None))
            }
            RefreshOutcome::Failed {
                error: TokenError::Permanent(reason),
                ..
            } => Some((Credentials::Failing, reason.clone(), None)),
            RefreshOutcome::Failed {
                error: TokenError::Transient { reason, .. },
                consecutive,
            } if *consecutive >= FAILING_AFTER => Some((
                Credentials::Failing,
                format!("{consecutive} refreshes in a row failed: {reason}"),
                None,
            )),
            RefreshOutcome::Failed { .. } => None,
        }
    }
}

impl RefreshObserver for CredentialWatch {
    fn refreshed(&self, _owner: &str, outcome: &RefreshOutcome) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((next, reason, left)) = Self::next(*state, outcome) else {
            return;
        };
        // Expiring is reported on every refresh, the days left shrinking; the others on change.
        if next == *state && next != Credentials::Expiring {
            return;
        }
        *state = next;
        let kind = match next {
            Credentials::Ok | Credentials::Unknown => FlowStatusKind::CredentialsOk,
            Credentials::Failing => FlowStatusKind::CredentialsFailing,
            Credentials::Expiring => FlowStatusKind::CredentialsExpiring,
        };
        let expire_at = left.map(|left| SystemTime::now() + left);
        self.reporter
            .credentials(&self.destination, kind, reason, expire_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(error: TokenError, consecutive: u32) -> RefreshOutcome {
        RefreshOutcome::Failed { error, consecutive }
    }

    fn transient() -> TokenError {
        TokenError::Transient {
            reason: "token refresh: 503".to_owned(),
            retry_after: None,
        }
    }

    #[test]
    fn refusals_fail_at_once_and_outages_after_a_few_tries() {
        use Credentials as C;
        let refused = failed(TokenError::Permanent("invalid_grant".to_owned()), 1);
        assert_eq!(
            CredentialWatch::next(C::Ok, &refused).map(|n| n.0),
            Some(C::Failing)
        );
        assert_eq!(CredentialWatch::next(C::Ok, &failed(transient(), 2)), None);
        assert_eq!(
            CredentialWatch::next(C::Ok, &failed(transient(), 3)).map(|n| n.0),
            Some(C::Failing)
        );
    }

    #[test]
    fn expiry_within_two_weeks_is_reported_and_outlives_refreshes_that_do_not_say() {
        use Credentials as C;
        let soon = RefreshOutcome::Refreshed {
            refresh_expires_in: Some(Duration::from_secs(3 * 86_400)),
        };
        let (state, reason, left) = CredentialWatch::next(C::Ok, &soon).expect("expiring");
        assert_eq!(state, C::Expiring);
        assert!(reason.contains("3 days"), "{reason}");
        assert_eq!(left, Some(Duration::from_secs(3 * 86_400)));
        let silent = RefreshOutcome::Refreshed {
            refresh_expires_in: None,
        };
        assert_eq!(CredentialWatch::next(C::Expiring, &silent), None);
        assert_eq!(
            CredentialWatch::next(C::Failing, &silent).map(|n| n.0),
            Some(C::Ok)
        );
        let later = RefreshOutcome::Refreshed {
            refresh_expires_in: Some(Duration::from_secs(100 * 86_400)),
        };
        assert_eq!(
            CredentialWatch::next(C::Expiring, &later).map(|n| n.0),
            Some(C::Ok)
        );
    }
}
