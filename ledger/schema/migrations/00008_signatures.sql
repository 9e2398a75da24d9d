-- E-signatures (docs/ledger.md, Signatures): the image a cardholder signed on the terminal for a
-- signature-CVM transaction, uploaded after approval (0820, field 70 = 850) and kept with the
-- journal entry for disputes. One signature per entry; like the journal it is never changed nor
-- removed (a dispute record must not change). The image is a PNG of at most 256 KiB; its SHA-256 is
-- stored beside it so an auditor can show the file fetched is the one received.

-- +goose Up
CREATE TABLE signature (
    entry_id    uuid        PRIMARY KEY REFERENCES journal_entry (id),
    txn_key     text        NOT NULL UNIQUE,
    merchant    text        NOT NULL DEFAULT '',
    terminal    text        NOT NULL CHECK (terminal <> ''),
    image       bytea       NOT NULL CHECK (length(image) BETWEEN 8 AND 262144
                                            AND substring(image FROM 1 FOR 8) = '\x89504e470d0a1a0a'::bytea),
    sha256      bytea       NOT NULL CHECK (length(sha256) = 32),
    size        integer     NOT NULL CHECK (size = length(image)),
    received_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TRIGGER signature_append_only BEFORE UPDATE OR DELETE ON signature
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER signature_no_truncate BEFORE TRUNCATE ON signature
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- What an auditor lists: whose transaction, how much, and the image's digest and size; the image
-- itself is fetched from the signature table by entry id.
CREATE VIEW v_signatures AS
    SELECT s.entry_id, s.txn_key, e.merchant, s.terminal, e.pan_masked, e.amount, e.currency, e.rrn, e.auth_code,
           encode(s.sha256, 'hex') AS sha256, s.size, s.received_at
      FROM signature s JOIN journal_entry e ON e.id = s.entry_id;

-- The switch records signatures; auditors read them (the image holds no card data).
GRANT SELECT, INSERT ON signature TO poswitch_app;
GRANT SELECT ON signature TO auditor;
GRANT SELECT ON v_signatures TO auditor, poswitch_app;

-- +goose Down
DROP VIEW v_signatures;
DROP TABLE signature;
