-- Which write is creating a destination's record for a key (`golden:…` / `ref:…`, as in
-- destination_ids) right now: one creator per record across flows and deliver replicas, so two
-- changes of one record never create it twice. Rows live for one write; a crashed writer's row
-- is taken over once stale.
CREATE TABLE destination_claims (
    destination text NOT NULL,
    key         text NOT NULL,
    claimed_by  text NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination, key)
);
