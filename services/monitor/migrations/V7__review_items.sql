-- Every pair dedupe raises for review, of every kind: several pairs per event (an event whose
-- keys point at three records, a phone shared and a near-duplicate), so a pair is keyed by its
-- event and records, and an id pages the list. `kind` and `evidence` say why; `resolution` says
-- how an operator closed it (a merge, or kept apart).
ALTER TABLE conflicts DROP CONSTRAINT conflicts_pkey;
ALTER TABLE conflicts ADD COLUMN id bigserial PRIMARY KEY;
ALTER TABLE conflicts ADD COLUMN kind text NOT NULL DEFAULT 'keys_disagree';
ALTER TABLE conflicts ADD COLUMN evidence text[] NOT NULL DEFAULT '{}';
ALTER TABLE conflicts ADD COLUMN resolution text;
CREATE UNIQUE INDEX conflicts_pair ON conflicts (event_id, golden_a, golden_b);
-- Pairs an operator kept apart: raised again, they arrive closed.
CREATE INDEX conflicts_kept_apart ON conflicts (golden_a, golden_b) WHERE resolution = 'kept_apart';
