package node

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/txn"
)

// Bounds of e-signature assembly: a terminal sends one image in chunks (0820, field 70 = 850), one
// after the other; an assembly not finished within signatureSessionTTL is dropped, and beyond
// maxSignatureSessions the oldest is.
const (
	maxSignatureSessions = 1000
	signatureSessionTTL  = 2 * time.Minute
	maxSignaturePixels   = 4096 * 4096 // a PNG's declared size, before it is decoded to check it
)

// signatureSession is one image being assembled: the chunks 1..next-1 of last are in buf.
type signatureSession struct {
	started   time.Time
	next      int
	last      int
	buf       bytes.Buffer
	lastChunk []byte // the previous chunk, to answer its repeat (the terminal lost our answer) again
	answered  string // the answer to the final chunk, once it was stored or refused
}

// signatureDesk answers e-signature uploads (0820, field 70 = 850). Chunks 71 = n of 72 = m, field
// 62 base64, arrive in order for one original (field 90); each is answered 0830 00, a chunk out of
// order or an image over 256 KiB 30. On the last chunk the image must be a PNG; it is stored with
// the original's journal entry (ledger.StoreSignature) only when that is an approved, booked sale or
// hold of the terminal: else 25. A second upload of the same image is 00 and stores nothing; a
// different image for a transaction that has one is 12 (a dispute record does not change).
type signatureDesk struct {
	q          ledger.Querier
	terminals  map[string]string // terminal → merchant
	acquirerID string
	log        *zap.Logger
	results    *prometheus.CounterVec

	mu       sync.Mutex
	sessions map[string]*signatureSession // by terminal | original key
}

func newSignatureDesk(q ledger.Querier, terminals map[string]string, acquirerID string, log *zap.Logger, reg prometheus.Registerer) *signatureDesk {
	d := &signatureDesk{q: q, terminals: terminals, acquirerID: acquirerID, log: log, sessions: map[string]*signatureSession{},
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "poswitch_signature_chunks_total",
			Help: "E-signature chunks (0820) by result: chunk (more to come), stored, same (already had it), differs, no_original, bad_chunk, bad_image, error.",
		}, []string{"result"})}
	if reg != nil {
		reg.MustRegister(d.results)
	}
	return d
}

// walletIssuers are the issuers marked wallet: the refund step sends a refund without a card number
// to the wallet its original was paid from.
func walletIssuers(cfg *config.Config) map[string]bool {
	w := map[string]bool{}
	for _, is := range cfg.Issuers {
		if is.Wallet {
			w[is.ID] = true
		}
	}
	return w
}

