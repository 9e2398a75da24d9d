package saf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moov-io/iso8583"
)

// approvals are the response codes by which an issuer moved money or placed a hold.
var approvals = map[string]bool{"00": true, "08": true, "10": true, "11": true}

// LateReversalOf builds the reversal of an approval that arrived after its request had timed out
// (reason 4006), from the answer alone: an answer echoes fields 11 and 7 of the request, which name
// the original. ok is false when there is nothing to reverse: a decline, an answer to an advice or
// network message, or a balance inquiry.
func LateReversalOf(issuer string, answer *iso8583.Message, acquirerID string) (it Item, ok bool, err error) {
	mti, _ := answer.GetMTI()
	if len(mti) != 4 || (mti[1] != '1' && mti[1] != '2') || mti[2] != '1' {
		return Item{}, false, nil
	}
	get := func(id int) string { v, _ := answer.GetString(id); return v }
	proc := get(3)
	if !approvals[get(39)] || strings.HasPrefix(proc, "31") {
		return Item{}, false, nil
	}
	amount := int64(0)
	if a := get(4); a != "" {
		if amount, err = strconv.ParseInt(a, 10, 64); err != nil {
			return Item{}, false, fmt.Errorf("late %s from %s: field 4 %q: %w", mti, issuer, a, err)
		}
	}
	acq := get(32) // the echo of what the switch sent, so the item matches the timeout's reversal
	if acq == "" {
		acq = acquirerID
	}
	it = Item{
		Kind: KindReversal, Issuer: issuer, MTI: "0420",
		OrigMTI: mti[:2] + "0" + mti[3:], OrigSTAN: get(11), OrigTime: get(7), AcquirerID: acq,
		TerminalID: get(41), ProcessingCode: proc, Amount: amount, Currency: get(49),
		MerchantID: strings.TrimSpace(get(42)), RRN: strings.TrimSpace(get(37)),
		AuthCode: strings.TrimSpace(get(38)), Reason: ReasonLateResponse,
	}
	if it.ProcessingCode == "" {
		it.ProcessingCode = "000000"
	}
	if err := it.Validate(); err != nil {
		return Item{}, false, fmt.Errorf("late %s from %s: %w", mti, issuer, err)
	}
	return it, true, nil
}
