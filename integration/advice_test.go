package integration

import (
	"testing"
	"time"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

// TestReversalOfAnOfflineSaleAdviceReachesTheIssuer: a terminal approved a sale offline and tells
// the switch with an 0220 (no field 90); the switch books it and forwards the advice; the terminal
// then reverses it (0400 naming the 0220). The reversal must reach the issuer under the identity the
// advice gave it there, so the cardholder is charged nothing in the end, and the books net to zero.
func TestReversalOfAnOfflineSaleAdviceReachesTheIssuer(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 2, vault: true, safRetryBase: 100 * time.Millisecond, safPollInterval: 50 * time.Millisecond})
	c := s.dial("iso87a", "iso87a", false)
	term := s.terminals[1]
	card := cards.MustLookup("4761730000000011")
	const amount = 4_321
	issuer := s.issuers[card.Issuer]
	before, _ := issuer.Balance(card.PAN)

	offline := terminalsim.NewPurchase(term, card, amount, "", 7001)
	offline.MTI("0220")
	if err := offline.Field(38, "OFF001"); err != nil {
		t.Fatal(err)
	}
	if resp := mustExchange(t, c, offline); fieldOf(resp, 39) != "00" {
		t.Fatalf("offline advice answered %s", fieldOf(resp, 39))
	}
	waitQueueEmpty(t, s)
	if after, _ := issuer.Balance(card.PAN); after != before-amount {
		t.Fatalf("issuer balance %d after the advice, want %d", after, before-amount)
	}

	if resp := mustExchange(t, c, terminalsim.NewReversal(offline, false)); fieldOf(resp, 39) != "00" {
		t.Fatalf("reversal answered %s", fieldOf(resp, 39))
	}
	waitQueueEmpty(t, s)
	if after, _ := issuer.Balance(card.PAN); after != before {
		t.Fatalf("issuer balance %d after the reversal, want %d back", after, before)
	}
	advices := issuerRecordsOf(issuer.Advices(), card, amount)
	if len(advices) != 1 || !advices[0].Applied || advices[0].ReversalsApplied != 1 {
		t.Fatalf("issuer advices %+v", advices)
	}
	if net, postings := netPostings(t, s, txnIdentity(offline)); len(net) != 0 || postings == 0 {
		t.Fatalf("books of the advice and its reversal: net %v over %d postings", net, postings)
	}
}
