-- Destination writes in the audit log, per-source volume buckets, and what pruning needs.

-- Every destination write deliver reports (`destination.write`, target
-- `<destination>/<flow>/<change id>`) is audited exactly once, however often its report is
-- redelivered: the recorder inserts it with ON CONFLICT DO NOTHING against this index, in the
-- transaction that counts the report.
CREATE UNIQUE INDEX audit_log_destination_writes ON audit_log (target)
    WHERE action = 'destination.write';

-- One row per source and bucket, like `flow_buckets`: golden changes the flows picked up, by the
-- source system of the event that caused them, for the per-source volume rule. Written in the
-- same transaction as the flow buckets.
CREATE TABLE source_buckets (
    source        text NOT NULL,
    bucket_start  timestamptz NOT NULL,
    received      bigint NOT NULL DEFAULT 0,
    delivered     bigint NOT NULL DEFAULT 0,
    failed        bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (source, bucket_start)
);

-- The prune task deletes by age; without these it would scan the tables whole.
CREATE INDEX counted_reports_by_age ON counted_reports (counted_at);
CREATE INDEX flow_buckets_by_start ON flow_buckets (bucket_start);
CREATE INDEX source_buckets_by_start ON source_buckets (bucket_start);
