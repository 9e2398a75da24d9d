package terminalsim_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/specs"
)

// approvingHost is a minimal acquirer host for one dialect: it reads frames, checks and strips the
// TPDU when told to, and answers each request with MTI+10 and 39 = 00, TPDU swapped.
func approvingHost(t *testing.T, dialect string, tpdu bool) string {
	t.Helper()
	d, err := specs.DialectByName(dialect)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r := bufio.NewReader(nc)
		for {
			body, err := specs.ReadFrame(r, nil)
			if err != nil {
				return
			}
			var hdr []byte
			if tpdu {
				tp, msg, err := specs.SplitTPDU(body)
				if err != nil {
					t.Errorf("TPDU: %v", err)
					return
				}
				reply := tp.Reply()
				hdr, body = reply[:], msg
			}
			m := iso8583.NewMessage(d.Spec)
			if err := m.Unpack(body); err != nil {
				t.Errorf("%s host cannot unpack: %v", dialect, err)
				return
			}
			m.MTI("0210")
			_ = m.Field(39, "00")
			m.UnsetField(55)
			packed, err := m.Pack()
			if err != nil {
				t.Errorf("pack: %v", err)
				return
			}
			frame, _ := specs.AppendFrame(nil, append(hdr, packed...))
			if _, err := nc.Write(frame); err != nil {
				return
			}
		}
	}()
	return ln.Addr().String()
}

func TestClientSpeaksEveryDialectWithAndWithoutTPDU(t *testing.T) {
	card := cards.MustLookup("4761730000000029") // magstripe: carries track 2
	chip := cards.MustLookup("6226090000000014") // chip: carries field 55
	for _, dialect := range []string{"iso87a", "iso87a-bb", "iso87b"} {
		for _, tpdu := range []bool{false, true} {
			name := dialect
			if tpdu {
				name += "+tpdu"
			}
			t.Run(name, func(t *testing.T) {
				c, err := terminalsim.Dial(context.Background(), approvingHost(t, dialect, tpdu), dialect, tpdu)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				for i, cd := range []cards.Card{card, chip} {
					resp, err := c.Send(ctx, terminalsim.NewPurchase(terminalsim.DefaultTerminals(1)[0], cd, 4200, "", 10+i))
					if err != nil {
						t.Fatal(err)
					}
					if v, _ := resp.GetString(39); v != "00" {
						t.Fatalf("39 = %q", v)
					}
					if v, _ := resp.GetString(2); v != cd.PAN {
						t.Fatal("PAN did not survive the round trip")
					}
				}
			})
		}
	}
}

func TestSendRawReportsThePeerClosing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			_, _ = bufio.NewReader(nc).ReadByte()
			_ = nc.Close()
		}
	}()
	c, err := terminalsim.Dial(context.Background(), ln.Addr().String(), "iso87a", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.SendRaw(ctx, []byte("garbage")); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendRaw error = %v, want the connection's end", err)
	}
}
