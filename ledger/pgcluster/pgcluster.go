// Package pgcluster starts and stops a private PostgreSQL 15 cluster for development, tests and
// `make run`: one data directory, a private Unix socket directory, TCP on 127.0.0.1 only, and the
// three poswitch roles (owner, application, auditor) plus the poswitch database.
//
// Layout of the cluster home directory `dir`:
//
//	dir/data          PGDATA (initdb'd on first Start)
//	dir/run           Unix socket directory (or a short directory under /tmp if dir is too long)
//	dir/postgres.log  server log
//	dir/port          the TCP port the cluster was last started on
//	dir/.lock         held while Start inspects or starts the cluster, so concurrent Starts are safe
//
// Authentication is "trust" for local and loopback connections: the cluster listens on 127.0.0.1
// only and exists for development and tests. Production deployments bring their own server and put
// passwords in the URLs; the roles and grants are the same.
package pgcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Role and database names created in every cluster.
const (
	SuperUser  = "postgres"
	OwnerRole  = "poswitch_owner" // runs migrations and owns the tables
	AppRole    = "poswitch_app"   // the switch: INSERT/SELECT on what the ledger writer needs
	AuditRole  = "auditor"        // read-only SELECT on the documented views
	DefaultDB  = "poswitch"
	binDir     = "/usr/local/bin"
	osUser     = "postgres"
	maxSockLen = 100 // sun_path is 108 bytes including ".s.PGSQL.nnnnn"
)

// startTimeout bounds how long pg_ctl waits for the server to accept connections.
const startTimeout = 60 * time.Second

// Cluster is a running private PostgreSQL cluster.
type Cluster struct {
	Dir         string // cluster home
	DataDir     string
	SocketDir   string
	Port        int
	startedHere bool
	log         *zap.Logger
}

// Start makes sure a cluster exists in dir and is running, creating it on first use. It reuses a
// running cluster (whatever port it runs on) and an existing stopped one. Port 0 reuses the port the
// cluster last ran on if it is free, else picks a free port.
func Start(ctx context.Context, dir string, port int, log *zap.Logger) (*Cluster, error) {
	if log == nil {
		log = zap.NewNop()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: resolving %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pgcluster: creating %s: %w", dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	c := &Cluster{Dir: dir, DataDir: filepath.Join(dir, "data"), log: log}
	c.SocketDir = socketDir(dir)
	asRoot := os.Geteuid() == 0
	if asRoot {
		if err := checkTraversable(dir); err != nil {
			return nil, err
		}
	}

	if _, err := os.Stat(filepath.Join(c.DataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, asRoot); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("pgcluster: inspecting %s: %w", c.DataDir, err)
	}

	if p, ok := c.runningPort(); ok {
		c.Port = p
		log.Info("reusing running PostgreSQL cluster", zap.String("dir", dir), zap.Int("port", p))
	} else {
		if port == 0 {
			port = c.lastPort()
			if port == 0 || !portFree(port) {
				if port, err = freePort(); err != nil {
					return nil, err
				}
			}
		}
		c.Port = port
		if err := c.start(ctx, asRoot); err != nil {
			return nil, err
		}
		c.startedHere = true
		_ = os.WriteFile(filepath.Join(dir, "port"), []byte(strconv.Itoa(port)+"\n"), 0o644)
		log.Info("started PostgreSQL cluster", zap.String("dir", dir), zap.Int("port", port))
	}
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	if err := c.ensureRolesAndDB(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// URL is a connection URL for role to database db over TCP on 127.0.0.1.
func (c *Cluster) URL(role, db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(role), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), Path: "/" + db}
	u.RawQuery = "sslmode=disable"
	return u.String()
}

// StartedHere says whether this Start call started the server (false when it reused a running one).
func (c *Cluster) StartedHere() bool { return c.startedHere }

// Stop stops the server (fast shutdown: clients are disconnected, committed work is kept).
func (c *Cluster) Stop() error {
	out, err := c.cmd(context.Background(), os.Geteuid() == 0, "pg_ctl", "stop", "-D", c.DataDir, "-m", "fast", "-w", "-t", "60").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgcluster: stopping %s: %w: %s", c.DataDir, err, strings.TrimSpace(string(out)))
	}
	c.log.Info("stopped PostgreSQL cluster", zap.String("dir", c.Dir))
	return nil
}

