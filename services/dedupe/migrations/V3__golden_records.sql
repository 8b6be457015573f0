-- Golden records of every object other than contacts (company, product, deal, order, invoice,
-- lead): the merged canonical message, its version and the newest source time applied.
CREATE TABLE golden_records (
    id                uuid PRIMARY KEY,
    object            text NOT NULL,
    -- The protobuf `CanonicalObject` (without envelope) of the merged record.
    record            bytea NOT NULL,
    source_updated_at timestamptz NOT NULL,
    version           bigint NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Normalised match keys (company domain and tax id, product SKU, lead email): one record per key.
-- A key a record once had keeps pointing at it, so an old domain still finds the company.
CREATE TABLE golden_keys (
    object    text NOT NULL,
    kind      text NOT NULL,
    value     text NOT NULL,
    golden_id uuid NOT NULL REFERENCES golden_records (id),
    PRIMARY KEY (object, kind, value)
);
CREATE INDEX golden_keys_by_golden ON golden_keys (golden_id);
