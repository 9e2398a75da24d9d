-- The issuer trace (docs/ledger.md): field 11 (STAN) and field 7 (transmission date and time) of the
-- message the switch sent the issuer for a transaction. A reversal sent to the issuer later names
-- its original by them (field 90), so they are kept with the entry that booked it. They are written
-- once, with the entry, and like every column the append-only triggers keep them from changing;
-- they are not part of the batch seal (ledger/chain.go), so older batches verify unchanged.
-- NULL: the switch sent nothing to an issuer for this entry (reversals, voids, advices, entries
-- booked before this migration).

-- +goose Up
ALTER TABLE journal_entry ADD COLUMN issuer_stan text, ADD COLUMN issuer_time text;
-- NOT VALID: every existing row is NULL, so there is nothing to scan; new rows are checked.
ALTER TABLE journal_entry ADD CONSTRAINT journal_entry_issuer_stan CHECK (issuer_stan ~ '^[0-9]{1,12}$') NOT VALID;
ALTER TABLE journal_entry ADD CONSTRAINT journal_entry_issuer_time CHECK (issuer_time ~ '^[0-9]{1,12}$') NOT VALID;

-- Batch settlement (0500) totals one terminal's entries of one cycle, and a batch upload (0320)
-- lists them: without this index each of those is a scan of the whole journal.
CREATE INDEX journal_entry_terminal ON journal_entry (terminal, cycle_id);

-- +goose Down
DROP INDEX journal_entry_terminal;
ALTER TABLE journal_entry DROP CONSTRAINT journal_entry_issuer_time, DROP CONSTRAINT journal_entry_issuer_stan;
ALTER TABLE journal_entry DROP COLUMN issuer_time, DROP COLUMN issuer_stan;