func (c *Cluster) initdb(ctx context.Context, asRoot bool) error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: creating %s: %w", c.DataDir, err)
	}
	if asRoot {
		if err := chownTree(c.Dir); err != nil {
			return err
		}
	}
	c.log.Info("initializing PostgreSQL cluster", zap.String("dir", c.DataDir))
	out, err := c.cmd(ctx, asRoot, "initdb", "-D", c.DataDir, "-U", SuperUser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-instructions").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgcluster: initdb %s: %w: %s", c.DataDir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// serverSettings are for a fast development box. fsync and synchronous_commit stay on: an approval
// is only as good as the commit under it.
func (c *Cluster) serverSettings() []string {
	return []string{
		"-k", c.SocketDir,
		"-p", strconv.Itoa(c.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		"-c", "full_page_writes=on",
		"-c", "max_connections=300",
		"-c", "shared_buffers=256MB",
		"-c", "wal_buffers=16MB",
		"-c", "max_wal_size=2GB",
		"-c", "checkpoint_timeout=15min",
		"-c", "work_mem=16MB",
		"-c", "maintenance_work_mem=128MB",
		"-c", "log_min_messages=warning",
		"-c", "log_min_error_statement=panic",
		"-c", "max_locks_per_transaction=256",
	}
}

func (c *Cluster) start(ctx context.Context, asRoot bool) error {
	if err := os.MkdirAll(c.SocketDir, 0o755); err != nil {
		return fmt.Errorf("pgcluster: creating socket dir %s: %w", c.SocketDir, err)
	}
	logFile := filepath.Join(c.Dir, "postgres.log")
	if asRoot {
		if err := chownTree(c.SocketDir); err != nil {
			return err
		}
		if f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			f.Close()
			_ = chown(logFile)
		}
	}
	opts := strings.Join(quoteAll(c.serverSettings()), " ")
	out, err := c.cmd(ctx, asRoot, "pg_ctl", "start", "-D", c.DataDir, "-l", logFile, "-w",
		"-t", strconv.Itoa(int(startTimeout/time.Second)), "-o", opts).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl start %s on port %d: %w: %s (see %s)", c.DataDir, c.Port, err,
			strings.TrimSpace(string(out)), logFile)
	}
	return nil
}

