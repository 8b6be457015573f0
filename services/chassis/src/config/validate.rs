//! Every problem with a configuration at once, each naming its field path.

use std::collections::HashSet;

use super::*;

impl Config {
    /// Everything wrong with the configuration, each naming its field.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = self.monitor.alerts.problems();
        problems.extend(self.monitor.retention_problems(&self.nats));
        if !is_token(&self.prefix) {
            problems.push(format!(
                "prefix: {:?} must be 1-32 characters of a-z, 0-9, '-' or '_'",
                self.prefix
            ));
        }
        if self.nats.replicas == 0 || self.nats.replicas > 5 {
            problems.push("nats.replicas: must be between 1 and 5".to_owned());
        }
        if self.nats.publish_timeout.is_zero() {
            problems.push("nats.publish_timeout: must be greater than zero".to_owned());
        }
        if self.nats.password().is_some() && self.nats.user.is_none() {
            problems.push("nats.user: a NATS password is set but no user (NATS_USER)".to_owned());
        }
        if self.nats.user.is_some() && self.nats.creds_file.is_some() {
            problems.push(
                "nats.creds_file: use either a .creds file or a user and password, not both"
                    .to_owned(),
            );
        }
        if self.nats.tls.cert_file.is_some() != self.nats.tls.key_file.is_some() {
            problems.push(
                "nats.tls: cert_file and key_file go together (mutual TLS needs both)".to_owned(),
            );
        }
        if self.dedupe.default_region.len() != 2
            || !self
                .dedupe
                .default_region
                .bytes()
                .all(|b| b.is_ascii_uppercase())
        {
            problems.push(format!(
                "dedupe.default_region: {:?} must be an ISO 3166-1 alpha-2 code such as \"GB\"",
                self.dedupe.default_region
            ));
        }
        if self.ingest.max_body_bytes < 1024 {
            problems.push("ingest.max_body_bytes: must be at least 1024".to_owned());
        }
        if self.ingest.max_header_bytes < 1024 {
            problems.push("ingest.max_header_bytes: must be at least 1024".to_owned());
        }
        let mut names = HashSet::new();
        for (i, source) in self.sources.iter().enumerate() {
            if !is_token(&source.name) {
                problems.push(format!(
                    "sources[{i}].name: {:?} must be 1-32 characters of a-z, 0-9, '-' or '_'",
                    source.name
                ));
            }
            if !names.insert(source.name.as_str()) {
                problems.push(format!(
                    "sources[{i}].name: {:?} is used twice",
                    source.name
                ));
            }
            if source.secret_env.len() > 2
                || (source.secret_env.is_empty() && source.kind.needs_secret())
            {
                problems.push(format!(
                    "sources[{i}].secret_env: name one or two environment variables"
                ));
            }
            if let Some(api) = &source.api {
                problems.extend(api_problems(i, source.kind, api));
            }
            if source.kind == SourceKind::Salesforce
                && source
                    .organization_id
                    .as_deref()
                    .is_none_or(|id| id.len() != 15 && id.len() != 18)
            {
                problems.push(format!(
                    "sources[{i}].organization_id: a salesforce source needs its 15- or 18-character organisation id"
                ));
            }
        }
        let mut dest_names = HashSet::new();
        for (i, dest) in self.destinations.iter().enumerate() {
            if !is_token(&dest.name) {
                problems.push(format!(
                    "destinations[{i}].name: {:?} must be 1-32 characters of a-z, 0-9, '-' or '_'",
                    dest.name
                ));
            }
            if !dest_names.insert(dest.name.as_str()) {
                problems.push(format!(
                    "destinations[{i}].name: {:?} is used twice",
                    dest.name
                ));
            }
            if dest.rate_per_second == Some(0) || dest.burst == Some(0) {
                problems.push(format!(
                    "destinations[{i}].rate_per_second/burst: must be at least 1 when given"
                ));
            }
            if dest.circuit_breaker.failures == 0 || dest.circuit_breaker.cool_down.is_zero() {
                problems.push(format!(
                    "destinations[{i}].circuit_breaker: failures and cool_down must be more than 0"
                ));
            }
            problems.extend(destination_problems(i, dest, &names));
        }
        let mut flow_names = HashSet::new();
        for (i, flow) in self.flows.iter().enumerate() {
            if !is_token(&flow.name) {
                problems.push(format!(
                    "flows[{i}].name: {:?} must be 1-32 characters of a-z, 0-9, '-' or '_'",
                    flow.name
                ));
            }
            if !flow_names.insert(flow.name.as_str()) {
                problems.push(format!("flows[{i}].name: {:?} is used twice", flow.name));
            }
            if !dest_names.contains(flow.destination.as_str()) {
                problems.push(format!(
                    "flows[{i}].destination: no destination is named {:?}",
                    flow.destination
                ));
            }
            // Any field of the flow's object, as a dotted path (`total.currency`) or a contract
            // name (`marketing_consent`), resolved against the canonical message's descriptor.
            for (field, value) in &flow.when {
                match switchyard_proto::fields::resolve(flow.object.as_str(), field) {
                    Err(error) => {
                        problems.push(format!("flows[{i}].when.{field}: {error}"));
                    }
                    Ok(path) if !path.leaf.accepts(value) => problems.push(format!(
                        "flows[{i}].when.{field}: give {}, not {value}",
                        path.leaf.describe()
                    )),
                    Ok(_) => {}
                }
            }
            for (option, value) in [("deal_stage", &flow.deal_stage), ("tag", &flow.tag)] {
                if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                    problems.push(format!("flows[{i}].{option}: must not be empty when given"));
                }
            }
            // Post-sale nurture names its list or tag; without one the flow could only fail.
            let kind = self
                .destinations
                .iter()
                .find(|d| d.name == flow.destination)
                .map(|d| d.kind);
            match kind {
                Some(DestinationKind::Klaviyo)
                    if flow.object == ObjectType::Invoice && flow.list_id.is_none() =>
                {
                    problems.push(format!(
                        "flows[{i}].list_id: a klaviyo invoice flow adds paying customers to a list: name it"
                    ));
                }
                Some(DestinationKind::Mailchimp)
                    if flow.object == ObjectType::Invoice && flow.tag.is_none() =>
                {
                    problems.push(format!(
                        "flows[{i}].tag: a mailchimp invoice flow tags paying customers: name the tag"
                    ));
                }
                _ => {}
            }
            if flow.on.is_empty() {
                problems.push(format!("flows[{i}].on: name at least one trigger"));
            }
            let known = flow.object.fields();
            for field in flow.fields.iter().flatten() {
                if !known.contains(field) {
                    problems.push(format!(
                        "flows[{i}].fields: {field:?} is not a field of {} ({})",
                        flow.object.as_str(),
                        known.join(", ")
                    ));
                }
            }
            if flow.max_age.is_zero() {
                problems.push(format!("flows[{i}].max_age: must be more than 0"));
            }
            if flow.max_attempts == 0 || flow.max_attempts > 100 {
                problems.push(format!(
                    "flows[{i}].max_attempts: must be between 1 and 100"
                ));
            }
            for (field, value) in [
                ("minutes_per_record", flow.minutes_per_record),
                ("hourly_cost", flow.hourly_cost),
            ] {
                if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    problems.push(format!("flows[{i}].{field}: must be a number of 0 or more"));
                }
            }
        }
        problems
    }
}

