-- Notices an event raises besides its one outbox message (processed_events): every pair of an
-- identity conflict, a phone shared by a different email, near-duplicates. Published after
-- commit like the outbox, and again when the event is redelivered (JetStream drops the repeat by
-- msg_id); a near-duplicate pair's msg_id (`review:<a>:<b>`) also keeps it from being raised twice.
CREATE TABLE review_notices (
    msg_id     text PRIMARY KEY,
    event_id   text NOT NULL,
    subject    text NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_notices_event ON review_notices (event_id);

-- Blocking keys of golden contacts for near-duplicate review (near.rs), as 64-bit hashes: only
-- contacts sharing a key are compared. A key a contact once had keeps leading to it; its postcode
-- is kept here as evidence, since golden_contacts keeps no address.
CREATE TABLE contact_near_keys (
    key       bigint NOT NULL,
    golden_id uuid NOT NULL,
    postcode  text NOT NULL DEFAULT '',
    PRIMARY KEY (key, golden_id)
);
