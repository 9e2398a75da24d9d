package pgcluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"
)

// TestStartCreatesReusesAndStops starts a cluster of its own (not the shared test cluster): first
// start initialises it, a second Start reuses the running server, Stop stops it, and a Start after
// that brings the same data back.
func TestStartCreatesReusesAndStops(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	defer os.RemoveAll(dir)
	home := filepath.Join(dir, "pg")
	log := zaptest.NewLogger(t)
	c, err := Start(ctx, home, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if !c.StartedHere() || c.Port == 0 {
		t.Errorf("first start: started here %v, port %d", c.StartedHere(), c.Port)
	}
	for _, role := range []string{OwnerRole, AppRole, AuditRole} {
		conn, err := pgx.Connect(ctx, c.URL(role, DefaultDB))
		if err != nil {
			t.Fatalf("connecting as %s: %v", role, err)
		}
		conn.Close(ctx)
	}
	conn, err := pgx.Connect(ctx, c.URL(OwnerRole, DefaultDB))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	var fsync string
	if err := conn.QueryRow(ctx, `SHOW fsync`).Scan(&fsync); err != nil || fsync != "on" {
		t.Errorf("fsync = %q (%v), want on", fsync, err)
	}
	conn.Close(ctx)

	again, err := Start(ctx, home, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	if again.StartedHere() || again.Port != c.Port {
		t.Errorf("second start: started here %v port %d, want reuse of port %d", again.StartedHere(), again.Port, c.Port)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	back, err := Start(ctx, home, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Stop()
	conn, err = pgx.Connect(ctx, back.URL(OwnerRole, DefaultDB))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var x int
	if err := conn.QueryRow(ctx, `SELECT x FROM kept`).Scan(&x); err != nil || x != 42 {
		t.Errorf("data after restart: %d %v", x, err)
	}
}
