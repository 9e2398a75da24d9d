// Package pgtest gives tests a real PostgreSQL database: a fresh, empty database per test (with the
// ledger migrations applied unless asked not to), on a shared cluster.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		db := pgtest.NewDatabase(t)          // db.Owner, db.App, db.Auditor are URLs
//		...
//	}
//
// The cluster is the one named by POSWITCH_TEST_PG_DIR (+ POSWITCH_TEST_PG_PORT, optional), started
// or reused through pgcluster (`make test` starts one under ./var/pgtest and exports these), or else
// a private cluster Run starts once per test binary in a temporary directory and stops at the end.
// A test that cannot get its database fails; it never skips.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/ledger/pgcluster"
	"github.com/poswitch/poswitch/ledger/schema"
)

// Environment variables naming a shared test cluster.
const (
	EnvDir  = "POSWITCH_TEST_PG_DIR"
	EnvPort = "POSWITCH_TEST_PG_PORT"
)

// setupTimeout bounds starting a cluster and creating one database.
const setupTimeout = 2 * time.Minute

// DB is one test database: connection URLs for its three roles.
type DB struct {
	Name    string
	Owner   string // runs migrations, owns the tables
	App     string // poswitch_app: what the switch connects as
	Auditor string // read-only, views only
	Super   string // postgres superuser, for tests that need it (e.g. to stop connections)
}

var (
	mu       sync.Mutex
	cluster  *pgcluster.Cluster
	private  string // temp dir of a private cluster, removed by Run
	startErr error
)

// Run runs the tests of one package with a cluster available, and stops a private cluster afterwards.
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if cluster != nil && private != "" {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		os.RemoveAll(private)
	}
	return code
}

// Cluster returns the cluster the tests run on, starting it on first use.
func Cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	c, err := getCluster()
	if err != nil {
		t.Fatalf("pgtest: no PostgreSQL for this test: %v", err)
	}
	return c
}

func getCluster() (*pgcluster.Cluster, error) {
	mu.Lock()
	defer mu.Unlock()
	if cluster != nil || startErr != nil {
		return cluster, startErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	dir := os.Getenv(EnvDir)
	port := 0
	if p := os.Getenv(EnvPort); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			startErr = fmt.Errorf("%s=%q is not a port number", EnvPort, p)
			return nil, startErr
		}
		port = n
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "poswitch-pgtest-")
		if err != nil {
			startErr = fmt.Errorf("creating a temporary cluster directory: %w", err)
			return nil, startErr
		}
		if err := os.Chmod(d, 0o755); err != nil {
			startErr = err
			return nil, err
		}
		dir, private = d, d
	}
	cluster, startErr = pgcluster.Start(ctx, dir, port, zap.NewNop())
	if startErr != nil && private != "" {
		os.RemoveAll(private)
		private = ""
	}
	return cluster, startErr
}

// Option changes what NewDatabase prepares.
type Option func(*options)

type options struct{ migrate bool }

// WithoutMigrations leaves the new database empty (for tests of the migrations themselves).
func WithoutMigrations() Option { return func(o *options) { o.migrate = false } }

// NewDatabase creates a fresh database for this test, migrated unless WithoutMigrations is given,
// and drops it when the test ends.
func NewDatabase(t testing.TB, opts ...Option) DB {
	t.Helper()
	o := options{migrate: true}
	for _, f := range opts {
		f(&o)
	}
	c := Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "t_" + hex.EncodeToString(rnd[:])
	super := c.URL(pgcluster.SuperUser, "postgres")
	conn, err := pgx.Connect(ctx, super)
	if err != nil {
		t.Fatalf("pgtest: connecting to the cluster: %v", err)
	}
	defer conn.Close(ctx)
	if err := pgcluster.CreateDatabase(ctx, conn, name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	db := DB{
		Name:    name,
		Owner:   c.URL(pgcluster.OwnerRole, name),
		App:     c.URL(pgcluster.AppRole, name),
		Auditor: c.URL(pgcluster.AuditRole, name),
		Super:   c.URL(pgcluster.SuperUser, name),
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, super)
		if err != nil {
			t.Errorf("pgtest: dropping %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
			t.Errorf("pgtest: dropping %s: %v", name, err)
		}
	})
	if o.migrate {
		if err := schema.Migrate(ctx, db.Owner); err != nil {
			t.Fatalf("pgtest: migrating %s: %v", name, err)
		}
	}
	return db
}

// Pool opens a connection pool on url (one of a DB's role URLs) and closes it when the test ends,
// before the database is dropped.
func Pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pgtest: opening a pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
