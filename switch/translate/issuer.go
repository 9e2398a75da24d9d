package translate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/switch/txn"
)

// ToIssuer builds the request the switch forwards on an issuer link. Field 11 (the link's own STAN) and
// field 7 are set by the link when it sends; PIN block 52 carries the block already translated to the
// link's zone key. Track data is forwarded as the card presented it; the issuer needs it to check the
// service code and CVV.
//
// The link message is the switch's own: a terminal's repeat (0201) goes out as a request (0200)
// under the link's new STAN, and field 90 is the original as the link sent it
// (t.IssuerOriginalData), never the terminal's field 90, whose STAN and time the issuer never saw.
func ToIssuer(spec *iso8583.MessageSpec, t *txn.Transaction, acquirerID string) (*iso8583.Message, error) {
	m := iso8583.NewMessage(spec)
	m.MTI(LinkMTI(t.MTI))
	set := []struct {
		id int
		v  string
	}{
		{2, t.PAN}, {3, t.ProcessingCode}, {4, fmt.Sprintf("%012d", t.Amount)}, {12, t.LocalTime},
		{13, t.LocalDate}, {14, t.Expiry}, {18, t.MCC}, {22, t.EntryMode}, {23, t.CardSequence},
		{25, t.ConditionCode}, {32, acquirerID}, {35, t.Track2}, {37, t.RRN}, {41, t.TerminalID},
		{42, t.MerchantID}, {49, t.Currency}, {53, t.SecurityControl}, {90, t.IssuerOriginalData},
	}
	if t.Advice() {
		// An advice tells the issuer of an approval it has not given (or not seen): it carries the code.
		set = append(set, struct {
			id int
			v  string
		}{38, t.AuthCode})
	}
	for _, f := range set {
		if err := setString(m, f.id, f.v); err != nil {
			return nil, fmt.Errorf("issuer request: %w", err)
		}
	}
	if err := setBytes(m, 52, t.PINBlock); err != nil {
		return nil, fmt.Errorf("issuer request: %w", err)
	}
	if err := setBytes(m, 55, t.EMV); err != nil {
		return nil, fmt.Errorf("issuer request: %w", err)
	}
	if t.BillerID != "" {
		if err := setString(m, 48, t.BillerID+"|"+t.BillerAccount); err != nil {
			return nil, fmt.Errorf("issuer request: %w", err)
		}
	}
	if t.Instalments > 0 {
		if err := setString(m, 63, fmt.Sprintf("%02d", t.Instalments)); err != nil {
			return nil, fmt.Errorf("issuer request: %w", err)
		}
	}
	return m, nil
}

// LinkMTI is the MTI the switch sends for a terminal's MTI: the repeat digit cleared (0201 → 0200,
// 0421 → 0420), since the link's message is new to the issuer.
func LinkMTI(mti string) string {
	if len(mti) == 4 && (mti[3] == '1' || mti[3] == '3' || mti[3] == '5') {
		return mti[:3] + string(mti[3]-1)
	}
	return mti
}

// FromIssuer copies the issuer's answer into the transaction. An answer without a well-formed response
// code is treated as a system error rather than trusted.
func FromIssuer(resp *iso8583.Message, t *txn.Transaction) error {
	rc, _, err := getString(resp, 39)
	if err != nil || len(rc) != 2 {
		return fmt.Errorf("issuer answer has no valid response code")
	}
	t.Response = rc
	if t.AuthCode, _, err = getString(resp, 38); err != nil {
		return fmt.Errorf("issuer answer: %w", err)
	}
	t.AuthCode = strings.TrimSpace(t.AuthCode)
	if t.AdditionalAmounts, _, err = getString(resp, 54); err != nil {
		return fmt.Errorf("issuer answer: %w", err)
	}
	if t.ResponseEMV, _, err = getBytes(resp, 55); err != nil {
		return fmt.Errorf("issuer answer: %w", err)
	}
	wallet, _, err := getString(resp, 63)
	if err != nil {
		return fmt.Errorf("issuer answer: %w", err)
	}
	if wallet != "" {
		// A wallet says which wallet and funding source paid: "<wallet>|<funding>|<instalments>".
		parts := strings.SplitN(wallet, "|", 3)
		t.Wallet = parts[0]
		if len(parts) > 1 {
			t.FundingSource = parts[1]
		}
		if len(parts) > 2 {
			if n, err := strconv.Atoi(parts[2]); err == nil && n >= 0 && n < 100 {
				t.Instalments = n
			}
		}
	}
	if rc == txn.RCApproved && t.AuthCode == "" {
		// An approval must carry an authorization code the terminal can print; issuers that omit it
		// get one made from the switch's trace number.
		t.AuthCode = t.IssuerSTAN
	}
	return nil
}
