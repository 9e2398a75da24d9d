-- Terminal working keys (docs/hsm.md, Terminal keys): the PIN key (TPK) and MAC key (TAK) a
-- terminal received at its last sign-on or key change, so that every switch node, and a node after
-- a restart, uses the keys the terminal holds. Keys are stored only as TR-31 key blocks under the
-- switch's LMK: this table never holds a clear key, and a key block is useless without the HSM.

-- +goose Up
CREATE TABLE terminal_keys (
    terminal    text        PRIMARY KEY CHECK (terminal <> '' AND length(terminal) <= 8),
    -- TR-31 version D key blocks under the LMK (they start with 'D' and a 4-digit length).
    tpk         text        NOT NULL CHECK (tpk ~ '^D[0-9]{4}P0'),
    tak         text        NOT NULL CHECK (tak ~ '^D[0-9]{4}M[136]'),
    -- The check values the terminal was given, to compare with what it reports.
    tpk_kcv     text        NOT NULL CHECK (tpk_kcv ~ '^[0-9A-F]{6}$'),
    tak_kcv     text        NOT NULL CHECK (tak_kcv ~ '^[0-9A-F]{6}$'),
    -- Bumped at each key change: a node whose cached keys are older reads them again.
    generation  bigint      NOT NULL DEFAULT 1 CHECK (generation > 0),
    -- The 0800 (field 70: 001 sign-on, 101 key change) that rolled the keys.
    rolled_by   text        NOT NULL CHECK (rolled_by IN ('001', '101')),
    rolled_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The switch reads and rolls keys. Keys are no ledger record: the auditor role gets nothing here.
GRANT SELECT, INSERT, UPDATE ON terminal_keys TO poswitch_app;

-- +goose Down
DROP TABLE terminal_keys;
