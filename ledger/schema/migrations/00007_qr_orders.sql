-- Merchant-presented dynamic QR orders (docs/channels.md, docs/ledger.md "QR orders"): a terminal
-- asks for an order of an amount, shows its EMVCo QR payload, a wallet pays it and tells the switch
-- over HTTP, and the switch books it as a purchase. One row per order; its status moves
--   pending → paying → paid          (a wallet's payment: claimed, then booked)
--   pending → cancelled | expired    (the terminal gave up, or the TTL ran out)
-- and the claim is one conditional UPDATE, so a cancel racing a payment cannot both win. The row
-- holds no card data: the customer paid inside their wallet, the order knows only the wallet's own
-- transaction ID.

-- +goose Up
CREATE TABLE qr_order (
    order_id      text        PRIMARY KEY CHECK (order_id ~ '^[0-9A-Z]{1,25}$'),
    -- Identity of the 0600 that created the order (txn_key form): a retransmitted create returns
    -- the same order instead of making a second one.
    request_key   text        NOT NULL UNIQUE CHECK (request_key <> ''),
    -- Identity of the purchase the payment is booked under in journal_entry.txn_key.
    txn_key       text        NOT NULL UNIQUE CHECK (txn_key <> ''),
    acquirer      text        NOT NULL DEFAULT '',
    terminal      text        NOT NULL CHECK (terminal <> ''),
    merchant      text        NOT NULL CHECK (merchant <> ''),
    currency      char(3)     NOT NULL REFERENCES currency (numeric_code),
    amount        bigint      NOT NULL CHECK (amount > 0 AND amount <= 999999999999),
    -- The EMVCo QRCPS payload shown on the terminal (merchant, amount, order ID; CRC last).
    payload       text        NOT NULL CHECK (payload <> '' AND length(payload) <= 512),
    status        text        NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'paying', 'paid', 'cancelled', 'expired')),
    -- Field 11 and field 7 of the creating 0600: with acquirer and terminal they make txn_key.
    stan          text        NOT NULL CHECK (stan ~ '^[0-9]{6}$'),
    transmission  text        NOT NULL CHECK (transmission ~ '^[0-9]{10}$'),
    -- Retrieval reference and authorization code the payment is booked and answered with; fixed
    -- when the order is made, so a repeated notification books identical content.
    rrn           text        NOT NULL CHECK (rrn ~ '^[0-9]{12}$'),
    auth_code     text        NOT NULL CHECK (auth_code ~ '^[0-9A-Z]{6}$'),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at    timestamptz NOT NULL CHECK (expires_at > created_at),
    -- Set by the wallet's notification (the claim): which wallet issuer, its transaction ID, the
    -- wallet brand and funding source for the receipt, and when the switch claimed the order.
    wallet_issuer text        NOT NULL DEFAULT '',
    wallet_txn_id text        NOT NULL DEFAULT '' CHECK (length(wallet_txn_id) <= 64),
    wallet        text        NOT NULL DEFAULT '' CHECK (length(wallet) <= 16),
    funding       text        NOT NULL DEFAULT '' CHECK (length(funding) <= 16),
    instalments   smallint    NOT NULL DEFAULT 0 CHECK (instalments BETWEEN 0 AND 99),
    wallet_paid_at timestamptz,
    claimed_at    timestamptz,
    fee           bigint      NOT NULL DEFAULT 0 CHECK (fee >= 0),
    -- When the order reached paid, cancelled or expired.
    ended_at      timestamptz,
    CHECK ((status IN ('paying', 'paid')) = (claimed_at IS NOT NULL AND wallet_txn_id <> '')),
    CHECK ((status IN ('paid', 'cancelled', 'expired')) = (ended_at IS NOT NULL))
);

-- One wallet transaction pays one order.
CREATE UNIQUE INDEX qr_order_wallet_txn ON qr_order (wallet_issuer, wallet_txn_id) WHERE wallet_txn_id <> '';
-- A terminal's open orders (the per-terminal bound) and the expiry sweep.
CREATE INDEX qr_order_open ON qr_order (terminal, expires_at) WHERE status IN ('pending', 'paying');
CREATE INDEX qr_order_created ON qr_order (created_at);

-- The switch creates orders and moves their status; no DELETE (an order is a record).
GRANT SELECT, INSERT, UPDATE ON qr_order TO poswitch_app;

-- Auditors read orders through a view; it holds no card data, only the order and its outcome.
CREATE VIEW v_qr_orders AS
SELECT order_id, terminal, merchant, currency, amount, status, rrn, auth_code, created_at, expires_at,
       wallet_issuer, wallet, wallet_txn_id, funding, instalments, wallet_paid_at, claimed_at, fee, ended_at,
       txn_key, payload
FROM qr_order;
GRANT SELECT ON v_qr_orders TO auditor, poswitch_app;

-- +goose Down
DROP VIEW v_qr_orders;
DROP TABLE qr_order;
