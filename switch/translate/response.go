package translate

import (
	"fmt"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/switch/txn"
)

// echoed are the request fields a response carries back so the terminal can match and print it.
var echoed = []int{2, 3, 4, 7, 11, 12, 13, 14, 22, 25, 32, 37, 41, 42, 49, 70, 90}

// Response builds the answer to req from the transaction's outcome, in the request's own spec.
func Response(req *iso8583.Message, t *txn.Transaction) (*iso8583.Message, error) {
	mti, err := ResponseMTI(t.MTI)
	if err != nil {
		return nil, err
	}
	resp := iso8583.NewMessage(req.GetSpec())
	resp.MTI(mti)
	if err := copyFields(resp, req, echoed); err != nil {
		return nil, err
	}
	if err := setString(resp, 37, t.RRN); err != nil {
		return nil, err
	}
	if t.Response == txn.RCApproved {
		if err := setString(resp, 38, t.AuthCode); err != nil {
			return nil, err
		}
	}
	if err := setString(resp, 39, t.Response); err != nil {
		return nil, err
	}
	if err := setString(resp, 54, t.AdditionalAmounts); err != nil {
		return nil, err
	}
	if err := setBytes(resp, 55, t.ResponseEMV); err != nil {
		return nil, err
	}
	return resp, privateAnswer(resp, t)
}

// privateAnswer sets the answer's private fields: 48 the order ID, 62 the order's QR payload or a
// sign-on's working keys, 63 the wallet and funding source of a wallet payment.
func privateAnswer(resp *iso8583.Message, t *txn.Transaction) error {
	f62 := t.QRPayload
	if t.WorkingKeys != "" {
		f62 = t.WorkingKeys
	}
	f63 := ""
	if t.Wallet != "" {
		f63 = fmt.Sprintf("%s|%s|%02d", t.Wallet, t.FundingSource, t.Instalments)
	}
	for _, f := range []struct {
		id int
		v  string
	}{{48, t.OrderID}, {62, f62}, {63, f63}} {
		if err := setString(resp, f.id, f.v); err != nil {
			return err
		}
	}
	return nil
}

// FormatErrorResponse answers a request the switch could not read with 30, echoing the fields that were
// read before the bad one (badField; 0 when all were read) so the terminal can still match it. It never
// fails: if even the MTI is unreadable it answers with MTI 0010.
func FormatErrorResponse(req *iso8583.Message, badField int) *iso8583.Message {
	resp := iso8583.NewMessage(req.GetSpec())
	mti, _ := req.GetMTI()
	rmti, err := ResponseMTI(mti)
	if err != nil {
		rmti = "0010"
	}
	resp.MTI(rmti)
	for _, id := range echoed {
		// Fields from the malformed one on were never read; copy the ones that were.
		if badField > 0 && id >= badField {
			break
		}
		if copyFields(resp, req, []int{id}) != nil {
			resp.UnsetField(id)
		}
	}
	_ = resp.Field(39, txn.RCFormatError)
	DropUnpackableEchoes(resp)
	return resp
}

// DropUnpackableEchoes removes echoed fields that do not pack. A field can unpack yet not pack again
// (a BCD nibble A-F where digits belong); leaving it out costs the terminal an echo, keeping it would
// cost the terminal its answer. The switch calls it only when an answer fails to pack.
func DropUnpackableEchoes(resp *iso8583.Message) {
	for _, id := range echoed {
		if f := resp.GetField(id); f != nil {
			if _, err := f.Pack(); err != nil {
				resp.UnsetField(id)
			}
		}
	}
}

func copyFields(dst, src *iso8583.Message, ids []int) error {
	for _, id := range ids {
		f := src.GetField(id)
		if f == nil {
			continue
		}
		b, err := f.Bytes()
		if err != nil {
			return fmt.Errorf("reading field %d: %w", id, err)
		}
		if err := dst.BinaryField(id, b); err != nil {
			s, serr := f.String()
			if serr != nil {
				return fmt.Errorf("copying field %d: %w", id, err)
			}
			if err := dst.Field(id, s); err != nil {
				return fmt.Errorf("copying field %d: %w", id, err)
			}
		}
	}
	return nil
}
