-- Hydration of thin events (HubSpot, QuickBooks Online, Xero).
--
-- The newest OAuth2 tokens per source. Intuit and Xero rotate the refresh token on every refresh,
-- so the one in the environment goes stale: the row here wins at start-up.
CREATE TABLE oauth_tokens (
    source        text PRIMARY KEY,
    refresh_token text,
    access_token  text,
    expires_at    timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The record read for each thin event: a redelivery or a replay from the DLQ maps this record
-- instead of reading the vendor's API again, so the event always means what it meant first.
CREATE TABLE hydrated_records (
    event_id   text PRIMARY KEY,
    source     text NOT NULL,
    event_type text NOT NULL,
    record     jsonb NOT NULL,
    fetched_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hydrated_records_fetched_at ON hydrated_records (fetched_at);
