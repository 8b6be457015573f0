-- What deliver reported about flows and destinations (`FlowStatus` on `<prefix>.ops.status.>`):
-- a flow paused after its destination answered 410, a destination's OAuth2 credentials failing
-- or expiring. One row per alert rule and subject; `active` rows raise alerts (`flow_paused`,
-- `credentials`) through the alert evaluator, which resolves them once the row turns inactive.
CREATE TABLE flow_status (
    rule        text NOT NULL,
    -- `flow=<name>` or `destination=<name>`.
    subject     text NOT NULL,
    active      boolean NOT NULL,
    -- Words and names only (a status, an OAuth2 error code), never a token or a record's value.
    summary     text NOT NULL,
    -- The report's own time: reports handled out of order never undo a newer one.
    reported_at timestamptz NOT NULL,
    PRIMARY KEY (rule, subject)
);
