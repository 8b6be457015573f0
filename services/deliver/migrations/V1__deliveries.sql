-- One row per golden change a flow delivered: the flow's idempotency record.
CREATE TABLE deliveries (
    flow         text NOT NULL,
    change_id    text NOT NULL,
    destination  text NOT NULL,
    http_status  integer NOT NULL,
    attempts     integer NOT NULL,
    delivered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow, change_id)
);