/// What is wrong with a source's `api` block.
pub(super) fn api_problems(i: usize, kind: SourceKind, api: &SourceApiConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if !kind.is_thin() {
        problems.push(format!(
            "sources[{i}].api: only hubspot, quickbooks and xero sources are read from their API ({} webhooks carry the record)",
            kind.as_str()
        ));
        return problems;
    }
    let oauth = [
        &api.client_id_env,
        &api.client_secret_env,
        &api.refresh_token_env,
    ];
    let named = oauth.iter().filter(|v| v.is_some()).count();
    if named != 0 && named != oauth.len() {
        problems.push(format!(
            "sources[{i}].api: OAuth2 refresh needs client_id_env, client_secret_env and refresh_token_env together"
        ));
    } else if named == 0 && api.access_token_env.is_none() {
        problems.push(format!(
            "sources[{i}].api: give access_token_env, or client_id_env, client_secret_env and refresh_token_env"
        ));
    }
    if api.rate_per_second == Some(0) {
        problems.push(format!(
            "sources[{i}].api.rate_per_second: must be at least 1 when given"
        ));
    }
    if api.timeout.is_zero() {
        problems.push(format!(
            "sources[{i}].api.timeout: must be greater than zero"
        ));
    }
    problems
}

/// What is wrong with a destination: its URL, credentials and the keys its kind needs.
pub(super) fn destination_problems(
    i: usize,
    dest: &DestinationConfig,
    sources: &HashSet<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let kind = dest.kind.as_str();
    // Its form was checked as it was read (`HttpUrl`): only its presence is left.
    if dest.base_url().is_empty() {
        problems.push(format!(
            "destinations[{i}].url: a {kind} destination needs its URL"
        ));
    }
    let oauth = [
        &dest.client_id_env,
        &dest.client_secret_env,
        &dest.refresh_token_env,
    ];
    let named = oauth.iter().filter(|v| v.is_some()).count();
    if dest.kind.takes_oauth() {
        if named != 0 && named != oauth.len() {
            problems.push(format!(
                "destinations[{i}]: OAuth2 refresh needs client_id_env, client_secret_env and refresh_token_env together"
            ));
        } else if named == 0 && dest.secret_env.is_none() {
            problems.push(format!(
                "destinations[{i}]: a {kind} destination needs secret_env (a bearer token), or client_id_env, client_secret_env and refresh_token_env"
            ));
        }
    } else {
        if named != 0 || dest.token_url.is_some() {
            problems.push(format!(
                "destinations[{i}]: a {kind} destination takes no OAuth2 settings (secret_env holds its key)"
            ));
        }
        if dest.secret_env.is_none() {
            problems.push(format!(
                "destinations[{i}].secret_env: name the variable holding the {}",
                if dest.kind == DestinationKind::Webhook {
                    "signing secret"
                } else {
                    "API key"
                }
            ));
        }
    }
    if dest.kind == DestinationKind::Mailchimp && dest.list_id.as_deref().is_none_or(str::is_empty)
    {
        problems.push(format!(
            "destinations[{i}].list_id: a mailchimp destination needs its audience id"
        ));
    }
    for (field, value, kinds) in [
        (
            "realm_id",
            &dest.realm_id,
            &[DestinationKind::Quickbooks][..],
        ),
        ("item_id", &dest.item_id, &[DestinationKind::Quickbooks][..]),
        ("tenant_id", &dest.tenant_id, &[DestinationKind::Xero][..]),
        (
            "account_code",
            &dest.account_code,
            &[DestinationKind::Xero][..],
        ),
        (
            "payment_account_code",
            &dest.payment_account_code,
            &[DestinationKind::Xero][..],
        ),
        (
            "external_id_field",
            &dest.external_id_field,
            &[DestinationKind::Salesforce][..],
        ),
        (
            "deal_id_property",
            &dest.deal_id_property,
            &[DestinationKind::Hubspot][..],
        ),
        (
            "tax_id_property",
            &dest.tax_id_property,
            &[DestinationKind::Hubspot][..],
        ),
    ] {
        match value {
            Some(_) if !kinds.contains(&dest.kind) => problems.push(format!(
                "destinations[{i}].{field}: only for {} destinations",
                kinds[0].as_str()
            )),
            // These end up in URL paths and headers: plain identifiers only.
            Some(v)
                if v.is_empty()
                    || v.len() > 64
                    || !v
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                problems.push(format!(
                    "destinations[{i}].{field}: {v:?} must be 1-64 letters, digits, '_' or '-'"
                ));
            }
            _ => {}
        }
    }
    if !matches!(
        dest.kind,
        DestinationKind::Quickbooks | DestinationKind::Xero
    ) && (!dest.items.is_empty() || !dest.tax_codes.is_empty())
    {
        problems.push(format!(
            "destinations[{i}]: items and tax_codes are only for quickbooks and xero destinations"
        ));
    }
    for (what, value) in dest
        .items
        .iter()
        .map(|(sku, v)| (format!("items.{sku}"), v))
        .chain(
            dest.tax_codes
                .iter()
                .map(|(bp, v)| (format!("tax_codes.{bp}"), v)),
        )
    {
        // Written into request bodies as vendor ids: plain identifiers only.
        if value.is_empty()
            || value.len() > 64
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
        {
            problems.push(format!(
                "destinations[{i}].{what}: {value:?} must be 1-64 letters, digits, '_', '-', '.' or ':'"
            ));
        }
    }
    if dest.kind == DestinationKind::Quickbooks && dest.realm_id.is_none() {
        problems.push(format!(
            "destinations[{i}].realm_id: a quickbooks destination needs its company id"
        ));
    }
    if dest.kind == DestinationKind::Xero && dest.tenant_id.is_none() {
        problems.push(format!(
            "destinations[{i}].tenant_id: a xero destination needs its organisation's tenant id"
        ));
    }
    if let Some(system) = &dest.source_system {
        if matches!(
            dest.kind,
            DestinationKind::Webhook | DestinationKind::Mailchimp | DestinationKind::Klaviyo
        ) {
            problems.push(format!(
                "destinations[{i}].source_system: a {kind} destination is not written by id"
            ));
        } else if !sources.contains(system.as_str()) {
            problems.push(format!(
                "destinations[{i}].source_system: no source is named {system:?}"
            ));
        }
    }
    problems
}

/// Names that end up in subjects and stream names: no dots, wildcards or spaces.
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
