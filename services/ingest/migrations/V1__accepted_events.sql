-- Event ids ingest has stored, kept for `ingest.dedupe_retention` — far longer than JetStream's
-- duplicate window — so a vendor retrying days later is still recognised.
CREATE TABLE accepted_events (
    event_id    text PRIMARY KEY,
    accepted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accepted_events_by_time ON accepted_events (accepted_at);
