-- The poswitch ledger: an append-only journal of balanced entries in int64 minor units.
-- Runs as the owner role. Role names poswitch_app and auditor are created by pgcluster (or by the DBA).

-- +goose Up
CREATE TABLE currency (
    numeric_code char(3)  PRIMARY KEY CHECK (numeric_code ~ '^[0-9]{3}$'),
    alpha_code   char(3)  NOT NULL UNIQUE CHECK (alpha_code ~ '^[A-Z]{3}$'),
    exponent     smallint NOT NULL CHECK (exponent BETWEEN 0 AND 4),
    name         text     NOT NULL
);

INSERT INTO currency (numeric_code, alpha_code, exponent, name) VALUES
    ('036', 'AUD', 2, 'Australian Dollar'),
    ('048', 'BHD', 3, 'Bahraini Dinar'),
    ('124', 'CAD', 2, 'Canadian Dollar'),
    ('152', 'CLP', 0, 'Chilean Peso'),
    ('156', 'CNY', 2, 'Yuan Renminbi'),
    ('208', 'DKK', 2, 'Danish Krone'),
    ('344', 'HKD', 2, 'Hong Kong Dollar'),
    ('348', 'HUF', 2, 'Forint'),
    ('356', 'INR', 2, 'Indian Rupee'),
    ('360', 'IDR', 2, 'Rupiah'),
    ('368', 'IQD', 3, 'Iraqi Dinar'),
    ('376', 'ILS', 2, 'New Israeli Sheqel'),
    ('392', 'JPY', 0, 'Yen'),
    ('400', 'JOD', 3, 'Jordanian Dinar'),
    ('410', 'KRW', 0, 'Won'),
    ('414', 'KWD', 3, 'Kuwaiti Dinar'),
    ('434', 'LYD', 3, 'Libyan Dinar'),
    ('446', 'MOP', 2, 'Pataca'),
    ('458', 'MYR', 2, 'Malaysian Ringgit'),
    ('484', 'MXN', 2, 'Mexican Peso'),
    ('512', 'OMR', 3, 'Rial Omani'),
    ('554', 'NZD', 2, 'New Zealand Dollar'),
    ('578', 'NOK', 2, 'Norwegian Krone'),
    ('608', 'PHP', 2, 'Philippine Peso'),
    ('634', 'QAR', 2, 'Qatari Rial'),
    ('643', 'RUB', 2, 'Russian Ruble'),
    ('682', 'SAR', 2, 'Saudi Riyal'),
    ('702', 'SGD', 2, 'Singapore Dollar'),
    ('704', 'VND', 0, 'Dong'),
    ('710', 'ZAR', 2, 'Rand'),
    ('752', 'SEK', 2, 'Swedish Krona'),
    ('756', 'CHF', 2, 'Swiss Franc'),
    ('764', 'THB', 2, 'Baht'),
    ('784', 'AED', 2, 'UAE Dirham'),
    ('788', 'TND', 3, 'Tunisian Dinar'),
    ('826', 'GBP', 2, 'Pound Sterling'),
    ('840', 'USD', 2, 'US Dollar'),
    ('901', 'TWD', 2, 'New Taiwan Dollar'),
    ('949', 'TRY', 2, 'Turkish Lira'),
    ('978', 'EUR', 2, 'Euro'),
    ('985', 'PLN', 2, 'Zloty'),
    ('986', 'BRL', 2, 'Brazilian Real');

-- One currency per account: an account is a (name, currency) pair.
CREATE TABLE account (
    name       text        NOT NULL CHECK (name <> ''),
    currency   char(3)     NOT NULL REFERENCES currency,
    kind       text        NOT NULL CHECK (kind IN ('asset', 'liability', 'income', 'suspense')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, currency)
);

