-- What auditors may read of issue #5's additions (docs/ledger.md, SQL views): the issuer trace of
-- each entry, and the store-and-forward queue — what the acquirer owes issuers (reversals and
-- advices), whether it was delivered, and what an operator must look at. The sealed PAN is left out:
-- auditors never need it, and the view shows the masked PAN.

-- +goose Up
-- New columns go at the end, so CREATE OR REPLACE keeps the view's existing columns and grants.
CREATE OR REPLACE VIEW v_journal_entries AS
    SELECT id, txn_key, kind, status, reason, flags, original_key, consumes, merchant, terminal, issuer, currency,
           amount, fee, cycle_id, stan, rrn, auth_code, entry_mode, pan_masked, pan_hash, content_hash, txn_at,
           chain, batch_seq, booked_at, issuer_stan, issuer_time
      FROM journal_entry;

CREATE VIEW v_saf_items AS
    SELECT id, issuer, kind, mti, acquirer, terminal, orig_mti, orig_stan, orig_time, original_key,
           processing_code, amount, currency, merchant, rrn, auth_code, mcc, entry_mode, pan_masked,
           pan_sealed IS NOT NULL AS has_pan, reason, status, attempts, next_attempt_at, last_attempt_at,
           last_response, last_error, created_at, done_at
      FROM saf_item;

GRANT SELECT ON v_saf_items TO auditor, poswitch_app;

-- +goose Down
DROP VIEW v_saf_items;
-- A view loses columns only by being made again.
DROP VIEW v_journal_entries;
CREATE VIEW v_journal_entries AS
    SELECT id, txn_key, kind, status, reason, flags, original_key, consumes, merchant, terminal, issuer, currency,
           amount, fee, cycle_id, stan, rrn, auth_code, entry_mode, pan_masked, pan_hash, content_hash, txn_at,
           chain, batch_seq, booked_at
      FROM journal_entry;
GRANT SELECT ON v_journal_entries TO auditor, poswitch_app;
