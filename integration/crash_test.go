package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/txn"
)

// buildPoswitch compiles the binary once per test run.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func poswitchBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "poswitch-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "poswitch")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/poswitch").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort asks the kernel for a port nobody holds right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// switchProcess runs `poswitch switch` as a child process and waits for it to listen.
func switchProcess(t *testing.T, configPath, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(poswitchBinary(t), "switch", "--config", configPath)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		// Keep the pipe drained; the lines are the process's JSON log.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatalf("switch did not listen on %s within 30s", addr)
	return nil
}

func TestSIGKILLMidLoadLosesNoApprovalAndBooksNothingTwice(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 8, issuerLatency: 2 * time.Millisecond})
	// The in-process node of the stack is not used: a real process takes its place on another port,
	// with the same issuers and database.
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	yaml := strings.Replace(s.yaml, "address: 127.0.0.1:0", "address: "+addr, 1)
	cfgPath := filepath.Join(t.TempDir(), "switch.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	proc := switchProcess(t, cfgPath, addr)

	type sent struct {
		key string
		rc  string // "" when no answer came (in flight at the kill)
	}
	var mu sync.Mutex
	var results []sent
	var stop atomic.Bool
	var wg sync.WaitGroup
	pick := append(append([]cards.Card{}, cards.Load()...), cards.ByOutcome("51")...)
	for ti, term := range s.terminals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := terminalsim.Dial(ctx, addr, "iso87a", false)
			cancel()
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.Close()
			for i := 1; !stop.Load(); i++ {
				card := pick[(ti+i)%len(pick)]
				req := terminalsim.NewPurchase(term, card, int64(100+i), card.Currency, i)
				f7, _ := req.GetString(7)
				f11, _ := req.GetString(11)
				r := sent{key: txn.IdentityKey("10000000001", term.TID, f11, f7, txn.MTIClass("0200"))}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := c.Send(ctx, req)
				cancel()
				if err == nil {
					r.rc, _ = resp.GetString(39)
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				if err != nil {
					return // the switch died under this terminal
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	stop.Store(true)
	wg.Wait()

	// Restart on the same database; it must come up and serve.
	proc = switchProcess(t, cfgPath, addr)
	defer func() { proc.Process.Signal(syscall.SIGTERM); proc.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := terminalsim.Dial(ctx, addr, "iso87a", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	after, err := c.Send(ctx, terminalsim.NewPurchase(s.terminals[0], cards.Load()[0], 777, cards.Load()[0].Currency, 999999))
	if err != nil {
		t.Fatalf("restarted switch: %v", err)
	}
	if rc, _ := after.GetString(39); rc != "00" {
		t.Fatalf("restarted switch answered %s", rc)
	}

	conn, err := pgx.Connect(ctx, s.db.Owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT txn_key, count(*) FROM journal_entry WHERE kind = 'purchase' GROUP BY txn_key`)
	if err != nil {
		t.Fatal(err)
	}
	booked := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		booked[k] = n
	}
	approved, declined, unanswered := 0, 0, 0
	answered := map[string]bool{}
	for _, r := range results {
		answered[r.key] = r.rc != ""
		switch {
		case r.rc == "00":
			approved++
			if booked[r.key] != 1 {
				t.Errorf("approval %s received by the terminal is booked %d times", r.key, booked[r.key])
			}
		case r.rc == "":
			unanswered++
		default:
			declined++
			if booked[r.key] != 0 {
				t.Errorf("decline %s (%s) is booked", r.key, r.rc)
			}
		}
	}
	// Booked but never heard by a terminal: only requests in flight at the kill (approved by the
	// issuer and committed, answer lost with the process; reversing them is store-and-forward's job).
	extra := 0
	for k := range booked {
		if ok, seen := answered[k]; seen && !ok {
			extra++
		} else if !seen && !strings.Contains(k, "|999999|") {
			t.Errorf("booked %s was never sent by a terminal", k)
		}
	}
	t.Logf("before the kill: %d approved, %d declined, %d unanswered; %d of the unanswered were booked", approved, declined, unanswered, extra)
	if approved < 100 {
		t.Errorf("only %d approvals before the kill: the load did not run", approved)
	}
	if unanswered == 0 {
		t.Log("no request was in flight at the kill")
	}
}
