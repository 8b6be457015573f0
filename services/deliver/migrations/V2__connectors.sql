-- Vendor connectors (HubSpot, Salesforce, QuickBooks Online, Xero, Stripe, Klaviyo).
--
-- The newest OAuth2 tokens per destination. Intuit and Xero rotate the refresh token on every
-- refresh, so the one in the environment goes stale: the row here wins at start-up.
CREATE TABLE destination_oauth_tokens (
    destination   text PRIMARY KEY,
    refresh_token text,
    access_token  text,
    expires_at    timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The ids destinations gave the records deliver created there, by golden record
-- (`golden:<object>:<golden id>`) and by each source id of that record
-- (`ref:<system>:<object>:<id>`): the next change of the record updates it instead of creating
-- another, and an invoice finds the customer its source id points at.
CREATE TABLE destination_ids (
    destination text NOT NULL,
    key         text NOT NULL,
    vendor_id   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination, key)
);
