-- Per-flow counts that survive restarts, so the numbers on /metrics never go backwards.
CREATE TABLE flow_counts (
    flow    text NOT NULL,
    outcome text NOT NULL,
    count   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (flow, outcome)
);

CREATE TABLE flow_freshness (
    flow              text PRIMARY KEY,
    last_delivered_at timestamptz NOT NULL
);

-- Each delivery report is counted once, however often it is redelivered.
CREATE TABLE counted_reports (
    msg_id     text PRIMARY KEY,
    counted_at timestamptz NOT NULL DEFAULT now()
);
