package integration

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/keyceremony"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/txn"
)

// pinPurchase sends a purchase with a PIN typed on the terminal's PIN pad and returns field 39 and
// the PIN block the pad made.
func pinPurchase(t *testing.T, s *stack, c *terminalsim.Client, ti int, card cards.Card, pin string, stan int) (string, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	term := s.terminals[ti]
	req := terminalsim.NewPurchase(term, card, 2500, card.Currency, stan)
	if err := terminalsim.WithPIN(ctx, req, s.keys.Terminals[term.TID].Pad, card.PAN, pin); err != nil {
		t.Fatal(err)
	}
	block, _ := req.GetBytes(52)
	resp, err := c.Send(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", term.TID, err)
	}
	rc, _ := resp.GetString(39)
	return rc, block
}

func TestPINPurchasesApproveWithTheRightPINAndDecline55WithAWrongOne(t *testing.T) {
	t.Run("in-process HSM", func(t *testing.T) { testPINPurchases(t, false) })
	t.Run("HSM over TCP", func(t *testing.T) { testPINPurchases(t, true) })
}

func testPINPurchases(t *testing.T, remote bool) {
	kinds := map[int]string{0: keyceremony.TPK, 1: keyceremony.DUKPTTDES, 2: keyceremony.DUKPTAES}
	s := startStack(t, stackOptions{terminals: 4, pinPads: kinds, remoteHSM: remote})
	c := s.dial("iso87a", "iso87a", false)
	var blocks [][]byte
	stan := 100
	for ti, kind := range kinds {
		for _, card := range []cards.Card{cards.Load()[0], cards.ByIssuer(cards.BankB)[0]} {
			stan++
			rc, b := pinPurchase(t, s, c, ti, card, card.PIN, stan)
			blocks = append(blocks, b)
			if rc != txn.RCApproved {
				t.Errorf("%s terminal, %s, right PIN: answered %s", kind, card.Masked(), rc)
			}
			stan++
			rc, b = pinPurchase(t, s, c, ti, card, "9999", stan)
			blocks = append(blocks, b)
			if rc != txn.RCWrongPIN {
				t.Errorf("%s terminal, %s, wrong PIN: answered %s, want 55", kind, card.Masked(), rc)
			}
			stan++
			if rc, _ := pinPurchase(t, s, c, ti, card, card.PIN, stan); rc != txn.RCApproved {
				t.Errorf("%s terminal, %s, right PIN after a wrong one: answered %s", kind, card.Masked(), rc)
			}
		}
	}

	// Three wrong PINs in a row block the card's PIN: 75, even for the right PIN afterwards.
	card := cards.Load()[1]
	var last string
	for i := 0; i < 3; i++ {
		stan++
		last, _ = pinPurchase(t, s, c, 0, card, "0000", stan)
	}
	if last != txn.RCPINTriesExceeded {
		t.Errorf("third wrong PIN answered %s, want 75", last)
	}
	stan++
	if rc, _ := pinPurchase(t, s, c, 0, card, card.PIN, stan); rc != txn.RCPINTriesExceeded {
		t.Errorf("right PIN after the tries ran out answered %s, want 75", rc)
	}

	// A terminal without a PIN key sending a PIN block: the switch cannot translate it, 88.
	stan++
	req := terminalsim.NewPurchase(s.terminals[3], cards.Load()[0], 100, cards.Load()[0].Currency, stan)
	req.BinaryField(52, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Send(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := resp.GetString(39); rc != txn.RCCryptoFailure {
		t.Errorf("PIN block from a terminal without a key: %s, want 88", rc)
	}

	// No clear PIN, key block or PIN block in any log line of the run.
	secrets := []string{}
	for _, b := range blocks {
		secrets = append(secrets, hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)))
	}
	for _, is := range s.keys.Issuers {
		secrets = append(secrets, string(is.SwitchZPK))
	}
	for _, term := range s.keys.Terminals {
		secrets = append(secrets, string(term.SwitchTPK)+string(term.SwitchBDK))
	}
	if s.logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, e := range s.logs.All() {
		line, _ := json.Marshal(map[string]any{"msg": e.Message, "fields": e.ContextMap()})
		text := string(line)
		for _, secret := range secrets {
			if secret != "" && strings.Contains(text, secret) {
				t.Fatalf("log line holds a PIN block or key block: %s", text)
			}
		}
		for _, v := range e.ContextMap() {
			if str, ok := v.(string); ok && (str == "9999" || str == "0000" || str == cards.Load()[0].PIN) {
				t.Fatalf("log line has a field whose value is a PIN typed in this run: %s", text)
			}
		}
		for _, field := range []string{"pin", "pin_block", "pinblock", "key"} {
			if _, ok := e.ContextMap()[field]; ok {
				t.Fatalf("log line has a %q field: %s", field, text)
			}
		}
	}
}
