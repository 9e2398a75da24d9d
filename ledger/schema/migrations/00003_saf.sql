-- Store-and-forward (switch/saf, docs/flows.md): reversals and advices the switch owes an issuer,
-- kept until the issuer acknowledges them, and the per-card day counters of stand-in processing
-- (switch/standin). Neither table is part of the journal: they hold no money, only what rebuilds an
-- issuer message. Never a clear PAN, track data, PIN block or CVV.

-- +goose Up
CREATE TABLE saf_item (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    issuer          text        NOT NULL CHECK (issuer <> ''),
    kind            text        NOT NULL CHECK (kind IN ('reversal', 'advice')),
    -- The original the message names in field 90, as the issuer knows it: link-side MTI, STAN and
    -- transmission time, our acquirer ID (field 32) and the terminal (field 41).
    acquirer        text        NOT NULL CHECK (acquirer ~ '^[0-9]{1,11}$'),
    terminal        text        NOT NULL CHECK (terminal <> '' AND length(terminal) <= 8),
    orig_mti        char(4)     NOT NULL CHECK (orig_mti ~ '^0[0-9]{3}$'),
    orig_stan       char(6)     NOT NULL CHECK (orig_stan ~ '^[0-9]{6}$'),
    orig_time       char(10)    NOT NULL CHECK (orig_time ~ '^[0-9]{10}$'),
    -- The first attempt's MTI; repeats send it with the last digit 1 (0421, 0121, 0221).
    mti             char(4)     NOT NULL CHECK (mti IN ('0420', '0120', '0220')),
    -- The terminal-side identity of the original (txn.Key), '' when unknown (a late answer).
    original_key    text        NOT NULL DEFAULT '',
    processing_code char(6)     NOT NULL CHECK (processing_code ~ '^[0-9]{6}$'),
    amount          bigint      NOT NULL CHECK (amount >= 0),
    currency        char(3)     NOT NULL CHECK (currency ~ '^[0-9]{3}$'),
    merchant        text        NOT NULL DEFAULT '' CHECK (length(merchant) <= 15),
    rrn             text        NOT NULL DEFAULT '' CHECK (length(rrn) <= 12),
    auth_code       text        NOT NULL DEFAULT '' CHECK (length(auth_code) <= 6),
    mcc             text        NOT NULL DEFAULT '' CHECK (mcc = '' OR mcc ~ '^[0-9]{4}$'),
    entry_mode      text        NOT NULL DEFAULT '' CHECK (entry_mode = '' OR entry_mode ~ '^[0-9]{3}$'),
    -- The masked PAN is for operators only and never sent; a run of 13 digits would be a clear PAN.
    pan_masked      text        NOT NULL DEFAULT '' CHECK (pan_masked !~ '[0-9]{13}'),
    -- The PAN sealed by the HSM (advices only: the issuer must know whose account to post); opaque.
    pan_sealed      bytea       CHECK (octet_length(pan_sealed) <= 256),
    reason          char(4)     NOT NULL CHECK (reason ~ '^[0-9]{4}$'),
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'operator', 'cancelled')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_response   text        NOT NULL DEFAULT '',
    last_error      text        NOT NULL DEFAULT '',
    claimed_by      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz,
    -- Idempotency: one reversal and one advice of each MTI per original, whoever enqueues them (a
    -- stand-in pre-authorisation's 0120 and its completion's 0220 name the same original).
    UNIQUE (issuer, kind, mti, acquirer, terminal, orig_stan, orig_time)
);

-- The drain query: due pending items, oldest first.
CREATE INDEX saf_item_due ON saf_item (next_attempt_at) WHERE status = 'pending';

-- Stand-in usage per card and day; the card is the HSM's keyed PAN digest, never the PAN.
CREATE TABLE standin_card_day (
    issuer   text    NOT NULL CHECK (issuer <> ''),
    card     bytea   NOT NULL CHECK (octet_length(card) BETWEEN 16 AND 64),
    day      date    NOT NULL,
    currency char(3) NOT NULL CHECK (currency ~ '^[0-9]{3}$'),
    amount   bigint  NOT NULL CHECK (amount >= 0),
    count    integer NOT NULL CHECK (count >= 0),
    PRIMARY KEY (issuer, card, day, currency)
);

-- The switch enqueues, claims and settles items and counts stand-in usage. No DELETE: finished
-- items stay as the record of what the issuer was told (an operator may archive them as the owner).
GRANT SELECT, INSERT, UPDATE ON saf_item, standin_card_day TO poswitch_app;

-- +goose Down
DROP TABLE standin_card_day, saf_item;
