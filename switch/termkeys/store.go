// Package termkeys keeps the working keys of terminals that have a master key (TMK): it rolls them
// at sign-on and key change through the HSM (fresh TPK and TAK, exported under the TMK for the
// terminal), keeps them as LMK key blocks in PostgreSQL so every node and a restarted node use the
// keys the terminal holds, and verifies and generates the MACs of the terminal's messages.
package termkeys

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poswitch/poswitch/hsm"
)

// maxCachedKeysAge is how long a node trusts its cached copy of a terminal's keys before reading
// them again: another node may have rolled them. A MAC that fails under the cached TAK re-reads at
// once, so a MAC terminal never waits this long.
const maxCachedKeysAge = 5 * time.Second

// Keys are one terminal's current working keys, as key blocks under the switch's LMK.
type Keys struct {
	TPK, TAK       hsm.KeyBlock
	TPKKCV, TAKKCV hsm.KCV
	// Generation counts the terminal's key changes (1 after the first sign-on).
	Generation int64
}

// DB is what the store needs of PostgreSQL (a *pgxpool.Pool has it).
type DB interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type cachedKeys struct {
	keys   Keys
	found  bool
	readAt time.Time
}

// Store is the terminal_keys table (migration 00009) behind a small cache. It holds only terminals
// the configuration gives a master key, so the cache is bounded by the configuration.
type Store struct {
	db    DB
	now   func() time.Time
	mu    sync.RWMutex
	cache map[string]cachedKeys
}

// NewStore reads and writes terminal keys through db.
func NewStore(db DB) *Store {
	return &Store{db: db, now: time.Now, cache: map[string]cachedKeys{}}
}

// Current returns the terminal's working keys, from the cache when it is fresh; found is false for
// a terminal that never signed on.
func (s *Store) Current(ctx context.Context, tid string) (k Keys, found bool, err error) {
	s.mu.RLock()
	c, ok := s.cache[tid]
	s.mu.RUnlock()
	if ok && s.now().Sub(c.readAt) < maxCachedKeysAge {
		return c.keys, c.found, nil
	}
	return s.Reload(ctx, tid)
}

// Reload reads the terminal's keys from PostgreSQL and caches them.
func (s *Store) Reload(ctx context.Context, tid string) (Keys, bool, error) {
	var k Keys
	var tpk, tak, tpkKCV, takKCV string
	found := true
	err := s.db.QueryRow(ctx, `SELECT tpk, tak, tpk_kcv, tak_kcv, generation FROM terminal_keys WHERE terminal = $1`, tid).
		Scan(&tpk, &tak, &tpkKCV, &takKCV, &k.Generation)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		found = false
	case err != nil:
		return Keys{}, false, fmt.Errorf("reading the keys of terminal %s: %w", tid, err)
	default:
		k.TPK, k.TAK, k.TPKKCV, k.TAKKCV = hsm.KeyBlock(tpk), hsm.KeyBlock(tak), hsm.KCV(tpkKCV), hsm.KCV(takKCV)
	}
	s.put(tid, k, found)
	return k, found, nil
}

// Roll makes k the terminal's current keys (code is field 70 of the 0800 that asked: 001 or 101)
// and returns them with their generation.
func (s *Store) Roll(ctx context.Context, tid string, k Keys, code string) (Keys, error) {
	err := s.db.QueryRow(ctx, `
		INSERT INTO terminal_keys (terminal, tpk, tak, tpk_kcv, tak_kcv, rolled_by)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (terminal) DO UPDATE SET tpk = EXCLUDED.tpk, tak = EXCLUDED.tak,
			tpk_kcv = EXCLUDED.tpk_kcv, tak_kcv = EXCLUDED.tak_kcv, rolled_by = EXCLUDED.rolled_by,
			generation = terminal_keys.generation + 1, rolled_at = clock_timestamp()
		RETURNING generation`,
		tid, string(k.TPK), string(k.TAK), string(k.TPKKCV), string(k.TAKKCV), code).Scan(&k.Generation)
	if err != nil {
		return Keys{}, fmt.Errorf("storing the keys of terminal %s: %w", tid, err)
	}
	s.put(tid, k, true)
	return k, nil
}

func (s *Store) put(tid string, k Keys, found bool) {
	s.mu.Lock()
	// A concurrent reader must not put back an older generation over a roll.
	if old, ok := s.cache[tid]; !ok || !old.found || !found || k.Generation >= old.keys.Generation {
		s.cache[tid] = cachedKeys{keys: k, found: found, readAt: s.now()}
	}
	s.mu.Unlock()
}
