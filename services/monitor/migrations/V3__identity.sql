-- Identity conflicts dedupe reported, and what dedupe did with the operators' merge and
-- un-merge commands, for the admin API.

-- One row per conflict notice (`<prefix>.ops.conflict.<object>`), keyed by the source event that
-- revealed it; resolved once a merge of the two records is applied.
CREATE TABLE conflicts (
    event_id    text PRIMARY KEY,
    object      text NOT NULL,
    golden_a    text NOT NULL,
    golden_b    text NOT NULL,
    detail      text NOT NULL,
    detected_at timestamptz NOT NULL,
    resolved_at timestamptz,
    -- The merge command that resolved it.
    resolved_by text
);
CREATE INDEX conflicts_open ON conflicts (detected_at) WHERE resolved_at IS NULL;

-- One row per command result (`<prefix>.ops.conflict.<object>.command`); the admin API waits for
-- its command's row to answer.
CREATE TABLE identity_commands (
    command_id  text PRIMARY KEY,
    kind        text NOT NULL,
    object      text NOT NULL,
    survivor    text NOT NULL,
    merged      text NOT NULL,
    applied     boolean NOT NULL,
    error       text NOT NULL,
    applied_at  timestamptz,
    -- The protobuf `IdentityCommandResult`, answered as it came.
    result      bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
