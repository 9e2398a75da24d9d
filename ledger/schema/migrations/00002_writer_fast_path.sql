-- What the group-commit writer's faster path needs (docs/ledger.md, Writer):
-- * the currency of entries and holds is checked once per INSERT statement instead of by a per-row
--   foreign key (which cost a lookup and a row lock on the currency row per entry), and the
--   currency table becomes append-only so that a check at insert time keeps holding;
-- * ledger_assert_open_cycle, which a batch that skipped its reads calls under the shared cycle lock.

-- +goose Up
ALTER TABLE journal_entry DROP CONSTRAINT journal_entry_currency_fkey;
ALTER TABLE hold DROP CONSTRAINT hold_currency_fkey;

CREATE TRIGGER currency_append_only BEFORE UPDATE OR DELETE ON currency FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER currency_no_truncate BEFORE TRUNCATE ON currency FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Every entry and hold names a known currency: checked once per INSERT or COPY statement over the
-- rows it inserted.
-- +goose StatementBegin
CREATE FUNCTION ledger_check_currency() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad text;
BEGIN
    SELECT n.currency INTO bad FROM new_rows n
     WHERE NOT EXISTS (SELECT 1 FROM currency c WHERE c.numeric_code = n.currency) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger: % names unknown currency %', TG_TABLE_NAME, bad USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER journal_entry_currency AFTER INSERT ON journal_entry REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_currency();
CREATE TRIGGER hold_currency AFTER INSERT ON hold REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_currency();

-- A writer batch that skipped its reads asserts, under the shared cycle lock, that the cycle it
-- writes into is still the open one; if cut-over closed it, the batch fails with a serialization
-- failure and the writer reads the new cycle and tries again.
-- +goose StatementBegin
CREATE FUNCTION ledger_assert_open_cycle(expected bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE open_cycle bigint;
BEGIN
    SELECT id INTO open_cycle FROM settlement_cycle c
     WHERE NOT EXISTS (SELECT 1 FROM settlement_close x WHERE x.cycle_id = c.id) ORDER BY id LIMIT 1;
    IF open_cycle IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'ledger: cycle % is no longer the open settlement cycle (open: %)', expected, open_cycle
            USING ERRCODE = 'serialization_failure';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ledger_assert_open_cycle(bigint);
DROP TRIGGER hold_currency ON hold;
DROP TRIGGER journal_entry_currency ON journal_entry;
DROP FUNCTION ledger_check_currency();
DROP TRIGGER currency_no_truncate ON currency;
DROP TRIGGER currency_append_only ON currency;
ALTER TABLE hold ADD CONSTRAINT hold_currency_fkey FOREIGN KEY (currency) REFERENCES currency;
ALTER TABLE journal_entry ADD CONSTRAINT journal_entry_currency_fkey FOREIGN KEY (currency) REFERENCES currency;
