package ledger

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// EntryID is a journal entry's id: a UUIDv7 made by the writer, so no database sequence sits on
// the write path (and ids stay unique across switch nodes and, later, Citus shards).
type EntryID [16]byte

// String is the canonical UUID form.
func (id EntryID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return string(b[:])
}

// IsZero says whether the id is unset.
func (id EntryID) IsZero() bool { return id == EntryID{} }

// MarshalText makes ids print as UUIDs in JSON.
func (id EntryID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// ParseEntryID parses the canonical UUID form.
func ParseEntryID(s string) (EntryID, error) {
	var id EntryID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("entry id %q: not a UUID", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, fmt.Errorf("entry id %q: %w", s, err)
	}
	return id, nil
}

// idSource makes UUIDv7s that increase within one process (a 12-bit counter fills rand_a when
// several ids share a millisecond), so entries sort in the order they were booked.
type idSource struct {
	mu     sync.Mutex
	lastMS int64
	seq    uint16
}

func (s *idSource) next() EntryID {
	var id EntryID
	if _, err := rand.Read(id[8:]); err != nil {
		panic("ledger: no randomness for entry ids: " + err.Error())
	}
	s.mu.Lock()
	ms := time.Now().UnixMilli()
	if ms <= s.lastMS {
		s.seq++
		if s.seq > 0x0fff { // counter exhausted: borrow the next millisecond
			s.lastMS++
			s.seq = 0
		}
		ms = s.lastMS
	} else {
		s.lastMS, s.seq = ms, 0
	}
	seq := s.seq
	s.mu.Unlock()
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], uint64(ms))
	copy(id[0:6], t[2:8])
	id[6] = 0x70 | byte(seq>>8)
	id[7] = byte(seq)
	id[8] = 0x80 | (id[8] & 0x3f)
	return id
}
