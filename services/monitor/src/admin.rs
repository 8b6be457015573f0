//! The admin gRPC API (tonic) behind the `switchyard` CLI: flows, flow health, dead letters and
//! their replay (one, or every one matching a filter), data contracts, identity conflicts and manual merges, alerts, the audit log. Bearer tokens carry one of
//! two roles: read-only and operator; every operator action is written to the audit log before it
//! is carried out.

use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;
use switchyard_chassis::bus::{Bus, DeadLetterFilter, ErrorClass};
use switchyard_chassis::config::FlowConfig;
use switchyard_chassis::deadpool_postgres::Pool;
use switchyard_proto::Message as _;
use switchyard_proto::v1::admin_server::Admin;
use switchyard_proto::v1::{
    Conflict, FlowCommand, FlowCommandKind, KeepApartRequest, ResumeFlowRequest, ResumeFlowResponse,
};
use switchyard_proto::v1::{
    ContractInfo, DeadLetter, DeadLetterDetail, DeadLetterSummary, Flow, FlowHealth,
    GetDeadLetterRequest, GetFlowHealthRequest, IdentityCommand, IdentityCommandKind,
    IdentityCommandReply, ListAlertsRequest, ListAlertsResponse, ListAuditRequest,
    ListAuditResponse, ListConflictsRequest, ListConflictsResponse, ListContractsRequest,
    ListContractsResponse, ListDeadLettersRequest, ListDeadLettersResponse, ListFlowsRequest,
    ListFlowsResponse, MergeGoldenRequest, ReplayDeadLetterRequest, ReplayDeadLetterResponse,
    ReplayDeadLettersRequest, ReplayDeadLettersResponse, UnmergeGoldenRequest,
};
use tonic::{Request, Response, Status};

use crate::store::conflicts as identity;
use crate::store::{self, StoreError, audit};

/// How long a merge or un-merge call waits for dedupe's result before answering "pending".
const COMMAND_WAIT: Duration = Duration::from_secs(5);

