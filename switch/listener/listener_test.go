package listener

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/poswitch/poswitch/specs"
)

// echoUpper answers each body with the body reversed, after a delay taken from its first byte, so
// answers to pipelined requests come back out of order.
func reverser(ctx context.Context, body []byte) []byte {
	time.Sleep(time.Duration(body[0]%4) * time.Millisecond)
	out := make([]byte, len(body))
	for i := range body {
		out[len(body)-1-i] = body[i]
	}
	return out
}

func start(t *testing.T, cfg Config, h Handler) *Listener {
	t.Helper()
	cfg.Address = "127.0.0.1:0"
	if cfg.MaxInFlightPerConnection == 0 {
		cfg.MaxInFlightPerConnection = 16
	}
	l := New(cfg, h)
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	return l
}

func frame(body []byte) []byte {
	f, err := specs.AppendFrame(nil, body)
	if err != nil {
		panic(err)
	}
	return f
}

func readFrame(t *testing.T, r *bufio.Reader) []byte {
	t.Helper()
	body, err := specs.ReadFrame(r, nil)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	return body
}

func TestPipelinedRequestsAreAllAnswered(t *testing.T) {
	l := start(t, Config{Name: "t"}, reverser)
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 200
	want := map[string]bool{}
	var out []byte
	for i := 0; i < n; i++ {
		body := []byte{byte(i), byte(i >> 8), 'x', 'y'}
		out = append(out, frame(body)...)
		want[string([]byte{'y', 'x', byte(i >> 8), byte(i)})] = true
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < n; i++ {
		got := string(readFrame(t, r))
		if !want[got] {
			t.Fatalf("unexpected or repeated answer %x", got)
		}
		delete(want, got)
	}
}

func TestBrokenFrameClosesOnlyThatConnection(t *testing.T) {
	l := start(t, Config{Name: "t"}, reverser)
	defer l.Close()
	good, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	cases := map[string][]byte{
		"zero length":     {0, 0},
		"length over max": binary.BigEndian.AppendUint16(nil, specs.MaxFrameLength+1),
		"cut-short frame": {0, 10, 1, 2, 3},
	}
	for name, raw := range cases {
		bad, err := net.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bad.Write(raw); err != nil {
			t.Fatal(err)
		}
		if name == "cut-short frame" {
			bad.(*net.TCPConn).CloseWrite()
		}
		_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := bad.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%s: connection not closed by the switch (read %d, %v)", name, n, err)
		}
		bad.Close()
	}
	// The other terminal is still served.
	if _, err := good.Write(frame([]byte{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	_ = good.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got := readFrame(t, bufio.NewReader(good)); !bytes.Equal(got, []byte{3, 2, 1}) {
		t.Fatalf("good connection got %x", got)
	}
	if s := l.Stats(); s.BrokenFrames != 3 {
		t.Errorf("broken frames counted %d, want 3", s.BrokenFrames)
	}
}

func TestTPDUIsSwappedInTheAnswer(t *testing.T) {
	l := start(t, Config{Name: "t", TPDU: true}, reverser)
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tpdu := specs.NewTPDU(0x0001, 0x0203)
	if _, err := c.Write(frame(append(tpdu[:], 7, 8))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := readFrame(t, bufio.NewReader(c))
	reply := tpdu.Reply()
	if want := append(reply[:], 8, 7); !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
}

func TestPanickingHandlerDoesNotKillTheListener(t *testing.T) {
	l := start(t, Config{Name: "t"}, func(ctx context.Context, b []byte) []byte {
		if b[0] == 0 {
			panic("boom")
		}
		return b
	})
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(frame([]byte{0}))
	c.Write(frame([]byte{5}))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got := readFrame(t, bufio.NewReader(c)); !bytes.Equal(got, []byte{5}) {
		t.Fatalf("got %x", got)
	}
}

func TestNoGoroutineOutlivesClose(t *testing.T) {
	before := runtime.NumGoroutine()
	l := start(t, Config{Name: "t"}, reverser)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", l.Addr())
			if err != nil {
				return
			}
			c.Write(frame([]byte{1, 2}))
			c.Write([]byte{0, 0}) // broken frame on half of them is fine too
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			io.Copy(io.Discard, c)
			c.Close()
		}()
	}
	wg.Wait()
	l.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestCloseLetsRequestsInFlightFinish(t *testing.T) {
	finished := make(chan error, 1)
	started := make(chan struct{})
	l := start(t, Config{Name: "t"}, func(ctx context.Context, b []byte) []byte {
		close(started)
		time.Sleep(200 * time.Millisecond) // an issuer round trip and a commit
		finished <- ctx.Err()
		return b
	})
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(frame([]byte{1}))
	<-started
	l.Close() // returns only after the handler returned
	select {
	case err := <-finished:
		if err != nil {
			t.Fatalf("the in-flight request saw its context cancelled by Close: %v", err)
		}
	default:
		t.Fatal("Close returned before the in-flight request finished")
	}
}
