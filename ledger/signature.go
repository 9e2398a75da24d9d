package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// MaxSignatureBytes bounds one e-signature image (the schema checks it again).
const MaxSignatureBytes = 256 << 10

// pngMagic is the 8-byte signature every PNG file starts with.
var pngMagic = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}

// Signature is a cardholder's e-signature kept with its journal entry (table signature, view
// v_signatures). Image is set only when read with the image.
type Signature struct {
	EntryID    EntryID   `json:"entry_id"`
	TxnKey     string    `json:"txn_key"`
	Merchant   string    `json:"merchant"`
	Terminal   string    `json:"terminal"`
	PANMasked  string    `json:"pan_masked"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	RRN        string    `json:"rrn"`
	AuthCode   string    `json:"auth_code"`
	SHA256     string    `json:"sha256"` // hex
	Size       int       `json:"size"`
	ReceivedAt time.Time `json:"received_at"`
	Image      []byte    `json:"-"`
}

// SignatureOutcome is what StoreSignature did.
type SignatureOutcome int

const (
	// SignatureStored: the image is now kept with the entry.
	SignatureStored SignatureOutcome = iota + 1
	// SignatureSame: the entry already had this very image; nothing new was stored.
	SignatureSame
	// SignatureDiffers: the entry already has another image; a dispute record is not replaced.
	SignatureDiffers
	// SignatureNoOriginal: no approved, booked transaction of the terminal has this identity.
	SignatureNoOriginal
)

func (o SignatureOutcome) String() string {
	switch o {
	case SignatureStored:
		return "stored"
	case SignatureSame:
		return "same"
	case SignatureDiffers:
		return "differs"
	case SignatureNoOriginal:
		return "no original"
	}
	return "unknown"
}

// ErrNotPNG is returned for an image that is not a PNG file or is too large.
var ErrNotPNG = errors.New("signature image must be a PNG file of at most 256 KiB")

// signedKinds are the entries a cardholder signs for: the money-moving sales and holds.
const signedKinds = `('purchase', 'preauth', 'completion', 'bill_payment')`

// StoreSignature keeps png as the e-signature of the transaction with identity originalKey, which
// must be a booked sale or hold made at terminal. q is the application role. A second upload of the
// same image stores nothing (SignatureSame); a different one is refused (SignatureDiffers).
func StoreSignature(ctx context.Context, q Querier, terminal, originalKey string, png []byte) (SignatureOutcome, EntryID, error) {
	if len(png) > MaxSignatureBytes || !bytes.HasPrefix(png, pngMagic) {
		return 0, EntryID{}, ErrNotPNG
	}
	sum := sha256.Sum256(png)
	var id [16]byte
	var merchant string
	err := q.QueryRow(ctx, `SELECT id, merchant FROM journal_entry WHERE txn_key = $1 AND terminal = $2 AND status = 'booked'
	                          AND kind IN `+signedKinds, originalKey, terminal).Scan(&id, &merchant)
	if errors.Is(err, pgx.ErrNoRows) {
		return SignatureNoOriginal, EntryID{}, nil
	}
	if err != nil {
		return 0, EntryID{}, fmt.Errorf("finding the signed transaction %s: %w", originalKey, err)
	}
	var stored bool
	var have []byte
	// One statement: insert unless the entry has a signature, and say which digest it now has.
	err = q.QueryRow(ctx, `WITH ins AS (
	    INSERT INTO signature (entry_id, txn_key, merchant, terminal, image, sha256, size)
	    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING sha256)
	  SELECT true, sha256 FROM ins
	  UNION ALL SELECT false, sha256 FROM signature WHERE entry_id = $1 AND NOT EXISTS (SELECT 1 FROM ins)`,
		id, originalKey, merchant, terminal, png, sum[:], len(png)).Scan(&stored, &have)
	if err != nil {
		return 0, EntryID(id), fmt.Errorf("storing the signature of %s: %w", originalKey, err)
	}
	switch {
	case stored:
		return SignatureStored, EntryID(id), nil
	case bytes.Equal(have, sum[:]):
		return SignatureSame, EntryID(id), nil
	default:
		return SignatureDiffers, EntryID(id), nil
	}
}

const signatureSQL = `
SELECT entry_id, txn_key, merchant, terminal, pan_masked, amount, currency, rrn, auth_code, sha256, size, received_at
  FROM v_signatures`

func scanSignature(row pgx.Row, s *Signature) error {
	var id [16]byte
	if err := row.Scan(&id, &s.TxnKey, &s.Merchant, &s.Terminal, &s.PANMasked, &s.Amount, &s.Currency, &s.RRN,
		&s.AuthCode, &s.SHA256, &s.Size, &s.ReceivedAt); err != nil {
		return err
	}
	s.EntryID = EntryID(id)
	return nil
}

// SignatureOf reads the e-signature of the entry id with its image; ok is false when the entry has
// none. The auditor role may call it (v_signatures and the signature table).
func SignatureOf(ctx context.Context, q Querier, id EntryID) (Signature, bool, error) {
	var s Signature
	err := scanSignature(q.QueryRow(ctx, signatureSQL+` WHERE entry_id = $1`, [16]byte(id)), &s)
	if errors.Is(err, pgx.ErrNoRows) {
		return Signature{}, false, nil
	}
	if err != nil {
		return Signature{}, false, fmt.Errorf("reading the signature of entry %s: %w", id, err)
	}
	if err := q.QueryRow(ctx, `SELECT image FROM signature WHERE entry_id = $1`, [16]byte(id)).Scan(&s.Image); err != nil {
		return Signature{}, false, fmt.Errorf("reading the signature image of entry %s: %w", id, err)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(s.Image)); got != s.SHA256 {
		return Signature{}, false, fmt.Errorf("signature of entry %s: image digest %s differs from the recorded %s", id, got, s.SHA256)
	}
	return s, true, nil
}

// SignatureByKey is SignatureOf by the transaction's identity.
func SignatureByKey(ctx context.Context, q Querier, txnKey string) (Signature, bool, error) {
	var s Signature
	err := scanSignature(q.QueryRow(ctx, signatureSQL+` WHERE txn_key = $1`, txnKey), &s)
	if errors.Is(err, pgx.ErrNoRows) {
		return Signature{}, false, nil
	}
	if err != nil {
		return Signature{}, false, fmt.Errorf("reading the signature of %s: %w", txnKey, err)
	}
	return SignatureOf(ctx, q, s.EntryID)
}

// maxSignatureList bounds one listing.
const maxSignatureList = 1000

// Signatures lists the signatures received since (newest first, at most limit, without images).
func Signatures(ctx context.Context, q Querier, since time.Time, limit int) ([]Signature, error) {
	if limit <= 0 || limit > maxSignatureList {
		limit = maxSignatureList
	}
	rows, err := q.Query(ctx, signatureSQL+` WHERE received_at >= $1 ORDER BY received_at DESC LIMIT $2`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("listing signatures: %w", err)
	}
	defer rows.Close()
	var out []Signature
	for rows.Next() {
		var s Signature
		if err := scanSignature(rows, &s); err != nil {
			return nil, fmt.Errorf("listing signatures: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing signatures: %w", err)
	}
	return out, nil
}
