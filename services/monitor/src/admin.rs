//! The admin gRPC API (tonic) behind the `switchyard` CLI: flows, flow health, dead letters and
//! their replay, identity conflicts and manual merges, alerts, the audit log. Bearer tokens carry one of
//! two roles: read-only and operator; every operator action is written to the audit log before it
//! is carried out.

use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;
use switchyard_chassis::async_nats::jetstream;
use switchyard_chassis::bus::{Bus, StreamKind};
use switchyard_chassis::config::FlowConfig;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::Message as _;
use switchyard_proto::v1::admin_server::Admin;
use switchyard_proto::v1::{
    AuditEntry, DeadLetter, DeadLetterSummary, Flow, FlowHealth, GetFlowHealthRequest,
    IdentityCommand, IdentityCommandKind, IdentityCommandReply, ListAlertsRequest,
    ListAlertsResponse, ListAuditRequest, ListAuditResponse, ListConflictsRequest,
    ListConflictsResponse, ListDeadLettersRequest, ListDeadLettersResponse, ListFlowsRequest,
    ListFlowsResponse, MergeGoldenRequest, ReplayDeadLetterRequest, ReplayDeadLetterResponse,
    UnmergeGoldenRequest,
};
use tonic::{Request, Response, Status};

use crate::{alerts, identity};

/// How long a merge or un-merge call waits for dedupe's result before answering "pending".
const COMMAND_WAIT: Duration = Duration::from_secs(5);

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Read,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Operator => "operator",
        }
    }
}

/// Every way an admin call fails, turned into a gRPC status in one place.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("a bearer token is required")]
    Unauthenticated,
    #[error("this action needs the operator role")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unavailable(String),
}

impl From<AdminError> for Status {
    fn from(error: AdminError) -> Self {
        match &error {
            AdminError::Unauthenticated => Status::unauthenticated(error.to_string()),
            AdminError::Forbidden => Status::permission_denied(error.to_string()),
            AdminError::NotFound(_) => Status::not_found(error.to_string()),
            AdminError::InvalidArgument(_) => Status::invalid_argument(error.to_string()),
            AdminError::Unavailable(_) => Status::unavailable(error.to_string()),
        }
    }
}

/// Checks the bearer token and records the caller's role on the request.
#[derive(Clone)]
pub struct Auth {
    read: Option<SecretString>,
    operator: Option<SecretString>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth([REDACTED])")
    }
}

impl Auth {
    pub fn new(read: Option<SecretString>, operator: Option<SecretString>) -> Self {
        Self { read, operator }
    }

    /// The role a token carries, if it is one of the configured tokens (constant-time compare).
    pub fn role_of(&self, given: &str) -> Option<Role> {
        // No configured token means no access of that kind: the safe default.
        if Self::matches(&self.operator, given) {
            Some(Role::Operator)
        } else if Self::matches(&self.read, given) {
            Some(Role::Read)
        } else {
            None
        }
    }

    fn matches(expected: &Option<SecretString>, given: &str) -> bool {
        expected.as_ref().is_some_and(|token| {
            bool::from(token.expose_secret().as_bytes().ct_eq(given.as_bytes()))
        })
    }
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AdminError::Unauthenticated)?
            .to_owned();
        let role = self.role_of(&given).ok_or(AdminError::Unauthenticated)?;
        request.extensions_mut().insert(role);
        Ok(request)
    }
}

fn role<T>(request: &Request<T>) -> Result<Role, AdminError> {
    request
        .extensions()
        .get::<Role>()
        .copied()
        .ok_or(AdminError::Unauthenticated)
}

/// A field the call cannot do without, trimmed.
fn required<'a>(name: &str, value: &'a str) -> Result<&'a str, AdminError> {
    match value.trim() {
        "" => Err(AdminError::InvalidArgument(format!("{name} is required"))),
        value => Ok(value),
    }
}

/// The admin service.
#[derive(Debug, Clone)]
pub struct AdminService {
    pub bus: Bus,
    pub pool: Pool,
    pub flows: Vec<FlowConfig>,
}

