-- Terminal batch closes (docs/ledger.md, Terminal batch totals): a terminal's batch is its entries
-- booked since its last close, whatever settlement cycle they fell in (terminal batches and the
-- acquirer's cycles are independent). A batch is closed by a 0500 whose totals agree with the
-- ledger (0510 00) or by the trailer (0500 960000) after a batch upload; each close is one row here,
-- and the next batch starts where it ended.

-- +goose Up
CREATE TABLE terminal_batch_close (
    terminal                text        NOT NULL CHECK (terminal <> ''),
    -- The batch is the terminal's entries with since < journal_entry.booked_at <= upto. since is
    -- the previous close's upto ('-infinity' for the terminal's first batch), so batches neither
    -- overlap nor leave a gap; upto is the database's clock when the closing 0500 was compared.
    since                   timestamptz NOT NULL,
    upto                    timestamptz NOT NULL CHECK (upto > since),
    -- balanced: a 0500 whose totals agreed; upload: the trailer after a batch upload.
    closed_by               text        NOT NULL CHECK (closed_by IN ('balanced', 'upload')),
    -- The identity (txn_key form) of the 0500 that closed the batch: its repeat is answered 00 again.
    txn_key                 text        NOT NULL CHECK (txn_key <> ''),
    merchant                text        NOT NULL DEFAULT '',
    -- Field 49 of the closing 0500; '' when absent (every currency was totalled).
    currency                text        NOT NULL DEFAULT '' CHECK (currency = '' OR currency ~ '^[0-9]{3}$'),
    -- The ledger's totals of the batch (fields 74-77, 86-89 and 97 as the ledger counts them).
    credits_count           bigint      NOT NULL,
    credits_reversal_count  bigint      NOT NULL,
    debits_count            bigint      NOT NULL,
    debits_reversal_count   bigint      NOT NULL,
    credits_amount          bigint      NOT NULL,
    credits_reversal_amount bigint      NOT NULL,
    debits_amount           bigint      NOT NULL,
    debits_reversal_amount  bigint      NOT NULL,
    net_amount              bigint      NOT NULL,
    -- The terminal's field 97 in the closing 0500, and how many compared fields differed (0 when
    -- balanced; after an upload, the trailer's).
    terminal_net_amount     bigint      NOT NULL,
    differences             integer     NOT NULL DEFAULT 0 CHECK (differences >= 0),
    -- After an upload: transactions uploaded, and how many only the terminal had, only the ledger
    -- had, or both had with different amounts. 0 for a balanced close.
    uploaded                integer     NOT NULL DEFAULT 0 CHECK (uploaded >= 0),
    terminal_only           integer     NOT NULL DEFAULT 0 CHECK (terminal_only >= 0),
    ledger_only             integer     NOT NULL DEFAULT 0 CHECK (ledger_only >= 0),
    amount_differs          integer     NOT NULL DEFAULT 0 CHECK (amount_differs >= 0),
    closed_at               timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (terminal, upto),
    -- One close per batch: two settlements racing to close the same batch cannot both succeed.
    UNIQUE (terminal, since),
    UNIQUE (txn_key)
);

-- A close is a record, like the journal: never changed, never removed.
CREATE TRIGGER terminal_batch_close_append_only BEFORE UPDATE OR DELETE ON terminal_batch_close
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER terminal_batch_close_no_truncate BEFORE TRUNCATE ON terminal_batch_close
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- A batch is read by terminal and booking time; the (terminal, cycle_id) index of migration 00004
-- serves the per-cycle totals still.
CREATE INDEX journal_entry_terminal_booked ON journal_entry (terminal, booked_at);

-- The switch reads and records closes; auditors read them (they hold no card data).
GRANT SELECT, INSERT ON terminal_batch_close TO poswitch_app;
GRANT SELECT ON terminal_batch_close TO auditor;

-- +goose Down
DROP INDEX journal_entry_terminal_booked;
DROP TABLE terminal_batch_close;