CREATE TABLE merchant (
    id                 text        PRIMARY KEY CHECK (id <> ''),
    name               text        NOT NULL DEFAULT '',
    fee_bp             integer     NOT NULL DEFAULT 60 CHECK (fee_bp BETWEEN 0 AND 10000),
    rounding           text        NOT NULL DEFAULT 'half_up' CHECK (rounding IN ('half_up', 'half_even', 'down', 'up')),
    refunds_return_fee boolean     NOT NULL DEFAULT false,
    fee_cap            bigint      CHECK (fee_cap IS NULL OR fee_cap >= 0),
    settlement_account text        NOT NULL DEFAULT '',
    payout_delay_days  integer     NOT NULL DEFAULT 1 CHECK (payout_delay_days BETWEEN 0 AND 30),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- A cycle is open until a settlement_close row names it. Cycle 1 opens with the schema.
CREATE TABLE settlement_cycle (
    id        bigint      PRIMARY KEY CHECK (id > 0),
    opened_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO settlement_cycle (id) VALUES (1);

CREATE TABLE settlement_close (
    cycle_id      bigint      PRIMARY KEY REFERENCES settlement_cycle,
    business_date date        NOT NULL,
    reason        text        NOT NULL CHECK (reason IN ('scheduled', 'manual')),
    closed_at     timestamptz NOT NULL DEFAULT now()
);

-- Each committed writer batch is sealed into its chain: hash = SHA-256(prev_hash, chain, seq, entries, postings).
CREATE TABLE ledger_batch (
    chain         text        NOT NULL,
    seq           bigint      NOT NULL CHECK (seq > 0),
    prev_hash     bytea       NOT NULL,
    hash          bytea       NOT NULL,
    entry_count   integer     NOT NULL,
    posting_count integer     NOT NULL,
    committed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (chain, seq)
);

-- status: booked (postings written), noop (nothing to book: reversal of an unknown or already
-- reversed transaction, pre-authorisation hold), refused (a rule said no: refund above the original).
CREATE TABLE journal_entry (
    id           uuid        PRIMARY KEY,
    txn_key      text        NOT NULL UNIQUE,
    kind         text        NOT NULL CHECK (kind IN ('purchase', 'preauth', 'completion', 'hold_expiry', 'void',
                                 'refund', 'reversal', 'bill_payment', 'chargeback', 'payout', 'issuer_settlement')),
    status       text        NOT NULL CHECK (status IN ('booked', 'noop', 'refused')),
    reason       text        NOT NULL DEFAULT '',
    -- 1: the original transaction is unknown; 2: the original was already cancelled.
    flags        smallint    NOT NULL DEFAULT 0,
    original_key text        NOT NULL DEFAULT '',
    -- The entry this one cancels or completes (reversal, void, completion, hold expiry): at most one.
    consumes     text,
    merchant     text        NOT NULL DEFAULT '',
    terminal     text        NOT NULL DEFAULT '',
    issuer       text        NOT NULL DEFAULT '',
    currency     char(3)     NOT NULL REFERENCES currency,
    amount       bigint      NOT NULL CHECK (amount >= 0),
    fee          bigint      NOT NULL DEFAULT 0,
    cycle_id     bigint      NOT NULL,
    stan         text        NOT NULL DEFAULT '',
    rrn          text        NOT NULL DEFAULT '',
    auth_code    text        NOT NULL DEFAULT '',
    entry_mode   text        NOT NULL DEFAULT '',
    pan_masked   text        NOT NULL DEFAULT '' CHECK (pan_masked !~ '[0-9]{11,}'),
    pan_hash     bytea,
    content_hash bytea       NOT NULL,
    txn_at       timestamptz NOT NULL,
    chain        text        NOT NULL,
    batch_seq    bigint      NOT NULL,
    booked_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX journal_entry_consumes ON journal_entry (consumes) WHERE consumes IS NOT NULL;
CREATE INDEX journal_entry_original ON journal_entry (original_key) WHERE original_key <> '';
CREATE INDEX journal_entry_rrn ON journal_entry (rrn) WHERE rrn <> '';

-- amount > 0 is a debit, < 0 a credit. Every entry sums to zero per currency.
CREATE TABLE posting (
    entry_id uuid     NOT NULL,
    seq      smallint NOT NULL CHECK (seq >= 0),
    account  text     NOT NULL,
    currency char(3)  NOT NULL,
    amount   bigint   NOT NULL CHECK (amount <> 0),
    cycle_id bigint   NOT NULL,
    PRIMARY KEY (entry_id, seq)
);
CREATE INDEX posting_account ON posting (account, cycle_id);

-- Pending pre-authorisation holds: not money yet. A hold is open until an entry consumes it
-- (completion, void, reversal, hold expiry).
CREATE TABLE hold (
    txn_key    text        PRIMARY KEY,
    entry_id   uuid        NOT NULL,
    merchant   text        NOT NULL,
    issuer     text        NOT NULL,
    currency   char(3)     NOT NULL REFERENCES currency,
    amount     bigint      NOT NULL CHECK (amount > 0),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Per batch, per hot system account (fee_income, settlement_bank, issuer_receivable:*) and cycle:
-- the sum of the batch's postings. Balances of those accounts come from these rows; nothing is
-- updated in place. Merchant accounts are summed from their postings.
CREATE TABLE balance_rollup (
    chain    text    NOT NULL,
    seq      bigint  NOT NULL,
    account  text    NOT NULL,
    currency char(3) NOT NULL,
    cycle_id bigint  NOT NULL,
    debit    bigint  NOT NULL CHECK (debit >= 0),
    credit   bigint  NOT NULL CHECK (credit >= 0),
    postings integer NOT NULL CHECK (postings > 0),
    PRIMARY KEY (chain, seq, account, currency, cycle_id)
);
CREATE INDEX balance_rollup_account ON balance_rollup (account, currency);

CREATE TABLE settlement_payout (
    cycle_id           bigint  NOT NULL REFERENCES settlement_close,
    merchant           text    NOT NULL,
    currency           char(3) NOT NULL REFERENCES currency,
    gross              bigint  NOT NULL,
    fee                bigint  NOT NULL,
    refunds            bigint  NOT NULL,
    fee_returned       bigint  NOT NULL,
    chargebacks        bigint  NOT NULL,
    net                bigint  NOT NULL,
    settlement_account text    NOT NULL,
    value_date         date    NOT NULL,
    entry_id           uuid,
    PRIMARY KEY (cycle_id, merchant, currency)
);

CREATE TABLE settlement_issuer_position (
    cycle_id bigint  NOT NULL REFERENCES settlement_close,
    issuer   text    NOT NULL,
    currency char(3) NOT NULL REFERENCES currency,
    debits   bigint  NOT NULL,
    credits  bigint  NOT NULL,
    net      bigint  NOT NULL,
    entry_id uuid,
    PRIMARY KEY (cycle_id, issuer, currency)
);

-- Append-only: the journal refuses UPDATE, DELETE and TRUNCATE from everybody (the app role has no
-- such grants either). Corrections are new entries.
-- +goose StatementBegin
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % on % is refused; the journal is append-only, corrections are new entries',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['journal_entry', 'posting', 'ledger_batch', 'balance_rollup', 'hold',
                             'settlement_close', 'settlement_payout', 'settlement_issuer_position', 'settlement_cycle']
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()', t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()', t || '_no_truncate', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- Balanced-entry check at write time, once per INSERT or COPY statement (not per row): every entry
-- in the statement must sum to zero per currency.
-- +goose StatementBegin
CREATE FUNCTION posting_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
    SELECT entry_id, currency, sum(amount) AS total INTO bad
      FROM new_postings GROUP BY entry_id, currency HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger: entry % does not balance in currency % (sum %)', bad.entry_id, bad.currency, bad.total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER posting_balanced AFTER INSERT ON posting REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION posting_check_balanced();

-- ---------------------------------------------------------------------------------------------
-- Auditor views (documented in docs/ledger.md). The auditor role sees only these.
CREATE VIEW v_currencies AS SELECT numeric_code, alpha_code, exponent, name FROM currency;
CREATE VIEW v_accounts AS SELECT name, currency, kind, created_at FROM account;
CREATE VIEW v_merchants AS
    SELECT id, name, fee_bp, rounding, refunds_return_fee, fee_cap, settlement_account, payout_delay_days, updated_at
      FROM merchant;

CREATE VIEW v_journal_entries AS
    SELECT id, txn_key, kind, status, reason, flags, original_key, consumes, merchant, terminal, issuer, currency,
           amount, fee, cycle_id, stan, rrn, auth_code, entry_mode, pan_masked, pan_hash, content_hash, txn_at,
           chain, batch_seq, booked_at
      FROM journal_entry;

CREATE VIEW v_postings AS
    SELECT p.entry_id, p.seq, p.account, p.currency, p.amount,
           CASE WHEN p.amount > 0 THEN p.amount ELSE 0 END AS debit,
           CASE WHEN p.amount < 0 THEN -p.amount ELSE 0 END AS credit,
           p.cycle_id, e.txn_key, e.kind, e.merchant, e.terminal, e.issuer, e.txn_at, e.chain, e.batch_seq, e.booked_at
      FROM posting p LEFT JOIN journal_entry e ON e.id = p.entry_id;

CREATE VIEW v_batches AS
    SELECT chain, seq, prev_hash, hash, entry_count, posting_count, committed_at FROM ledger_batch;

CREATE VIEW v_balance_rollups AS
    SELECT r.chain, r.seq, r.account, r.currency, r.cycle_id, r.debit, r.credit, r.postings, b.committed_at
      FROM balance_rollup r JOIN ledger_batch b USING (chain, seq);

-- Every account's movements: the rollups of the hot accounts plus the postings of merchant accounts.
CREATE VIEW v_account_movements AS
    SELECT r.account, r.currency, r.cycle_id, r.debit, r.credit, b.committed_at
      FROM balance_rollup r JOIN ledger_batch b USING (chain, seq)
    UNION ALL
    SELECT p.account, p.currency, p.cycle_id, GREATEST(p.amount, 0), GREATEST(-p.amount, 0), b.committed_at
      FROM posting p JOIN journal_entry e ON e.id = p.entry_id JOIN ledger_batch b ON b.chain = e.chain AND b.seq = e.batch_seq
     WHERE p.account LIKE 'merchant\_payable:%';

CREATE VIEW v_account_balances AS
    SELECT account, currency, sum(debit)::bigint AS debits, sum(credit)::bigint AS credits,
           (sum(debit) - sum(credit))::bigint AS balance
      FROM v_account_movements GROUP BY account, currency;

CREATE VIEW v_trial_balance AS
    SELECT currency, sum(debit)::bigint AS debits, sum(credit)::bigint AS credits,
           (sum(debit) - sum(credit))::bigint AS difference
      FROM v_account_movements GROUP BY currency;

CREATE VIEW v_settlement_cycles AS
    SELECT c.id, c.opened_at, x.closed_at, x.business_date, x.reason, (x.cycle_id IS NULL) AS open
      FROM settlement_cycle c LEFT JOIN settlement_close x ON x.cycle_id = c.id;

CREATE VIEW v_settlement_payouts AS
    SELECT cycle_id, merchant, currency, gross, fee, refunds, fee_returned, chargebacks, net,
           settlement_account, value_date, entry_id
      FROM settlement_payout;

CREATE VIEW v_issuer_positions AS
    SELECT cycle_id, issuer, currency, debits, credits, net, entry_id FROM settlement_issuer_position;

CREATE VIEW v_holds AS
    SELECT h.txn_key, h.merchant, h.issuer, h.currency, h.amount, h.expires_at, h.created_at,
           COALESCE(c.kind, 'open') AS state,
           COALESCE(CASE WHEN c.kind = 'completion' THEN c.amount END, 0) AS completed,
           CASE WHEN c.kind IS NULL THEN 0
                WHEN c.kind = 'completion' THEN h.amount - c.amount ELSE h.amount END AS released,
           c.txn_key AS closed_by
      FROM hold h LEFT JOIN journal_entry c ON c.consumes = h.txn_key AND c.status = 'booked';

-- Fees per cycle, merchant and currency: charged on purchases/completions/bill payments, returned on
-- refunds, and taken back by reversals and voids (all read from fee_income postings).
CREATE VIEW v_fees AS
    SELECT p.cycle_id, e.merchant, p.currency,
           sum(CASE WHEN p.amount < 0 THEN -p.amount ELSE 0 END)::bigint AS charged,
           sum(CASE WHEN p.amount > 0 THEN p.amount ELSE 0 END)::bigint AS returned,
           (-sum(p.amount))::bigint AS net
      FROM posting p JOIN journal_entry e ON e.id = p.entry_id
     WHERE p.account = 'fee_income'
     GROUP BY p.cycle_id, e.merchant, p.currency;

-- ---------------------------------------------------------------------------------------------
-- Grants. The application role writes the journal but cannot change it.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT SELECT, INSERT ON journal_entry, posting, ledger_batch, balance_rollup, hold, account,
    settlement_cycle, settlement_close, settlement_payout, settlement_issuer_position TO poswitch_app;
GRANT SELECT ON currency TO poswitch_app;
GRANT SELECT, INSERT, UPDATE ON merchant TO poswitch_app;
GRANT SELECT ON v_currencies, v_accounts, v_merchants, v_journal_entries, v_postings, v_batches,
    v_balance_rollups, v_account_movements, v_account_balances, v_trial_balance, v_settlement_cycles, v_settlement_payouts,
    v_issuer_positions, v_holds, v_fees TO auditor;
GRANT SELECT ON v_currencies, v_accounts, v_merchants, v_journal_entries, v_postings, v_batches,
    v_balance_rollups, v_account_movements, v_account_balances, v_trial_balance, v_settlement_cycles, v_settlement_payouts,
    v_issuer_positions, v_holds, v_fees TO poswitch_app;

-- +goose Down
DROP VIEW v_fees, v_holds, v_issuer_positions, v_settlement_payouts, v_settlement_cycles, v_trial_balance,
    v_account_balances, v_account_movements, v_balance_rollups, v_batches, v_postings, v_journal_entries, v_merchants, v_accounts,
    v_currencies;
DROP TABLE settlement_issuer_position, settlement_payout, balance_rollup, hold, posting, journal_entry,
    ledger_batch, settlement_close, settlement_cycle, merchant, account, currency;
DROP FUNCTION posting_check_balanced(), ledger_refuse_change();