// handle answers one 0820 chunk by setting t.Response.
func (d *signatureDesk) handle(ctx context.Context, t *txn.Transaction) {
	if d == nil || d.q == nil {
		t.End(txn.RCSystemError, "e-signatures need the ledger")
		return
	}
	if mid, ok := d.terminals[t.TerminalID]; !ok || mid != t.MerchantID {
		t.End(txn.RCInvalidMerchant, "unknown terminal, or not the merchant's in field 42")
		return
	}
	t.AcquirerID = d.acquirerID
	orig := t.OriginalKey()
	if orig == "" {
		d.end(t, "bad_chunk", txn.RCFormatError, "an e-signature names its transaction in field 90")
		return
	}
	key := t.TerminalID + "|" + orig
	now := time.Now()

	d.mu.Lock()
	s := d.sessions[key]
	if s != nil && now.Sub(s.started) > signatureSessionTTL {
		delete(d.sessions, key)
		s = nil
	}
	switch {
	case s != nil && t.ChunkNumber == s.next-1 && t.ChunkLast == s.last && bytes.Equal(t.SignatureChunk, s.lastChunk):
		// A repeat of the chunk just taken: the terminal did not get our answer.
		answer := s.answered
		d.mu.Unlock()
		if answer == "" || answer == txn.RCApproved {
			d.end(t, "chunk", txn.RCApproved, "repeated e-signature chunk")
		} else {
			d.end(t, "repeat", answer, "repeated final e-signature chunk")
		}
		return
	case t.ChunkNumber == 1:
		s = d.open(key, t.ChunkLast, now)
	case s == nil || s.answered != "" || t.ChunkNumber != s.next || t.ChunkLast != s.last:
		if s != nil && s.answered == "" {
			delete(d.sessions, key)
		}
		d.mu.Unlock()
		d.end(t, "bad_chunk", txn.RCFormatError, "e-signature chunk out of order: start again at chunk 1")
		return
	}
	if s.buf.Len()+len(t.SignatureChunk) > ledger.MaxSignatureBytes {
		delete(d.sessions, key)
		d.mu.Unlock()
		d.end(t, "bad_image", txn.RCFormatError, "e-signature image over 256 KiB")
		return
	}
	s.buf.Write(t.SignatureChunk)
	s.next++
	s.lastChunk = append(s.lastChunk[:0], t.SignatureChunk...)
	if t.ChunkNumber < t.ChunkLast {
		d.mu.Unlock()
		d.end(t, "chunk", txn.RCApproved, "e-signature chunk taken")
		return
	}
	image := append([]byte(nil), s.buf.Bytes()...)
	d.mu.Unlock()

	code, result, reason := d.store(ctx, t.TerminalID, orig, image)
	d.mu.Lock()
	if d.sessions[key] == s {
		if code == txn.RCSystemError {
			// Let the terminal send the last chunk again once the ledger is back.
			s.next--
			s.buf.Truncate(s.buf.Len() - len(t.SignatureChunk))
			s.lastChunk = s.lastChunk[:0]
		} else {
			s.answered = code
		}
	}
	d.mu.Unlock()
	d.end(t, result, code, reason)
}

// open starts an assembly; d.mu is held.
func (d *signatureDesk) open(key string, last int, now time.Time) *signatureSession {
	if _, ok := d.sessions[key]; !ok && len(d.sessions) >= maxSignatureSessions {
		oldest, at := "", time.Time{}
		for k, s := range d.sessions {
			if oldest == "" || s.started.Before(at) {
				oldest, at = k, s.started
			}
		}
		delete(d.sessions, oldest)
	}
	s := &signatureSession{started: now, next: 1, last: last}
	d.sessions[key] = s
	return s
}

// store checks the assembled image is a PNG and keeps it with the original's entry.
func (d *signatureDesk) store(ctx context.Context, terminal, orig string, image []byte) (code, result, reason string) {
	cfg, err := png.DecodeConfig(bytes.NewReader(image))
	if err == nil && (cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxSignaturePixels) {
		err = errors.New("image dimensions out of range")
	}
	if err == nil {
		_, err = png.Decode(bytes.NewReader(image))
	}
	if err != nil {
		return txn.RCFormatError, "bad_image", "e-signature is not a PNG image: " + err.Error()
	}
	out, _, err := ledger.StoreSignature(ctx, d.q, terminal, orig, image)
	switch {
	case errors.Is(err, ledger.ErrNotPNG):
		return txn.RCFormatError, "bad_image", err.Error()
	case err != nil:
		d.log.Error("storing an e-signature", zap.String("tid", terminal), zap.String("original", orig), zap.Error(err))
		return txn.RCSystemError, "error", "ledger unavailable"
	}
	switch out {
	case ledger.SignatureStored:
		return txn.RCApproved, "stored", "e-signature stored with the transaction"
	case ledger.SignatureSame:
		return txn.RCApproved, "same", "the transaction has this e-signature already"
	case ledger.SignatureDiffers:
		return txn.RCInvalidTxn, "differs", "the transaction has another e-signature; a dispute record does not change"
	default:
		return txn.RCNoRecord, "no_original", "no approved transaction of this terminal to sign for"
	}
}

func (d *signatureDesk) end(t *txn.Transaction, result, code, reason string) {
	d.results.WithLabelValues(result).Inc()
	t.End(code, reason)
}
