-- The phone becomes the second match key of a contact (email OR phone).

-- The E.164 number a contact is matched on; NULL when its phone is missing or unparseable (the
-- digits stay in `phone`, but junk must never join two people). Kept apart from `phone` so the
-- key only ever holds a value that went through the normaliser and its advisory lock.
ALTER TABLE golden_contacts ADD COLUMN phone_key text;
CREATE UNIQUE INDEX golden_contacts_phone_key ON golden_contacts (phone_key)
    WHERE phone_key IS NOT NULL;

-- A contact known only by its phone has no email; '' is "no key", so it must not be unique.
ALTER TABLE golden_contacts DROP CONSTRAINT golden_contacts_email_key;
CREATE UNIQUE INDEX golden_contacts_email ON golden_contacts (email) WHERE email <> '';

