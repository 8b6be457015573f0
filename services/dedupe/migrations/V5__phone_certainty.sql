-- How sure the reading of each golden phone is, so a phone is never replaced by a less certain
-- reading of another number: 1 when the record said where the number is (its country code or the
-- record's own country), 0 when it was read in the default region (a guess). NULL when there is no
-- valid phone (no phone_key); rows from before this column count as 0, so any valid reading may
-- still replace them.
ALTER TABLE golden_contacts ADD COLUMN phone_certainty smallint;
