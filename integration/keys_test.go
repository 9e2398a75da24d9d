package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/hsm/calc"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/keyceremony"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/specs"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/node"
	"github.com/poswitch/poswitch/switch/txn"
)

// Terminals of the key-management estate, by index.
const (
	keysX919  = 0 // TMK, MACs with X9.19
	keysCMAC  = 1 // TMK, MACs with AES-CMAC (on the iso87b listener)
	keysDUKPT = 2 // DUKPT PIN pad: no key download
	keysTMK   = 3 // TMK, no MAC
	keysLab   = 4 // a TMK whose clear value the test knows, MACs with X9.19
)

// labTerminal is a terminal whose master key the test made from known clear bytes, so it can open
// what the switch sent and look for the clear working keys where they must never be.
type labTerminal struct {
	tmkClear  string // hex
	switchTMK hsm.KeyBlock
	keys      *terminalsim.TerminalKeys
}

func newLabTerminal(t *testing.T, switchHSM *hsm.HSM) *labTerminal {
	ctx := context.Background()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	spec := hsm.KeySpec{Usage: hsm.UsageKEK, Algorithm: hsm.AES, Length: 32}
	onSwitch, kcv, err := switchHSM.ImportClearKey(ctx, spec, raw)
	if err != nil {
		t.Fatal(err)
	}
	secureElement := hsm.NewDevelopment()
	onTerminal, kcv2, err := secureElement.ImportClearKey(ctx, spec, raw)
	if err != nil || kcv != kcv2 {
		t.Fatalf("lab TMK: %v, KCVs %s %s", err, kcv, kcv2)
	}
	return &labTerminal{tmkClear: hex.EncodeToString(raw), switchTMK: onSwitch,
		keys: terminalsim.NewTerminalKeys(secureElement, onTerminal, terminalsim.MACX919)}
}

func startKeysStack(t *testing.T) (*stack, *labTerminal) {
	var lab *labTerminal
	s := startStack(t, stackOptions{
		terminals: 6, dialects: []string{"iso87a", "iso87b"},
		pinPads: map[int]string{keysX919: keyceremony.TMKX919, keysCMAC: keyceremony.TMKAESCMAC,
			keysDUKPT: keyceremony.DUKPTTDES, keysTMK: keyceremony.TMK},
		before: func(s *stack) { lab = newLabTerminal(t, s.hsm) },
		terminalYAML: func(s *stack, term terminalsim.Terminal) string {
			if term.TID == s.terminals[keysLab].TID {
				return fmt.Sprintf("    tmk: %q\n    mac: %s\n", string(lab.switchTMK), config.MACX919)
			}
			k := s.keys.Terminals[term.TID]
			if k.SwitchTMK == "" {
				return ""
			}
			out := fmt.Sprintf("    tmk: %q\n", string(k.SwitchTMK))
			if k.MAC != "" {
				out += fmt.Sprintf("    mac: %s\n", k.MAC)
			}
			return out
		},
	})
	return s, lab
}

// send sends a request and returns field 39; the client checks the answer's MAC for a terminal
// whose keys it uses.
func send(t *testing.T, c *terminalsim.Client, req *iso8583.Message) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Send(ctx, req)
	if err != nil {
		t.Fatalf("sending: %v", err)
	}
	rc, _ := resp.GetString(39)
	return rc
}

