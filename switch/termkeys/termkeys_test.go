package termkeys

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/specs"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// purchase is a 0200 as a terminal sends it; original adds field 90, so a secondary bitmap.
func purchase(t testing.TB, d *specs.Dialect, original bool) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(d.Spec)
	m.MTI("0200")
	for id, v := range map[int]string{2: "6222020000000001", 3: "000000", 4: "000000002500", 7: "0102150405",
		11: "000123", 22: "051", 41: "TERM0001", 42: "MERCHANT0000001", 49: "156"} {
		if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	if original {
		if err := m.Field(90, "020000012301021504050000000000100000000001"); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// macAs MACs a request the way a terminal holding tak in its own HSM does, and returns the body.
func macAs(t testing.TB, h *hsm.HSM, tak hsm.KeyBlock, m *iso8583.Message) []byte {
	t.Helper()
	packed, id, wireLen, err := withMACPlaceholder(m)
	if err != nil {
		t.Fatal(err)
	}
	mac, err := h.GenerateMAC(context.Background(), hsm.GenerateMAC{Key: tak, Padding: x919Padding, Data: packed[:len(packed)-wireLen]})
	if err != nil {
		t.Fatal(err)
	}
	body, err := sealMAC(m, packed, id, mac)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestMACBlockIsTheMessageFromTheMTIUpToTheMACFieldInEachDialect(t *testing.T) {
	h := hsm.NewDevelopment()
	tak, _, err := h.GenerateKey(context.Background(), hsm.KeySpec{Usage: hsm.UsageMACAlg3, Algorithm: hsm.TDES})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dialect  string
		original bool
		field    int
		wireLen  int // the MAC field's length on the wire
	}{
		{"iso87a", false, 64, 16}, {"iso87a", true, 128, 16},
		{"iso87a-bb", false, 64, 8}, {"iso87a-bb", true, 128, 8},
		{"iso87b", false, 64, 8}, {"iso87b", true, 128, 8},
	} {
		d, err := specs.DialectByName(tc.dialect)
		if err != nil {
			t.Fatal(err)
		}
		body := macAs(t, h, tak, purchase(t, d, tc.original))
		got := iso8583.NewMessage(d.Spec)
		if err := got.Unpack(body); err != nil {
			t.Fatalf("%s: %v", tc.dialect, err)
		}
		if id := MACField(got); id != tc.field {
			t.Errorf("%s, secondary bitmap %v: MAC in field %d, want %d", tc.dialect, tc.original, id, tc.field)
		}
		mab, mac, err := MACBlock(got, body)
		if err != nil {
			t.Fatalf("%s: %v", tc.dialect, err)
		}
		if len(mab) != len(body)-tc.wireLen || !bytes.Equal(mab, body[:len(mab)]) {
			t.Errorf("%s: MAC block is %d of %d bytes, want all but the last %d", tc.dialect, len(mab), len(body), tc.wireLen)
		}
		if mti := d.Name != "iso87b"; mti && string(mab[:4]) != "0200" {
			t.Errorf("%s: MAC block starts %q, want the MTI", tc.dialect, mab[:4])
		}
		if err := h.VerifyMAC(context.Background(), hsm.VerifyMAC{Key: tak, Padding: x919Padding, Data: mab, MAC: mac}); err != nil {
			t.Errorf("%s: %v", tc.dialect, err)
		}
	}
}

// estate is one switch HSM, one terminal HSM sharing a TMK with it, and a manager on a fresh
// ledger database.
type estate struct {
	switchHSM, terminalHSM *hsm.HSM
	tmk                    hsm.KeyBlock // on the terminal
	pool                   *pgxpool.Pool
	terminals              []Terminal
}

func newEstate(t *testing.T, macs ...string) *estate {
	t.Helper()
	ctx := context.Background()
	e := &estate{switchHSM: hsm.NewDevelopment(), terminalHSM: hsm.NewDevelopment()}
	tmkSwitch, tmkTerminal, err := hsm.EstablishSharedKEK(ctx, e.switchHSM, e.terminalHSM)
	if err != nil {
		t.Fatal(err)
	}
	e.tmk = tmkTerminal
	for i, mac := range macs {
		e.terminals = append(e.terminals, Terminal{ID: "TERM000" + string(rune('1'+i)), TMK: tmkSwitch, MAC: mac})
	}
	e.pool, err = pgxpool.New(ctx, pgtest.NewDatabase(t).App)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pool.Close)
	return e
}

func (e *estate) manager() *Manager { return NewManager(e.switchHSM, NewStore(e.pool), e.terminals) }

// install imports a sign-on's keys on the terminal side and checks their check values.
func (e *estate) install(t *testing.T, w WorkingKeys) (tpk, tak hsm.KeyBlock) {
	t.Helper()
	ctx := context.Background()
	f62, err := ParseWorkingKeys(w.String())
	if err != nil {
		t.Fatal(err)
	}
	tpk, kcv, err := e.terminalHSM.ImportKey(ctx, e.tmk, f62.TPK)
	if err != nil || kcv != f62.TPKKCV {
		t.Fatalf("terminal imports the TPK: KCV %s (%v), field 62 says %s", kcv, err, f62.TPKKCV)
	}
	tak, kcv, err = e.terminalHSM.ImportKey(ctx, e.tmk, f62.TAK)
	if err != nil || kcv != f62.TAKKCV {
		t.Fatalf("terminal imports the TAK: KCV %s (%v), field 62 says %s", kcv, err, f62.TAKKCV)
	}
	return tpk, tak
}

func TestSignOnSendsKeysUnderTheTMKAndKeepsOnlyLMKKeyBlocks(t *testing.T) {
	ctx := context.Background()
	e := newEstate(t, MethodX919, MethodAESCMAC)
	m := e.manager()
	for _, term := range e.terminals {
		w, err := m.RollKeys(ctx, term.ID, "001")
		if err != nil {
			t.Fatal(err)
		}
		_, tak := e.install(t, w)
		info, err := e.terminalHSM.DescribeKey(ctx, tak)
		want := hsm.UsageMACAlg3
		if term.MAC == MethodAESCMAC {
			want = hsm.UsageMACCMAC
		}
		if err != nil || info.Usage != want {
			t.Errorf("%s (%s): TAK usage %s (%v), want %s", term.ID, term.MAC, info.Usage, err, want)
		}
		var tpkRow, takRow string
		var gen int64
		if err := e.pool.QueryRow(ctx, `SELECT tpk, tak, generation FROM terminal_keys WHERE terminal = $1`, term.ID).Scan(&tpkRow, &takRow, &gen); err != nil {
			t.Fatal(err)
		}
		// The stored keys open under the switch's LMK (they are LMK key blocks, not the blocks
		// sent to the terminal) and are the keys the terminal got.
		for _, kb := range []struct {
			row string
			kcv hsm.KCV
		}{{tpkRow, w.TPKKCV}, {takRow, w.TAKKCV}} {
			if kb.row == w.TPK || kb.row == w.TAK {
				t.Errorf("%s: the table holds the block sent under the TMK", term.ID)
			}
			if kcv, err := e.switchHSM.KeyCheckValue(ctx, hsm.KeyBlock(kb.row)); err != nil || kcv != kb.kcv {
				t.Errorf("%s: stored key has KCV %s (%v), the terminal was sent %s", term.ID, kcv, err, kb.kcv)
			}
		}
		if gen != 1 {
			t.Errorf("%s: generation %d after the first sign-on", term.ID, gen)
		}
	}
	// A key change rolls: new keys, next generation, and a second node reads them from the table.
	w2, err := m.RollKeys(ctx, e.terminals[0].ID, "101")
	if err != nil {
		t.Fatal(err)
	}
	k, found, err := NewStore(e.pool).Current(ctx, e.terminals[0].ID)
	if err != nil || !found || k.Generation != 2 || k.TAKKCV != w2.TAKKCV {
		t.Errorf("second node reads generation %d KCV %s (found %v, %v), want 2 and %s", k.Generation, k.TAKKCV, found, err, w2.TAKKCV)
	}
	if _, err := NewManager(e.switchHSM, NewStore(e.pool), []Terminal{{ID: "TERM0009"}}).RollKeys(ctx, "TERM0009", "001"); !errors.Is(err, ErrNoTMK) {
		t.Errorf("sign-on without a TMK: %v, want ErrNoTMK", err)
	}
}

func TestRequestMACsVerifyOnlyUnderTheCurrentTAK(t *testing.T) {
	ctx := context.Background()
	e := newEstate(t, MethodX919, MethodAESCMAC)
	d, _ := specs.DialectByName("iso87a")
	for _, term := range e.terminals {
		m := e.manager()
		if err := m.VerifyRequest(ctx, term.ID, purchase(t, d, false), nil); !errors.Is(err, ErrNoTAK) {
			t.Errorf("%s before sign-on: %v, want ErrNoTAK", term.ID, err)
		}
		w, err := m.RollKeys(ctx, term.ID, "001")
		if err != nil {
			t.Fatal(err)
		}
		_, tak := e.install(t, w)
		check := func(name string, body []byte, want error) {
			t.Helper()
			msg := iso8583.NewMessage(d.Spec)
			if err := msg.Unpack(body); err != nil {
				t.Fatal(err)
			}
			if err := m.VerifyRequest(ctx, term.ID, msg, body); !errors.Is(err, want) {
				t.Errorf("%s, %s: %v, want %v", term.ID, name, err, want)
			}
		}
		body := macAs(t, e.terminalHSM, tak, purchase(t, d, false))
		check("MACed", body, nil)
		check("MACed with a secondary bitmap", macAs(t, e.terminalHSM, tak, purchase(t, d, true)), nil)
		req := purchase(t, d, false)
		macAs(t, e.terminalHSM, tak, req)
		mac, _ := req.GetBytes(64)
		mac[0] ^= 0x80
		if err := req.BinaryField(64, mac); err != nil {
			t.Fatal(err)
		}
		flipped, _ := req.Pack()
		check("one MAC bit flipped", flipped, ErrMACMismatch)
		amount := bytes.Replace(body, []byte("000000002500"), []byte("000000002600"), 1)
		check("amount changed", amount, ErrMACMismatch)
		unmaced, _ := purchase(t, d, false).Pack()
		check("no MAC", unmaced, ErrMACMissing)

		// After a key change the old TAK fails and the new one verifies.
		w2, err := m.RollKeys(ctx, term.ID, "101")
		if err != nil {
			t.Fatal(err)
		}
		_, tak2 := e.install(t, w2)
		check("old TAK after a key change", macAs(t, e.terminalHSM, tak, purchase(t, d, false)), ErrMACMismatch)
		check("new TAK", macAs(t, e.terminalHSM, tak2, purchase(t, d, false)), nil)
	}
}

// A node that cached a terminal's keys learns of a key change another node made as soon as a MAC
// fails under the cached TAK, without waiting for the cache to age.
func TestAStaleCacheRereadsTheKeysWhenAMACFails(t *testing.T) {
	ctx := context.Background()
	e := newEstate(t, MethodX919)
	d, _ := specs.DialectByName("iso87a-bb")
	nodeA, nodeB := e.manager(), e.manager()
	tid := e.terminals[0].ID
	w, err := nodeA.RollKeys(ctx, tid, "001")
	if err != nil {
		t.Fatal(err)
	}
	_, tak := e.install(t, w)
	verify := func(m *Manager, tak hsm.KeyBlock) error {
		req := purchase(t, d, false)
		body := macAs(t, e.terminalHSM, tak, req)
		msg := iso8583.NewMessage(d.Spec)
		if err := msg.Unpack(body); err != nil {
			t.Fatal(err)
		}
		return m.VerifyRequest(ctx, tid, msg, body)
	}
	if err := verify(nodeB, tak); err != nil {
		t.Fatalf("node B, first keys: %v", err)
	}
	w2, err := nodeA.RollKeys(ctx, tid, "101")
	if err != nil {
		t.Fatal(err)
	}
	_, tak2 := e.install(t, w2)
	if err := verify(nodeB, tak2); err != nil {
		t.Errorf("node B after node A rolled the keys: %v", err)
	}
	if tpk, found, err := nodeB.CurrentTPK(ctx, tid); err != nil || !found || !strings.HasPrefix(string(tpk), "D") {
		t.Errorf("node B's TPK: %q %v %v", tpk, found, err)
	}
}

// BenchmarkVerifyRequest is the switch's MAC cost per request of a MAC terminal: cached keys, the
// MAC block found in the received bytes, X9.19 verified in the in-process HSM.
func BenchmarkVerifyRequest(b *testing.B) {
	for _, method := range []string{MethodX919, MethodAESCMAC} {
		b.Run(method, func(b *testing.B) {
			ctx := context.Background()
			switchHSM, terminalHSM := hsm.NewDevelopment(), hsm.NewDevelopment()
			tmkSwitch, tmkTerminal, err := hsm.EstablishSharedKEK(ctx, switchHSM, terminalHSM)
			if err != nil {
				b.Fatal(err)
			}
			pool, err := pgxpool.New(ctx, pgtest.NewDatabase(b).App)
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			m := NewManager(switchHSM, NewStore(pool), []Terminal{{ID: "TERM0001", TMK: tmkSwitch, MAC: method}})
			w, err := m.RollKeys(ctx, "TERM0001", "001")
			if err != nil {
				b.Fatal(err)
			}
			tak, _, err := terminalHSM.ImportKey(ctx, tmkTerminal, w.TAK)
			if err != nil {
				b.Fatal(err)
			}
			d, _ := specs.DialectByName("iso87a")
			body := macAs(b, terminalHSM, tak, purchase(b, d, false))
			msg := iso8583.NewMessage(d.Spec)
			if err := msg.Unpack(body); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := m.VerifyRequest(ctx, "TERM0001", msg, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
