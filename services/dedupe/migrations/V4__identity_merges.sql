-- Manual merge and un-merge of golden records (operator commands from the admin API).

-- A merged record stays, pointing at its survivor: its email and phone keep leading to the
-- survivor through it, and an un-merge can bring it back as it was.
ALTER TABLE golden_contacts ADD COLUMN merged_into uuid;
ALTER TABLE golden_records ADD COLUMN merged_into uuid;

-- One row per applied command, keyed by the operator's command id. A merge's `moved` holds exactly
-- what it moved — crosswalk rows, match keys, and records merged earlier into the merged one — so
-- an un-merge moves exactly that back; `filled` names the survivor's empty fields it filled from
-- the merged record. An un-merge row holds what it moved back and the fields it cleared, and
-- marks its merge undone.
CREATE TABLE identity_merges (
    command_id text PRIMARY KEY,
    object     text NOT NULL,
    survivor   uuid NOT NULL,
    merged     uuid NOT NULL,
    -- 'merge' or 'unmerge'.
    kind       text NOT NULL,
    actor      text NOT NULL DEFAULT '',
    reason     text NOT NULL DEFAULT '',
    moved      jsonb NOT NULL,
    filled     jsonb NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    undone_at  timestamptz,
    -- The un-merge command that undid it.
    undone_by  text
);
-- At most one merge of a record in force (a merged record cannot be merged again).
CREATE UNIQUE INDEX identity_merges_in_force ON identity_merges (merged)
    WHERE kind = 'merge' AND undone_at IS NULL;
CREATE INDEX identity_merges_by_survivor ON identity_merges (survivor);
