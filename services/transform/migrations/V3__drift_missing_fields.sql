-- Fields present in every event of their (source, event type) so far. When one of them is absent
-- from an event, that is a "missing field" drift notice — once: the flag is then cleared.
ALTER TABLE observed_shapes ADD COLUMN always_seen boolean NOT NULL DEFAULT false;
