-- Golden contacts: one row per real person, keyed by normalised email.
CREATE TABLE golden_contacts (
    id                uuid PRIMARY KEY,
    email             text NOT NULL UNIQUE,
    phone             text NOT NULL DEFAULT '',
    first_name        text NOT NULL DEFAULT '',
    last_name         text NOT NULL DEFAULT '',
    company_name      text NOT NULL DEFAULT '',
    job_title         text NOT NULL DEFAULT '',
    lifecycle_stage   text NOT NULL DEFAULT '',
    marketing_consent boolean,
    consent_source    text NOT NULL DEFAULT '',
    -- The newest source timestamp applied; older updates never overwrite it.
    source_updated_at timestamptz NOT NULL,
    version           bigint NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Every {system, object, external id} maps to exactly one golden record.
CREATE TABLE crosswalk (
    system      text NOT NULL,
    object      text NOT NULL,
    external_id text NOT NULL,
    golden_id   uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, object, external_id)
);
CREATE INDEX crosswalk_by_golden ON crosswalk (golden_id);

-- Keys that point at different golden records: kept apart and recorded for review.
CREATE TABLE identity_conflicts (
    id          bigserial PRIMARY KEY,
    event_id    text NOT NULL,
    object      text NOT NULL,
    golden_a    uuid NOT NULL,
    golden_b    uuid NOT NULL,
    detail      text NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);

-- Idempotency per source event for as long as the row exists, plus an outbox: the golden change
-- is stored with the state it describes and published after commit.
CREATE TABLE processed_events (
    event_id       text PRIMARY KEY,
    outcome        text NOT NULL,
    golden_id      uuid,
    change_subject text,
    change_msg_id  text,
    change_payload bytea,
    published      boolean NOT NULL DEFAULT false,
    processed_at   timestamptz NOT NULL DEFAULT now()
);
