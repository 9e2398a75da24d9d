package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sort"
	"time"
)

// Tamper evidence: every committed batch is sealed into its chain. A batch's hash covers the
// previous batch's hash, the chain name and sequence number, and every column of every entry and
// posting in the batch, so that changing, adding or removing any of them — or a whole batch in the
// middle of a chain — changes every hash after it. `poswitch ledger verify` recomputes them from the
// auditor views.

// hashVersion names the encoding; change it if the encoding ever changes.
const hashVersion = "poswitch-ledger-batch-v1"

// Entry flags stored in journal_entry.flags.
const (
	flagNotFound  = 1
	flagCancelled = 2
)

// entryRecord is a journal entry as stored: the writer hashes it before writing, verify after
// reading. Keep the two sides in step by using this type for both.
type entryRecord struct {
	ID          EntryID
	Key         string
	Kind        string
	Status      string
	Reason      string
	Flags       int16
	OriginalKey string
	Consumes    string // "" is stored as NULL
	Merchant    string
	Terminal    string
	Issuer      string
	Currency    string
	Amount      int64
	Fee         int64
	Cycle       int64
	STAN        string
	RRN         string
	AuthCode    string
	EntryMode   string
	PANMasked   string
	PANHash     []byte
	ContentHash []byte
	At          time.Time
	Postings    []postingRecord
	// IssuerSTAN and IssuerTime (the issuer trace) are stored with the entry but not sealed:
	// batchHash leaves them out, so entries written before they existed verify unchanged.
	IssuerSTAN string
	IssuerTime string
}

type postingRecord struct {
	Seq      int16
	Account  string
	Currency string
	Amount   int64
	Cycle    int64
}

type hasher struct {
	h   hash.Hash
	buf [8]byte
}

func (w *hasher) str(s string) { w.bytes([]byte(s)) }
func (w *hasher) bytes(b []byte) {
	w.int(int64(len(b)))
	w.h.Write(b)
}
func (w *hasher) int(n int64) {
	binary.BigEndian.PutUint64(w.buf[:], uint64(n))
	w.h.Write(w.buf[:])
}

// batchHash seals one batch. Entries are hashed in id order, postings in seq order, whatever order
// they are given in.
func batchHash(prev []byte, chain string, seq int64, entries []*entryRecord) []byte {
	sort.Slice(entries, func(i, j int) bool { return bytes.Compare(entries[i].ID[:], entries[j].ID[:]) < 0 })
	w := &hasher{h: sha256.New()}
	w.str(hashVersion)
	w.bytes(prev)
	w.str(chain)
	w.int(seq)
	w.int(int64(len(entries)))
	for _, e := range entries {
		w.h.Write(e.ID[:])
		for _, s := range []string{e.Key, e.Kind, e.Status, e.Reason, e.OriginalKey, e.Consumes, e.Merchant,
			e.Terminal, e.Issuer, e.Currency, e.STAN, e.RRN, e.AuthCode, e.EntryMode, e.PANMasked} {
			w.str(s)
		}
		w.int(int64(e.Flags))
		w.int(e.Amount)
		w.int(e.Fee)
		w.int(e.Cycle)
		w.bytes(e.PANHash)
		w.bytes(e.ContentHash)
		w.int(e.At.UnixMicro())
		sort.Slice(e.Postings, func(i, j int) bool { return e.Postings[i].Seq < e.Postings[j].Seq })
		w.int(int64(len(e.Postings)))
		for _, p := range e.Postings {
			w.int(int64(p.Seq))
			w.str(p.Account)
			w.str(p.Currency)
			w.int(p.Amount)
			w.int(p.Cycle)
		}
	}
	return w.h.Sum(nil)
}
