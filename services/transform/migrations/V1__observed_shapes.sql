-- What each (source, event type) has looked like: every field path with the JSON types seen, and
-- the enum values of the canonical record. A row that is new is a schema-drift notice.
CREATE TABLE observed_shapes (
    source      text NOT NULL,
    event_type  text NOT NULL,
    path        text NOT NULL,
    kind        text NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_type, path, kind)
);