/// Dead letters per page of `ListDeadLetters` unless the caller asks for another size.
const DLQ_PAGE: usize = 100;
/// The most dead letters one page may hold.
const DLQ_PAGE_MAX: usize = 1000;

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
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AdminError> for Status {
    fn from(error: AdminError) -> Self {
        match &error {
            AdminError::Unauthenticated => Status::unauthenticated(error.to_string()),
            AdminError::Forbidden => Status::permission_denied(error.to_string()),
            AdminError::NotFound(_) => Status::not_found(error.to_string()),
            AdminError::InvalidArgument(_) => Status::invalid_argument(error.to_string()),
            AdminError::Unavailable(_) | AdminError::Store(_) => {
                Status::unavailable(error.to_string())
            }
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
    /// The user's own contract files (beside the built-in ones), as transform loads them.
    pub contracts_dir: Option<std::path::PathBuf>,
}

/// A store failure as the audit and flow-health calls report it: `UNAVAILABLE`, in the
/// database's own words.
fn unavailable(error: StoreError) -> AdminError {
    AdminError::Unavailable(error.cause())
}

impl AdminService {
    async fn audit(
        &self,
        role: Role,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), AdminError> {
        audit::record(&self.pool, role.as_str(), action, target, detail)
            .await
            .map_err(unavailable)
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
                &switchyard_chassis::ids::MsgId::Command {
                    command_id: &command.command_id,
                }
                .to_string(),
                Default::default(),
                command.encode_to_vec().into(),
            )
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        let result = identity::wait_for_result(&self.pool, &command.command_id, COMMAND_WAIT)
            .await
            .map_err(AdminError::from)?;
        Ok(IdentityCommandReply {
            command_id: command.command_id,
            pending: result.is_none(),
            result,
        })
    }

    /// Writes an audit entry and returns its id, so the outcome can be added once known.
    async fn audit_started(
        &self,
        role: Role,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<i64, AdminError> {
        audit::record_started(&self.pool, role.as_str(), action, target, detail)
            .await
            .map_err(unavailable)
    }

    async fn audit_outcome(&self, id: i64, detail: &str) -> Result<(), AdminError> {
        audit::set_detail(&self.pool, id, detail)
            .await
            .map_err(unavailable)
    }
}

/// A dead-letter filter from a request's fields; an unknown error class is refused rather than
/// matching nothing.
fn dead_letter_filter(
    stage: &str,
    key: &str,
    destination: &str,
    error_class: &str,
    since: Option<switchyard_proto::Timestamp>,
    until: Option<switchyard_proto::Timestamp>,
) -> Result<DeadLetterFilter, AdminError> {
    let error_class = error_class.trim();
    if !error_class.is_empty() && ErrorClass::parse(error_class).is_none() {
        let known: Vec<_> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
        return Err(AdminError::InvalidArgument(format!(
            "unknown error class {error_class:?} (one of {})",
            known.join(", ")
        )));
    }
    let time = |name: &str, t: Option<switchyard_proto::Timestamp>| {
        t.map(|t| {
            SystemTime::try_from(t)
                .map_err(|_| AdminError::InvalidArgument(format!("{name} is not a valid time")))
        })
        .transpose()
    };
    Ok(DeadLetterFilter {
        stage: stage.trim().to_owned(),
        key: key.trim().to_owned(),
        destination: destination.trim().to_owned(),
        error_class: error_class.to_owned(),
        since: time("since", since)?,
        until: time("until", until)?,
    })
}

/// The filter in words, for the audit log.
fn describe(filter: &DeadLetterFilter) -> String {
    let at = |t: Option<SystemTime>| {
        t.and_then(|t| {
            time::OffsetDateTime::from(t)
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
    };
    let mut parts = Vec::new();
    for (name, value) in [
        ("stage", filter.stage.clone()),
        ("key", filter.key.clone()),
        ("destination", filter.destination.clone()),
        ("error_class", filter.error_class.clone()),
        ("since", at(filter.since)),
        ("until", at(filter.until)),
    ] {
        if !value.is_empty() {
            parts.push(format!("{name}={value}"));
        }
    }
    parts.join(" ")
}

fn summary(sequence: u64, letter: &DeadLetter) -> DeadLetterSummary {
    DeadLetterSummary {
        sequence,
        stage: letter.stage.clone(),
        key: letter.key.clone(),
        reason: letter.reason.clone(),
        attempts: letter.attempts,
        failed_at: letter.failed_at,
        http_status: letter.http_status,
        original_subject: letter.original_subject.clone(),
        destination: letter.destination.clone(),
        error_class: letter.error_class.clone(),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_flows(
        &self,
        request: Request<ListFlowsRequest>,
    ) -> Result<Response<ListFlowsResponse>, Status> {
        role(&request)?;
        // As deliver last reported (a paused flow raises the `flow_paused` alert).
        let paused = store::status::paused_flows(&self.pool)
            .await
            .map_err(AdminError::from)?;
        let flows = self
            .flows
            .iter()
            .map(|f| Flow {
                name: f.name.clone(),
                object: f.object.as_str().to_owned(),
                destination: f.destination.clone(),
                paused: paused.contains(&f.name),
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
        let health = store::reports::flow_health(&self.pool, flow)
            .await
            .map_err(unavailable)?;
        Ok(Response::new(health))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        role(&request)?;
        let query = request.into_inner();
        let limit = match query.limit {
            0 => DLQ_PAGE,
            n => usize::try_from(n).unwrap_or(DLQ_PAGE_MAX).min(DLQ_PAGE_MAX),
        };
        let filter = dead_letter_filter(
            &query.stage,
            &query.key,
            &query.destination,
            &query.error_class,
            query.since,
            query.until,
        )?;
        let (letters, next) = switchyard_chassis::bus::dead_letters_page(
            self.bus.client(),
            self.bus.names(),
            &filter,
            query.after_sequence,
            limit,
        )
        .await
        .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters: letters.iter().map(|(seq, l)| summary(*seq, l)).collect(),
            next_after_sequence: next.unwrap_or(0),
        }))
    }

    async fn get_dead_letter(
        &self,
        request: Request<GetDeadLetterRequest>,
    ) -> Result<Response<DeadLetterDetail>, Status> {
        let role = role(&request)?;
        let sequence = request.into_inner().sequence;
        let letter =
            switchyard_chassis::bus::get_dead_letter(self.bus.client(), self.bus.names(), sequence)
                .await
                .map_err(|e| AdminError::NotFound(format!("dead letter {sequence} ({e})")))?;
        let (payload_type, mut payload_json) = crate::payload::render(&letter).unwrap_or_default();
        // The original message is a customer's record (emails, phones): operators, who may
        // replay it, see it; read-only tokens see its type and size.
        if role != Role::Operator {
            payload_json.clear();
        }
        Ok(Response::new(DeadLetterDetail {
            summary: Some(summary(sequence, &letter)),
            response_body: letter.response_body,
            original_headers: letter.original_headers,
            payload_type,
            payload_json,
            payload_size: u64::try_from(letter.payload.len()).unwrap_or(u64::MAX),
        }))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        if role(&request)? != Role::Operator {
            return Err(AdminError::Forbidden.into());
        }
        let asked = request.into_inner();
        let filter = dead_letter_filter(
            &asked.stage,
            &asked.key,
            &asked.destination,
            &asked.error_class,
            asked.since,
            asked.until,
        )?;
        // Replaying the whole DLQ at once is never what an operator means.
        if filter.stage.is_empty() && filter.key.is_empty() {
            return Err(AdminError::InvalidArgument(
                "name a flow (key) or a stage to replay".to_owned(),
            )
            .into());
        }
        let described = describe(&filter);
        // Written first: an action that cannot be audited is not taken. The count follows.
        let entry = self
            .audit_started(Role::Operator, "dlq.replay_matching", &described, "started")
            .await?;
        let done = switchyard_chassis::bus::replay_dead_letters(
            self.bus.client(),
            self.bus.names(),
            &filter,
        )
        .await;
        let detail = match &done {
            Ok(done) => format!(
                "matched {} replayed {} already replayed {}",
                done.matched, done.replayed, done.already_replayed
            ),
            Err(error) => format!("failed: {error}"),
        };
        self.audit_outcome(entry, &detail).await?;
        let done = done.map_err(|e| AdminError::Unavailable(e.to_string()))?;
        tracing::info!(filter = %described, matched = done.matched, replayed = done.replayed, "dead letters replayed");
        Ok(Response::new(ReplayDeadLettersResponse {
            matched: done.matched,
            replayed: done.replayed,
            already_replayed: done.already_replayed,
        }))
    }

    async fn list_contracts(
        &self,
        request: Request<ListContractsRequest>,
    ) -> Result<Response<ListContractsResponse>, Status> {
        role(&request)?;
        let loaded = switchyard_proto::contracts::load(self.contracts_dir.as_deref())
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        let contracts = loaded
            .iter()
            .map(|c| ContractInfo {
                object: c.object.clone(),
                version: c.version,
                owner: c.owner.clone(),
                system_of_record: c.system_of_record.clone(),
                field_count: u32::try_from(c.fields.len()).unwrap_or(u32::MAX),
            })
            .collect();
        Ok(Response::new(ListContractsResponse { contracts }))
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
        let filter = identity::ConflictFilter {
            object: query.object.trim(),
            kind: query.kind.trim(),
            open_only: query.open_only,
            before_id: query.before_id,
        };
        let (conflicts, next_before_id) = identity::list_conflicts(&self.pool, &filter, limit)
            .await
            .map_err(AdminError::from)?;
        Ok(Response::new(ListConflictsResponse {
            conflicts,
            next_before_id,
        }))
    }

    async fn keep_apart(
        &self,
        request: Request<KeepApartRequest>,
    ) -> Result<Response<Conflict>, Status> {
        let role = role(&request)?;
        if role != Role::Operator {
            return Err(AdminError::Forbidden.into());
        }
        let asked = request.into_inner();
        if asked.id == 0 {
            return Err(AdminError::InvalidArgument("id: required".to_owned()).into());
        }
        // Written first: an action that cannot be audited is not taken.
        self.audit(
            role,
            "identity.keep_apart",
            &format!("conflict:{}", asked.id),
            &asked.reason,
        )
        .await?;
        let by = format!("kept apart by {}: {}", role.as_str(), asked.reason);
        let conflict = identity::keep_apart(&self.pool, asked.id, &by)
            .await
            .map_err(AdminError::from)?
            .ok_or_else(|| AdminError::NotFound(format!("conflict {}", asked.id)))?;
        Ok(Response::new(conflict))
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
        let alerts = store::alerts::list(&self.pool, query.open_only, limit)
            .await
            .map_err(AdminError::from)?;
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
        let entries = audit::list(&self.pool, limit).await.map_err(unavailable)?;
        Ok(Response::new(ListAuditResponse { entries }))
    }

    async fn resume_flow(
        &self,
        request: Request<ResumeFlowRequest>,
    ) -> Result<Response<ResumeFlowResponse>, Status> {
        let role = role(&request)?;
        if role != Role::Operator {
            return Err(AdminError::Forbidden.into());
        }
        let asked = request.into_inner();
        let flow = required("flow", &asked.flow)?.to_owned();
        if !self.flows.iter().any(|f| f.name == flow) {
            return Err(AdminError::NotFound(format!("flow {flow:?}")).into());
        }
        let command = FlowCommand {
            command_id: uuid::Uuid::now_v7().to_string(),
            flow: flow.clone(),
            kind: FlowCommandKind::Resume.into(),
            actor: role.as_str().to_owned(),
            issued_at: Some(switchyard_proto::timestamp(SystemTime::now())),
        };
        // Written first: an action that cannot be audited is not taken.
        self.audit(
            role,
            "flow.resume",
            &format!("flow:{flow}"),
            &format!("command {}: {}", command.command_id, asked.reason),
        )
        .await?;
        // Deliver consumes it (durably: a deliver that is down resumes the flow when it starts)
        // and reports the flow resumed, which resolves the `flow_paused` alert.
        self.bus
            .publish(
                self.bus.names().ops_command("deliver"),
                &switchyard_chassis::ids::MsgId::Command {
                    command_id: &command.command_id,
                }
                .to_string(),
                Default::default(),
                command.encode_to_vec().into(),
            )
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        Ok(Response::new(ResumeFlowResponse {
            flow,
            command_id: command.command_id,
        }))
    }
}