// runningPort reads postmaster.pid; the cluster is running if the pid is alive.
func (c *Cluster) runningPort() (int, bool) {
	f, err := os.Open(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 4 {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, false
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0, false
	}
	if len(lines) >= 5 {
		if sd := strings.TrimSpace(lines[4]); sd != "" {
			c.SocketDir = sd
		}
	}
	return port, true
}

func (c *Cluster) lastPort() int {
	b, err := os.ReadFile(filepath.Join(c.Dir, "port"))
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		conn, err := pgx.Connect(ctx, c.URL(SuperUser, "postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("pgcluster: server on port %d not accepting connections: %w", c.Port, lastErr)
}

// ensureRolesAndDB creates the three roles and the poswitch database if missing. Table grants are
// made by the ledger migrations, which run as the owner.
func (c *Cluster) ensureRolesAndDB(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.URL(SuperUser, "postgres"))
	if err != nil {
		return fmt.Errorf("pgcluster: connecting as %s: %w", SuperUser, err)
	}
	defer conn.Close(ctx)
	for _, r := range []string{OwnerRole, AppRole, AuditRole} {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, r).Scan(&exists); err != nil {
			return fmt.Errorf("pgcluster: looking up role %s: %w", r, err)
		}
		if !exists {
			attrs := "LOGIN"
			if r == OwnerRole {
				attrs = "LOGIN CREATEDB"
			}
			if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s %s`, pgx.Identifier{r}.Sanitize(), attrs)); err != nil && !isDuplicate(err) {
				return fmt.Errorf("pgcluster: creating role %s: %w", r, err)
			}
		}
	}
	return CreateDatabase(ctx, conn, DefaultDB)
}

// CreateDatabase creates db owned by the owner role if it does not exist; conn must be a superuser
// connection. Exported for pgtest.
func CreateDatabase(ctx context.Context, conn *pgx.Conn, db string) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&exists); err != nil {
		return fmt.Errorf("pgcluster: looking up database %s: %w", db, err)
	}
	if exists {
		return nil
	}
	id := pgx.Identifier{db}.Sanitize()
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, id, OwnerRole)); err != nil && !isDuplicate(err) {
		return fmt.Errorf("pgcluster: creating database %s: %w", db, err)
	}
	// The schema public belongs to the database owner so migrations can create and grant in it;
	// nobody else may create objects there.
	cfg := conn.Config().Copy()
	cfg.Database = db
	dconn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pgcluster: connecting to new database %s: %w", db, err)
	}
	defer dconn.Close(ctx)
	for _, s := range []string{
		fmt.Sprintf(`ALTER SCHEMA public OWNER TO %s`, OwnerRole),
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
		fmt.Sprintf(`GRANT USAGE ON SCHEMA public TO %s, %s`, AppRole, AuditRole),
		fmt.Sprintf(`REVOKE ALL ON DATABASE %s FROM PUBLIC`, id),
		fmt.Sprintf(`GRANT CONNECT ON DATABASE %s TO %s, %s, %s`, id, OwnerRole, AppRole, AuditRole),
	} {
		if _, err := dconn.Exec(ctx, s); err != nil {
			return fmt.Errorf("pgcluster: preparing database %s (%s): %w", db, s, err)
		}
	}
	return nil
}

func isDuplicate(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "already exists") || strings.Contains(err.Error(), "23505"))
}

// cmd runs a PostgreSQL binary, as the postgres OS user when we are root (initdb and the server
// refuse to run as root).
func (c *Cluster) cmd(ctx context.Context, asRoot bool, name string, args ...string) *exec.Cmd {
	bin := filepath.Join(binDir, name)
	var cmd *exec.Cmd
	if asRoot {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", osUser, "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	// The server must outlive the context that started it; pg_ctl detaches it itself.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

func socketDir(dir string) string {
	d := filepath.Join(dir, "run")
	if len(d)+len("/.s.PGSQL.65535") <= maxSockLen {
		return d
	}
	// A long path cannot hold a Unix socket; use a short per-cluster directory in /tmp instead.
	h := fnv32(dir)
	return filepath.Join(os.TempDir(), fmt.Sprintf("poswitch-pg-%08x", h))
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " '\"\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: picking a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: opening lock in %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("pgcluster: locking %s: %w", dir, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func postgresIDs() (int, int, error) {
	u, err := user.Lookup(osUser)
	if err != nil {
		return 0, 0, fmt.Errorf("pgcluster: looking up OS user %s: %w", osUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

func chown(path string) error {
	uid, gid, err := postgresIDs()
	if err != nil {
		return err
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("pgcluster: chown %s: %w", path, err)
	}
	return nil
}

func chownTree(root string) error {
	uid, gid, err := postgresIDs()
	if err != nil {
		return err
	}
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("pgcluster: chown %s: %w", p, err)
		}
		return nil
	})
}

// checkTraversable fails early, with a clear message, when the postgres OS user cannot reach dir
// (for example a checkout under /root, which is mode 0700).
func checkTraversable(dir string) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgcluster: inspecting %s: %w", p, err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pgcluster: the %s OS user cannot enter %s (mode %v); put the cluster elsewhere", osUser, p, st.Mode().Perm())
		}
		if p == "/" {
			return nil
		}
	}
}