// heardAndBooked tells whether the issuer received, and the ledger booked, a request of this
// terminal and amount.
func heardAndBooked(t *testing.T, s *stack, tid string, amount int64) (heard bool, booked int) {
	t.Helper()
	for _, is := range s.issuers {
		for _, r := range is.Transactions() {
			heard = heard || (r.Terminal == tid && r.Amount == amount)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.db.Owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM journal_entry WHERE terminal = $1 AND amount = $2`, tid, amount).Scan(&booked); err != nil {
		t.Fatal(err)
	}
	return heard, booked
}

// sendRaw sends prepared bytes and returns the answer (unpacked) and its body.
func sendRaw(t *testing.T, c *terminalsim.Client, d string, body []byte) (*iso8583.Message, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	answer, err := c.SendRaw(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	m := iso8583.NewMessage(dialectSpec(t, d))
	if err := m.Unpack(answer); err != nil {
		t.Fatal(err)
	}
	return m, answer
}

func dialectSpec(t *testing.T, name string) *iso8583.MessageSpec {
	t.Helper()
	d, err := specs.DialectByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec
}

// convertTo re-encodes a request built in iso87a in another dialect, as Client.Send does.
func convertTo(m *iso8583.Message, dialect string) (*iso8583.Message, error) {
	d, err := specs.DialectByName(dialect)
	if err != nil {
		return nil, err
	}
	out := iso8583.NewMessage(d.Spec)
	for id := range m.GetFields() {
		if id == 1 {
			continue
		}
		v, err := m.GetBytes(id)
		if err != nil {
			return nil, err
		}
		if err := out.BinaryField(id, v); err != nil {
			return nil, fmt.Errorf("field %d: %w", id, err)
		}
	}
	return out, nil
}

func TestTerminalKeysSignOnDownloadsWorkingKeysAndMACsGuardEveryRequest(t *testing.T) {
	s, lab := startKeysStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := s.dial("iso87a", "iso87a", false)
	b := s.dial("iso87b", "iso87b", false)
	term := func(i int) terminalsim.Terminal { return s.terminals[i] }
	keys := func(i int) *terminalsim.TerminalKeys { return s.keys.Terminals[term(i).TID].Keys }
	card := cards.Load()[0]
	stan := 1000
	next := func() int { stan++; return stan }

	// Before its first sign-on a MAC terminal has no MAC key: its requests are 63.
	if rc := send(t, a, terminalsim.NewPurchase(term(keysX919), card, 6301, card.Currency, next())); rc != txn.RCSecurityViolation {
		t.Errorf("purchase before sign-on: %s, want 63", rc)
	}

	// Sign-on downloads a TPK and a TAK under the TMK; the terminal's import checks their KCVs
	// against field 62, and they are the switch's keys in terminal_keys.
	for _, i := range []int{keysX919, keysTMK} {
		if err := keys(i).SignOn(ctx, a, term(i), next()); err != nil {
			t.Fatalf("%s: %v", term(i).TID, err)
		}
	}
	if err := keys(keysCMAC).SignOn(ctx, b, term(keysCMAC), next()); err != nil {
		t.Fatalf("%s: %v", term(keysCMAC).TID, err)
	}
	for _, i := range []int{keysX919, keysCMAC, keysTMK} {
		tpkKCV, takKCV := keys(i).CheckValues()
		var swTPK, swTAK string
		if err := s.node.Pool.QueryRow(ctx, `SELECT tpk, tak FROM terminal_keys WHERE terminal = $1`, term(i).TID).Scan(&swTPK, &swTAK); err != nil {
			t.Fatal(err)
		}
		for _, k := range []struct {
			block string
			kcv   hsm.KCV
		}{{swTPK, tpkKCV}, {swTAK, takKCV}} {
			if got, err := s.hsm.KeyCheckValue(ctx, hsm.KeyBlock(k.block)); err != nil || got != k.kcv || k.kcv == "" {
				t.Errorf("%s: the switch's key has KCV %s (%v), the terminal's %s", term(i).TID, got, err, k.kcv)
			}
		}
	}
	a.UseKeys(term(keysX919).TID, keys(keysX919))
	b.UseKeys(term(keysCMAC).TID, keys(keysCMAC))

	// A PIN purchase under the downloaded TPK is approved and booked, MACed or not.
	for _, i := range []int{keysX919, keysTMK} {
		if rc, _ := pinPurchase(t, s, a, i, card, card.PIN, next()); rc != txn.RCApproved {
			t.Errorf("%s: PIN purchase under the downloaded TPK: %s", term(i).TID, rc)
		}
		if _, booked := heardAndBooked(t, s, term(i).TID, 2500); booked != 1 {
			t.Errorf("%s: %d entries booked for the PIN purchase, want 1", term(i).TID, booked)
		}
	}
	if rc, _ := pinPurchase(t, s, a, keysX919, card, "9999", next()); rc != txn.RCWrongPIN {
		t.Errorf("wrong PIN under the downloaded TPK: %s, want 55", rc)
	}

	// MACed purchases in both methods are approved and their answers' MACs verify (Send checks).
	for _, tc := range []struct {
		c *terminalsim.Client
		i int
	}{{a, keysX919}, {b, keysCMAC}} {
		if rc := send(t, tc.c, terminalsim.NewPurchase(term(tc.i), card, 1234, card.Currency, next())); rc != txn.RCApproved {
			t.Errorf("%s (%s): MACed purchase: %s", term(tc.i).TID, keys(tc.i).MAC, rc)
		}
	}

	// One flipped MAC bit: 63, the issuer never hears of it, nothing is booked; the 63 is MACed.
	for _, tc := range []struct {
		c       *terminalsim.Client
		dialect string
		i       int
	}{{a, "iso87a", keysX919}, {b, "iso87b", keysCMAC}} {
		req := terminalsim.NewPurchase(term(tc.i), card, 6302, card.Currency, next())
		req, err := convertTo(req, tc.dialect)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys(tc.i).MACRequest(ctx, req); err != nil {
			t.Fatal(err)
		}
		mac, _ := req.GetBytes(64)
		mac[3] ^= 0x10
		if err := req.BinaryField(64, mac); err != nil {
			t.Fatal(err)
		}
		body, err := req.Pack()
		if err != nil {
			t.Fatal(err)
		}
		answer, answerBody := sendRaw(t, tc.c, tc.dialect, body)
		if rc, _ := answer.GetString(39); rc != txn.RCSecurityViolation {
			t.Errorf("%s: flipped MAC bit: %s, want 63", tc.dialect, rc)
		}
		if err := keys(tc.i).VerifyAnswer(ctx, answer, answerBody); err != nil {
			t.Errorf("%s: the 63 answer's MAC: %v", tc.dialect, err)
		}
		if heard, booked := heardAndBooked(t, s, term(tc.i).TID, 6302); heard || booked != 0 {
			t.Errorf("%s: flipped MAC bit: issuer heard %v, %d booked", tc.dialect, heard, booked)
		}
	}

	// An unMACed request from a MAC terminal is 63 and goes nowhere.
	plain := s.dial("iso87a", "iso87a", false)
	if rc := send(t, plain, terminalsim.NewPurchase(term(keysX919), card, 6303, card.Currency, next())); rc != txn.RCSecurityViolation {
		t.Errorf("unMACed request from a MAC terminal: %s, want 63", rc)
	}
	if heard, booked := heardAndBooked(t, s, term(keysX919).TID, 6303); heard || booked != 0 {
		t.Errorf("unMACed request: issuer heard %v, %d booked", heard, booked)
	}
	if heard, booked := heardAndBooked(t, s, term(keysX919).TID, 6301); heard || booked != 0 {
		t.Errorf("request before sign-on: issuer heard %v, %d booked", heard, booked)
	}

	// A key change rolls the keys: a request MACed under the old TAK is 63, the new TAK works.
	old := terminalsim.NewPurchase(term(keysX919), card, 6304, card.Currency, next())
	oldBody, err := keys(keysX919).MACRequest(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	_, oldTAK := keys(keysX919).CheckValues()
	if err := keys(keysX919).ChangeKeys(ctx, a, term(keysX919), next()); err != nil {
		t.Fatal(err)
	}
	if _, newTAK := keys(keysX919).CheckValues(); newTAK == oldTAK {
		t.Errorf("key change kept the TAK (KCV %s)", newTAK)
	}
	if answer, _ := sendRaw(t, a, "iso87a", oldBody); answer != nil {
		if rc, _ := answer.GetString(39); rc != txn.RCSecurityViolation {
			t.Errorf("old TAK after a key change: %s, want 63", rc)
		}
	}
	if heard, booked := heardAndBooked(t, s, term(keysX919).TID, 6304); heard || booked != 0 {
		t.Errorf("old TAK: issuer heard %v, %d booked", heard, booked)
	}
	if rc := send(t, a, terminalsim.NewPurchase(term(keysX919), card, 1235, card.Currency, next())); rc != txn.RCApproved {
		t.Errorf("new TAK after a key change: %s", rc)
	}

	// A DUKPT terminal signs on without a key download and its PIN purchase works.
	signOn, err := a.Send(ctx, terminalsim.NewSignOn(term(keysDUKPT), next()))
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := signOn.GetString(39); rc != txn.RCApproved || signOn.GetField(62) != nil {
		f62, _ := signOn.GetString(62)
		t.Errorf("DUKPT sign-on: %s with field 62 %q, want 00 without 62", rc, f62)
	}
	if rc, _ := pinPurchase(t, s, a, keysDUKPT, card, card.PIN, next()); rc != txn.RCApproved {
		t.Errorf("DUKPT PIN purchase: %s", rc)
	}

	// No clear key anywhere: open what the lab terminal was sent with its clear TMK, then look for
	// those clear keys in terminal_keys and in every log line.
	labResp, err := a.Send(ctx, terminalsim.NewSignOn(term(keysLab), next()))
	if err != nil {
		t.Fatal(err)
	}
	f62, _ := labResp.GetString(62)
	if err := lab.keys.Install(ctx, f62); err != nil {
		t.Fatal(err)
	}
	a.UseKeys(term(keysLab).TID, lab.keys)
	if rc := send(t, a, terminalsim.NewPurchase(term(keysLab), card, 1236, card.Currency, next())); rc != txn.RCApproved {
		t.Errorf("lab terminal MACed purchase: %s", rc)
	}
	parts := strings.Split(f62, "|")
	var clearKeys []string
	for _, p := range []int{0, 2} {
		_, key, err := calc.UnwrapKeyBlock(lab.tmkClear, parts[p])
		if err != nil {
			t.Fatal(err)
		}
		alg := "tdes"
		if kcv, _ := calc.KCV(key, alg); kcv != parts[p+1] {
			t.Fatalf("the clear key opened from field 62 has KCV %s, field 62 says %s", kcv, parts[p+1])
		}
		clearKeys = append(clearKeys, key)
	}
	assertNoClearKeys(t, s, clearKeys)

	// Keys survive a restart: a second node on the same database, which never saw a sign-on, uses
	// the working keys it reads from PostgreSQL (MAC both ways, PIN under the downloaded TPK).
	second := openSecondNode(t, s)
	a2 := dialNode(t, second, "iso87a")
	b2 := dialNode(t, second, "iso87b")
	a2.UseKeys(term(keysX919).TID, keys(keysX919))
	b2.UseKeys(term(keysCMAC).TID, keys(keysCMAC))
	if rc := send(t, a2, terminalsim.NewPurchase(term(keysX919), card, 1237, card.Currency, next())); rc != txn.RCApproved {
		t.Errorf("second node, X9.19 terminal: %s", rc)
	}
	if rc := send(t, b2, terminalsim.NewPurchase(term(keysCMAC), card, 1238, card.Currency, next())); rc != txn.RCApproved {
		t.Errorf("second node, AES-CMAC terminal: %s", rc)
	}
	if rc, _ := pinPurchase(t, s, a2, keysTMK, card, card.PIN, next()); rc != txn.RCApproved {
		t.Errorf("second node, PIN under the downloaded TPK: %s", rc)
	}
}

// assertNoClearKeys looks for each clear key (hex, either case, and raw) in the terminal_keys table
// and the switch's logs.
func assertNoClearKeys(t *testing.T, s *stack, clearKeys []string) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.node.Pool.Query(ctx, `SELECT row_to_json(k)::text FROM terminal_keys k`)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	for rows.Next() {
		var row string
		if err := rows.Scan(&row); err != nil {
			t.Fatal(err)
		}
		table.WriteString(row)
	}
	if rows.Err() != nil || table.Len() == 0 {
		t.Fatalf("reading terminal_keys: %v (%d bytes)", rows.Err(), table.Len())
	}
	var logs strings.Builder
	for _, e := range s.logs.All() {
		logs.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			fmt.Fprintf(&logs, " %s=%v", k, v)
		}
		logs.WriteString("\n")
	}
	for _, key := range clearKeys {
		raw, _ := hex.DecodeString(key)
		for where, text := range map[string]string{"terminal_keys": table.String(), "logs": logs.String()} {
			if strings.Contains(strings.ToUpper(text), strings.ToUpper(key)) || bytes.Contains([]byte(text), raw) {
				t.Errorf("a clear working key is in %s", where)
			}
		}
	}
}

// openSecondNode starts another switch node on the stack's database and configuration.
func openSecondNode(t *testing.T, s *stack) *node.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := config.Parse("integration.yaml", []byte(s.yaml))
	if err != nil {
		t.Fatal(err)
	}
	st, err := node.Open(ctx, cfg, node.Parts{HSM: s.hsm, Digest: s.hsm, Vault: s.hsm}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.WaitForLinks(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func dialNode(t *testing.T, st *node.Stack, dialect string) *terminalsim.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := terminalsim.Dial(ctx, st.ListenerAddr(dialect), dialect, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