impl AdminService {
    async fn client(&self) -> Result<switchyard_chassis::deadpool_postgres::Object, AdminError> {
        self.pool
            .get()
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))
    }

    async fn audit(
        &self,
        role: Role,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), AdminError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO audit_log (role, action, target, detail) VALUES ($1, $2, $3, $4)",
                &[&role.as_str(), &action, &target, &detail],
            )
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        Ok(())
    }

    /// Sends an identity command to dedupe (on the canonical stream, see
    /// `Names::identity_command`) and waits a few seconds for its result.
    async fn send_command(
        &self,
        command: IdentityCommand,
    ) -> Result<IdentityCommandReply, AdminError> {
        self.bus
            .publish(
                self.bus.names().identity_command(),
                &format!("command:{}", command.command_id),
                Default::default(),
                command.encode_to_vec().into(),
            )
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        let result = identity::wait_for_result(&self.pool, &command.command_id, COMMAND_WAIT)
            .await
            .map_err(AdminError::Unavailable)?;
        Ok(IdentityCommandReply {
            command_id: command.command_id,
            pending: result.is_none(),
            result,
        })
    }

    async fn dead_letters(
        &self,
        stage: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetterSummary>, AdminError> {
        let js = jetstream::new(self.bus.client().clone());
        let mut stream = js
            .get_stream(self.bus.names().stream(StreamKind::Dlq))
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        let state = stream
            .info()
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?
            .state
            .clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return Ok(out);
        }
        for sequence in state.first_sequence..=state.last_sequence {
            if out.len() >= limit {
                break;
            }
            let Ok(stored) = stream.get_raw_message(sequence).await else {
                continue;
            };
            let Ok(letter) = DeadLetter::decode(stored.payload.as_ref()) else {
                continue;
            };
            if (!stage.is_empty() && letter.stage != stage)
                || (!key.is_empty() && letter.key != key)
            {
                continue;
            }
            out.push(DeadLetterSummary {
                sequence,
                stage: letter.stage,
                key: letter.key,
                reason: letter.reason,
                attempts: letter.attempts,
                failed_at: letter.failed_at,
                http_status: letter.http_status,
                original_subject: letter.original_subject,
            });
        }
        Ok(out)
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_flows(
        &self,
        request: Request<ListFlowsRequest>,
    ) -> Result<Response<ListFlowsResponse>, Status> {
        role(&request)?;
        let flows = self
            .flows
            .iter()
            .map(|f| Flow {
                name: f.name.clone(),
                object: f.object.as_str().to_owned(),
                destination: f.destination.clone(),
                paused: false,
            })
            .collect();
        Ok(Response::new(ListFlowsResponse { flows }))
    }

    async fn get_flow_health(
        &self,
        request: Request<GetFlowHealthRequest>,
    ) -> Result<Response<FlowHealth>, Status> {
        role(&request)?;
        let flow = request.into_inner().flow;
        if !self.flows.iter().any(|f| f.name == flow) {
            return Err(AdminError::NotFound(format!("flow {flow:?}")).into());
        }
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT outcome, count FROM flow_counts WHERE flow = $1",
                &[&flow],
            )
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        let count = |outcome: &str| {
            rows.iter()
                .find(|r| r.get::<_, String>(0) == outcome)
                .map_or(0, |r| u64::try_from(r.get::<_, i64>(1)).unwrap_or(0))
        };
        let last: Option<SystemTime> = client
            .query_opt(
                "SELECT last_delivered_at FROM flow_freshness WHERE flow = $1",
                &[&flow],
            )
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?
            .map(|r| r.get(0));
        Ok(Response::new(FlowHealth {
            flow,
            received: count("received"),
            delivered: count("delivered"),
            failed: count("failed"),
            dead_lettered: count("dead_lettered"),
            last_delivered_at: last.map(switchyard_proto::timestamp),
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        role(&request)?;
        let query = request.into_inner();
        let limit = match query.limit {
            0 => 100,
            n => usize::try_from(n).unwrap_or(1000).min(1000),
        };
        let dead_letters = self.dead_letters(&query.stage, &query.key, limit).await?;
        Ok(Response::new(ListDeadLettersResponse { dead_letters }))
    }

    async fn replay_dead_letter(
        &self,
        request: Request<ReplayDeadLetterRequest>,
    ) -> Result<Response<ReplayDeadLetterResponse>, Status> {
        if role(&request)? != Role::Operator {
            return Err(AdminError::Forbidden.into());
        }
        let sequence = request.into_inner().sequence;
        // Written first: an action that cannot be audited is not taken.
        self.audit(Role::Operator, "dlq.replay", &format!("dlq:{sequence}"), "")
            .await?;
        let subject = switchyard_chassis::bus::replay_dead_letter(
            self.bus.client(),
            self.bus.names(),
            sequence,
        )
        .await
        .map_err(|e| AdminError::NotFound(format!("dead letter {sequence} ({e})")))?;
        Ok(Response::new(ReplayDeadLetterResponse {
            replayed: true,
            subject,
        }))
    }

    async fn list_conflicts(
        &self,
        request: Request<ListConflictsRequest>,
    ) -> Result<Response<ListConflictsResponse>, Status> {
        role(&request)?;
        let query = request.into_inner();
        let limit = i64::from(match query.limit {
            0 => 100,
            n => n.min(1000),
        });
        let conflicts =
            identity::list_conflicts(&self.pool, query.object.trim(), query.open_only, limit)
                .await
                .map_err(AdminError::Unavailable)?;
        Ok(Response::new(ListConflictsResponse { conflicts }))
    }

    async fn merge_golden(
        &self,
        request: Request<MergeGoldenRequest>,
    ) -> Result<Response<IdentityCommandReply>, Status> {
        let role = role(&request)?;
        if role != Role::Operator {
            return Err(AdminError::Forbidden.into());
        }
        let asked = request.into_inner();
        let (object, survivor, merged) = (
            required("object", &asked.object)?,
            required("survivor", &asked.survivor)?,
            required("merged", &asked.merged)?,
        );
        let command = IdentityCommand {
            command_id: uuid::Uuid::now_v7().to_string(),
            object: object.to_owned(),
            survivor: survivor.to_owned(),
            merged: merged.to_owned(),
            actor: role.as_str().to_owned(),
            reason: asked.reason,
            kind: IdentityCommandKind::Merge.into(),
            merge_command_id: String::new(),
        };
        // Written first: an action that cannot be audited is not taken.
        self.audit(
            role,
            "identity.merge",
            &format!("{object}:{merged}->{survivor}"),
            &format!("command {}: {}", command.command_id, command.reason),
        )
        .await?;
        Ok(Response::new(self.send_command(command).await?))
    }

    async fn unmerge_golden(
        &self,
        request: Request<UnmergeGoldenRequest>,
    ) -> Result<Response<IdentityCommandReply>, Status> {
        let role = role(&request)?;
        if role != Role::Operator {
            return Err(AdminError::Forbidden.into());
        }
        let asked = request.into_inner();
        let merge_command_id = asked.command_id.trim().to_owned();
        let target = if merge_command_id.is_empty() {
            let pair = (
                required("object (or command_id)", &asked.object)?,
                required("survivor (or command_id)", &asked.survivor)?,
                required("merged (or command_id)", &asked.merged)?,
            );
            format!("{}:{}->{}", pair.0, pair.2, pair.1)
        } else {
            format!("merge:{merge_command_id}")
        };
        let command = IdentityCommand {
            command_id: uuid::Uuid::now_v7().to_string(),
            object: asked.object.trim().to_owned(),
            survivor: asked.survivor.trim().to_owned(),
            merged: asked.merged.trim().to_owned(),
            actor: role.as_str().to_owned(),
            reason: asked.reason,
            kind: IdentityCommandKind::Unmerge.into(),
            merge_command_id,
        };
        self.audit(
            role,
            "identity.unmerge",
            &target,
            &format!("command {}: {}", command.command_id, command.reason),
        )
        .await?;
        Ok(Response::new(self.send_command(command).await?))
    }

    async fn list_alerts(
        &self,
        request: Request<ListAlertsRequest>,
    ) -> Result<Response<ListAlertsResponse>, Status> {
        role(&request)?;
        let query = request.into_inner();
        let limit = i64::from(match query.limit {
            0 => 100,
            n => n.min(1000),
        });
        let alerts = alerts::list(&self.pool, query.open_only, limit)
            .await
            .map_err(AdminError::Unavailable)?;
        Ok(Response::new(ListAlertsResponse { alerts }))
    }

    async fn list_audit(
        &self,
        request: Request<ListAuditRequest>,
    ) -> Result<Response<ListAuditResponse>, Status> {
        role(&request)?;
        let limit = i64::from(match request.into_inner().limit {
            0 => 100,
            n => n.min(1000),
        });
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT at, role, action, target, detail FROM audit_log ORDER BY id DESC LIMIT $1",
                &[&limit],
            )
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        let entries = rows
            .iter()
            .map(|r| AuditEntry {
                at: Some(switchyard_proto::timestamp(r.get::<_, SystemTime>(0))),
                role: r.get(1),
                action: r.get(2),
                target: r.get(3),
                detail: r.get(4),
            })
            .collect();
        Ok(Response::new(ListAuditResponse { entries }))
    }
}
