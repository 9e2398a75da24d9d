package linkhost_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/poswitch/poswitch/simulator/linkhost"
	"github.com/poswitch/poswitch/specs"
)

// start runs a host whose handler answers "echo:<body>", stays silent on "drop", closes the
// connection on "close" and answers "slow" after a delay.
func start(t *testing.T, maxConns int) *linkhost.Host {
	t.Helper()
	h, err := linkhost.New(linkhost.Config{Name: "test-host", Addr: "127.0.0.1:0", MaxConns: maxConns, MaxInFlightPerConn: 8,
		Handler: func(body []byte) linkhost.Answer {
			switch string(body) {
			case "drop":
				return linkhost.Answer{}
			case "close":
				return linkhost.Answer{Close: true}
			case "slow":
				return linkhost.Answer{Body: []byte("echo:slow"), Delay: 50 * time.Millisecond}
			}
			return linkhost.Answer{Body: append([]byte("echo:"), body...)}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func dial(t *testing.T, h *linkhost.Host) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", h.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc, bufio.NewReader(nc)
}

func send(t *testing.T, nc net.Conn, bodies ...string) {
	t.Helper()
	var out []byte
	for _, b := range bodies {
		var err error
		if out, err = specs.AppendFrame(out, []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nc.Write(out); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	body, err := specs.ReadFrame(r, nil)
	if err != nil {
		t.Fatalf("reading an answer: %v", err)
	}
	return string(body)
}

func TestAnswersWithoutDelayLeaveInRequestOrder(t *testing.T) {
	h := start(t, 4)
	nc, r := dial(t, h)
	send(t, nc, "slow", "1", "drop", "2", "3")
	for _, want := range []string{"echo:1", "echo:2", "echo:3", "echo:slow"} {
		if got := read(t, r); got != want {
			t.Fatalf("answer %q, want %q", got, want)
		}
	}
	if got := h.Connections(); got != 1 {
		t.Fatalf("Connections() = %d, want 1", got)
	}
}

func TestCloseAnswerClosesTheConnection(t *testing.T) {
	h := start(t, 4)
	nc, r := dial(t, h)
	send(t, nc, "close", "after")
	if _, err := specs.ReadFrame(r, nil); !errors.Is(err, io.EOF) {
		t.Fatalf("read after close: %v, want EOF", err)
	}
}

func TestConnectionsBeyondMaxConnsAreClosed(t *testing.T) {
	h := start(t, 1)
	first, r := dial(t, h)
	send(t, first, "a")
	if got := read(t, r); got != "echo:a" {
		t.Fatalf("answer %q", got)
	}
	second, r2 := dial(t, h)
	send(t, second, "b")
	if _, err := specs.ReadFrame(r2, nil); err == nil {
		t.Fatal("a connection beyond MaxConns was answered")
	}
}

func TestCloseEndsServingAndIsIdempotent(t *testing.T) {
	h := start(t, 4)
	nc, r := dial(t, h)
	send(t, nc, "a")
	_ = read(t, r)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := specs.ReadFrame(r, nil); err == nil {
		t.Fatal("connection still open after Close")
	}
	if _, err := net.Dial("tcp", h.Addr()); err == nil {
		t.Fatal("still listening after Close")
	}
}

func TestNewRefusesAMissingHandlerOrBound(t *testing.T) {
	for _, cfg := range []linkhost.Config{
		{Name: "x", Addr: "127.0.0.1:0", MaxConns: 1, MaxInFlightPerConn: 1},
		{Name: "x", Addr: "127.0.0.1:0", MaxInFlightPerConn: 1, Handler: func([]byte) linkhost.Answer { return linkhost.Answer{} }},
	} {
		if _, err := linkhost.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
