package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/keyceremony"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/txn"
)

// booking is what the journal holds for one terminal request.
type booking struct {
	entries    int
	entryMode  string
	receivable int64
}

func bookingOf(t *testing.T, s *stack, req *iso8583.Message) booking {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.db.Owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tid, _ := req.GetString(41)
	f11, _ := req.GetString(11)
	f7, _ := req.GetString(7)
	key := txn.IdentityKey("10000000001", tid, f11, f7, txn.MTIClass("0200"))
	var b booking
	err = conn.QueryRow(ctx, `
		SELECT count(DISTINCT e.id), coalesce(min(e.entry_mode), ''),
		       coalesce(sum(p.amount) FILTER (WHERE p.account LIKE 'issuer_receivable:%'), 0)
		FROM journal_entry e LEFT JOIN posting p ON p.entry_id = e.id
		WHERE e.txn_key = $1 AND e.kind = 'purchase'`, key).Scan(&b.entries, &b.entryMode, &b.receivable)
	if err != nil {
		t.Fatal(err)
	}
	if b.receivable < 0 {
		b.receivable = -b.receivable
	}
	return b
}

// TestChipContactlessSwipeAndFallbackThroughTheSwitch drives each way of reading a card through real
// TCP, the switch's CVM step, issuer-sims that verify ARQCs with their own HSMs, and PostgreSQL.
func TestChipContactlessSwipeAndFallbackThroughTheSwitch(t *testing.T) {
	s := startStack(t, stackOptions{
		terminals: 4,
		pinPads:   map[int]string{0: keyceremony.TPK},
		issuerSim: func(s *stack, id string, c *issuersim.Config) { c.EMV = s.keys.Issuers[id].EMV },
		yamlEdit: func(_ *stack, y string) string {
			return y + "channels:\n  no_cvm_limits:\n    \"156\": 100000\n    \"840\": 5000\n"
		},
	})
	c := s.dial("iso87a", "iso87a", false)
	term := s.terminals[0]
	pad := s.keys.Terminals[term.TID].Pad
	chips := s.keys.Chips
	limits := map[string]int64{"156": 100000, "840": 5000}
	stan := 0

	type result struct {
		req, resp *iso8583.Message
		rc        string
		receipt   terminalsim.Receipt
		booked    booking
	}
	pay := func(t *testing.T, card cards.Card, p terminalsim.Presentation, amount int64, tamper bool) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stan++
		req, err := terminalsim.NewCardPurchase(ctx, term, chips, card, p, amount, "", stan)
		if err != nil {
			t.Fatal(err)
		}
		if tamper {
			if err := terminalsim.TamperARQC(req); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := c.Send(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		r := result{req: req, resp: resp}
		r.rc, _ = resp.GetString(39)
		r.receipt = terminalsim.NewReceiptWithLimits(term, req, resp, limits)
		r.booked = bookingOf(t, s, req)
		return r
	}
	expectBooked := func(t *testing.T, r result, amount int64, entry string) {
		t.Helper()
		if r.booked.entries != 1 || r.booked.receivable != amount || r.booked.entryMode != entry {
			t.Fatalf("journal: %d entries, receivable %d (want %d), entry mode %q (want %q)",
				r.booked.entries, r.booked.receivable, amount, r.booked.entryMode, entry)
		}
	}
	expectNotBooked := func(t *testing.T, r result) {
		t.Helper()
		if r.booked.entries != 0 {
			t.Fatalf("declined %s but %d journal entries", r.rc, r.booked.entries)
		}
	}
	expectIssuerAuthenticated := func(t *testing.T, card cards.Card, r result) {
		t.Helper()
		ia, err := chips.AuthenticateIssuer(context.Background(), card, r.req, r.resp)
		if err != nil {
			t.Fatal(err)
		}
		if !ia.Performed || !ia.Valid || !ia.MatchesResponse || ia.ARC != r.rc {
			t.Fatalf("issuer authentication %+v for answer %s", ia, r.rc)
		}
	}
	chipPIN := terminalsim.Presentation{Entry: terminalsim.EntryChip, PIN: pad}
	tap := terminalsim.Presentation{Entry: terminalsim.EntryContactless}
	swipe := terminalsim.Presentation{Entry: terminalsim.EntrySwipe}
	fallback := terminalsim.Presentation{Entry: terminalsim.EntryFallback}

	t.Run("chip with PIN is approved, authenticated both ways and booked once", func(t *testing.T) {
		card := cards.MustLookup("6226090000000014")
		r := pay(t, card, chipPIN, 2500, false)
		if r.rc != txn.RCApproved {
			t.Fatalf("answered %s", r.rc)
		}
		expectIssuerAuthenticated(t, card, r)
		expectBooked(t, r, 2500, "051")
		if r.receipt.EntryMode != "CHIP" || !r.receipt.NoSignatureRequired || r.receipt.SignatureRequired ||
			!strings.Contains(r.receipt.String(), "NO SIGNATURE REQUIRED") {
			t.Fatalf("receipt:\n%s", r.receipt)
		}
	})
	t.Run("tampered cryptogram is declined and not booked", func(t *testing.T) {
		card := cards.MustLookup("5413330000000019")
		before := s.issuers[cards.BankB].Stats().ARQCsFailed
		r := pay(t, card, chipPIN, 2500, true)
		if r.rc != txn.RCDoNotHonour {
			t.Fatalf("answered %s, want 05", r.rc)
		}
		expectNotBooked(t, r)
		if got := s.issuers[cards.BankB].Stats().ARQCsFailed - before; got != 1 {
			t.Fatalf("issuer counted %d failed cryptograms", got)
		}
		if ia, _ := chips.AuthenticateIssuer(context.Background(), card, r.req, r.resp); ia.Valid {
			t.Fatal("an ARPC came back for a cryptogram that did not verify")
		}
		if r.receipt.Approved || r.receipt.SignatureRequired {
			t.Fatalf("receipt:\n%s", r.receipt)
		}
	})
	t.Run("contactless within the no-CVM limit needs no PIN and no signature", func(t *testing.T) {
		card := cards.MustLookup("6250010000000011")
		r := pay(t, card, tap, 50000, false)
		if r.rc != txn.RCApproved {
			t.Fatalf("answered %s", r.rc)
		}
		expectIssuerAuthenticated(t, card, r)
		expectBooked(t, r, 50000, "071")
		if r.receipt.EntryMode != "CONTACTLESS" || !r.receipt.NoSignatureRequired || r.receipt.SignatureRequired {
			t.Fatalf("receipt:\n%s", r.receipt)
		}
		// The configured USD limit (50.00) applies to USD taps: the default has none.
		usd := pay(t, cards.MustLookup("4761730000000011"), tap, 4000, false)
		if usd.rc != txn.RCApproved {
			t.Fatalf("USD tap of 40.00 answered %s", usd.rc)
		}
		expectBooked(t, usd, 4000, "071")
	})
	t.Run("contactless above the limit without PIN is 1A, then the chip with PIN is approved", func(t *testing.T) {
		card := cards.MustLookup("6250010000000011")
		seen := s.issuers[cards.BankB].Stats().Requests["0200"]
		r := pay(t, card, tap, 150000, false)
		if r.rc != txn.RCInsertCard {
			t.Fatalf("answered %s, want 1A", r.rc)
		}
		expectNotBooked(t, r)
		if got := s.issuers[cards.BankB].Stats().Requests["0200"]; got != seen {
			t.Fatal("the issuer heard of a request the switch soft-declined")
		}
		if r.receipt.Approved || r.receipt.SignatureRequired {
			t.Fatalf("receipt:\n%s", r.receipt)
		}
		again := pay(t, card, chipPIN, 150000, false)
		if again.rc != txn.RCApproved {
			t.Fatalf("inserted with PIN: answered %s", again.rc)
		}
		expectIssuerAuthenticated(t, card, again)
		expectBooked(t, again, 150000, "051")
	})
	t.Run("chip card swiped is 1A", func(t *testing.T) {
		r := pay(t, cards.MustLookup("4761730000000011"), swipe, 2500, false)
		if r.rc != txn.RCInsertCard {
			t.Fatalf("answered %s, want 1A", r.rc)
		}
		expectNotBooked(t, r)
	})
	t.Run("fallback of a chip card is approved and booked as fallback", func(t *testing.T) {
		r := pay(t, cards.MustLookup("4761730000000011"), fallback, 2500, false)
		if r.rc != txn.RCApproved {
			t.Fatalf("answered %s", r.rc)
		}
		expectBooked(t, r, 2500, "801")
		if r.receipt.EntryMode != "FALLBACK" || !r.receipt.SignatureRequired {
			t.Fatalf("receipt:\n%s", r.receipt)
		}
	})
	t.Run("fallback of a magstripe-only card is 12", func(t *testing.T) {
		r := pay(t, cards.MustLookup("4761730000000029"), fallback, 2500, false)
		if r.rc != txn.RCInvalidTxn {
			t.Fatalf("answered %s, want 12", r.rc)
		}
		expectNotBooked(t, r)
	})
	t.Run("magstripe-only card swiped is approved", func(t *testing.T) {
		r := pay(t, cards.MustLookup("4761730000000029"), swipe, 2500, false)
		if r.rc != txn.RCApproved {
			t.Fatalf("answered %s", r.rc)
		}
		expectBooked(t, r, 2500, "901")
		if r.receipt.EntryMode != "SWIPE" || !r.receipt.SignatureRequired {
			t.Fatalf("receipt:\n%s", r.receipt)
		}
	})
	// No service code or track data in any log line of the run.
	for _, e := range s.logs.All() {
		for _, v := range e.ContextMap() {
			if str, ok := v.(string); ok && strings.Contains(str, "=3112") {
				t.Fatalf("log line %q holds track data: %v", e.Message, e.ContextMap())
			}
		}
		if strings.Contains(e.Message, "=3112") {
			t.Fatalf("log message holds track data: %q", e.Message)
		}
	}
}
