-- Per-flow volume buckets, the alerts raised from them, schema-drift notices and the reports
-- sent: what monitor's baselines, alert rules and daily report work from.

-- One row per flow and bucket (`monitor.alerts.bucket`, an hour deployed), keyed by the bucket's
-- start in UTC. Written in batches, in the same transaction that marks the reports as counted, so
-- each report lands in exactly one bucket exactly once.
CREATE TABLE flow_buckets (
    flow           text NOT NULL,
    bucket_start   timestamptz NOT NULL,
    received       bigint NOT NULL DEFAULT 0,
    delivered      bigint NOT NULL DEFAULT 0,
    failed         bigint NOT NULL DEFAULT 0,
    dead_lettered  bigint NOT NULL DEFAULT 0,
    -- End-to-end latency of the deliveries in the bucket, for its mean.
    latency_ms_sum bigint NOT NULL DEFAULT 0,
    latency_count  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (flow, bucket_start)
);

-- Every alert, open or resolved. `id` is rule + subject (`volume_drop:flow=contacts`); one open
-- alert per id at a time, so a condition that persists is never raised twice.
CREATE TABLE alerts (
    id          text NOT NULL,
    rule        text NOT NULL,
    severity    text NOT NULL,
    summary     text NOT NULL,
    runbook     text NOT NULL,
    opened_at   timestamptz NOT NULL,
    resolved_at timestamptz,
    -- The webhook outbox: set once the opening / resolution was accepted by the webhook.
    open_sent_at     timestamptz,
    resolved_sent_at timestamptz,
    PRIMARY KEY (id, opened_at)
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (id) WHERE resolved_at IS NULL;
CREATE INDEX alerts_unsent ON alerts (opened_at)
    WHERE open_sent_at IS NULL OR (resolved_at IS NOT NULL AND resolved_sent_at IS NULL);

-- The latest schema-drift notice per source and payload path (`<prefix>.ops.drift.<source>`).
CREATE TABLE drift_notices (
    source       text NOT NULL,
    path         text NOT NULL,
    event_type   text NOT NULL,
    change       text NOT NULL,
    last_seen_at timestamptz NOT NULL,
    PRIMARY KEY (source, path)
);

-- Health reports, one per period whichever replica builds it first; `body` is kept until the
-- webhook accepted it.
CREATE TABLE health_reports (
    period_end   timestamptz PRIMARY KEY,
    period_start timestamptz NOT NULL,
    body         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz
);
