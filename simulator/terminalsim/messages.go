package terminalsim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/specs"
)

// Processing codes (field 3) the builders use.
const (
	ProcPurchase          = "000000"
	ProcVoid              = "020000"
	ProcRefund            = "200000"
	ProcBalanceInquiry    = "310000"
	ProcBillPayment       = "500000"
	ProcSettlement        = "920000" // 0500: the batch's totals
	ProcSettlementTrailer = "960000" // 0500 after a batch upload
)

// Network management codes (field 70) of a terminal's 0800.
const (
	NetworkSignOn    = "001"
	NetworkSignOff   = "002"
	NetworkKeyChange = "101"
	NetworkEcho      = "301"
)

// build makes an iso87a message from a field map; Client.Send re-encodes it for its dialect. The
// builders make every value to its field's width, so an error is a programming error.
func build(mti string, fields map[int]string) *iso8583.Message {
	m := iso8583.NewMessage(specs.ISO87A)
	m.MTI(mti)
	for id, v := range fields {
		if v == "" {
			continue
		}
		if err := m.Field(id, v); err != nil {
			panic(fmt.Sprintf("terminalsim: building %s field %d: %v", mti, id, err))
		}
	}
	return m
}

func get(m *iso8583.Message, id int) string {
	if m == nil || m.GetField(id) == nil {
		return ""
	}
	s, _ := m.GetString(id)
	return s
}

// cardRequest is the fields of a card request from t at now: card data as the card is presented
// (track 2 when swiped, PAN and expiry otherwise).
func cardRequest(t Terminal, card cards.Card, proc string, amount int64, currency string, stan int, now time.Time) map[int]string {
	if currency == "" {
		currency = card.Currency
	}
	stan %= 1_000_000
	entry := entryModeFor(card, stan)
	f := map[int]string{
		3: proc, 7: now.UTC().Format("0102150405"), 11: fmt.Sprintf("%06d", stan), 12: now.Format("150405"),
		13: now.Format("0102"), 22: entry, 25: "00", 41: t.TID, 42: t.MID, 49: currency,
	}
	if amount >= 0 {
		f[4] = fmt.Sprintf("%012d", amount)
	}
	if entry == EntrySwipe {
		f[35] = card.Track2()
	} else {
		f[2], f[14] = card.PAN, card.Expiry
	}
	if t.Name != "" {
		f[43] = fmt.Sprintf("%-40.40s", t.Name)
	}
	return f
}

// NewPreAuth builds an 0100 pre-authorisation of amount (a hold; NewCompletion completes it).
func NewPreAuth(t Terminal, card cards.Card, amount int64, currency string, stan int) *iso8583.Message {
	return build("0100", cardRequest(t, card, ProcPurchase, amount, currency, stan, time.Now()))
}

// NewBalanceInquiry builds an 0200 balance inquiry (processing code 31, no amount); the answer
// carries the balance in field 54.
func NewBalanceInquiry(t Terminal, card cards.Card, currency string, stan int) *iso8583.Message {
	return build("0200", cardRequest(t, card, ProcBalanceInquiry, -1, currency, stan, time.Now()))
}

// NewBillPayment builds an 0200 bill payment (processing code 50) of amount at t's merchant (the
// biller).
func NewBillPayment(t Terminal, card cards.Card, amount int64, currency string, stan int) *iso8583.Message {
	return build("0200", cardRequest(t, card, ProcBillPayment, amount, currency, stan, time.Now()))
}

// OriginalData is field 90 naming orig: its MTI, STAN (11), transmission date and time (7), the
// acquirer (32, zero-filled to 11 digits) and 11 zeros for the forwarding institution.
func OriginalData(orig *iso8583.Message) string {
	mti, _ := orig.GetMTI()
	acq := get(orig, 32)
	if len(acq) > 11 {
		acq = acq[len(acq)-11:]
	}
	return mti + get(orig, 11) + get(orig, 7) + strings.Repeat("0", 11-len(acq)) + acq + strings.Repeat("0", 11)
}

// onOriginal is the fields of a message acting on orig: the terminal, merchant, currency and card
// of the original (the PAN read from track 2 when the card was swiped: a terminal keeps no track).
func onOriginal(orig *iso8583.Message, proc string, amount int64, stan int, now time.Time) map[int]string {
	pan := get(orig, 2)
	if tr := get(orig, 35); pan == "" && tr != "" {
		pan, _, _ = strings.Cut(tr, "=")
	}
	return map[int]string{
		2: pan, 3: proc, 4: fmt.Sprintf("%012d", amount), 7: now.UTC().Format("0102150405"), 11: fmt.Sprintf("%06d", stan%1_000_000),
		12: now.Format("150405"), 13: now.Format("0102"), 25: "00", 41: get(orig, 41), 42: get(orig, 42), 43: get(orig, 43),
		49: get(orig, 49), 90: OriginalData(orig),
	}
}

func amountOf(m *iso8583.Message) int64 {
	a, _ := strconv.ParseInt(get(m, 4), 10, 64) // 12 digits, leading zeros: base 10, not Sscan's octal
	return a
}

// NewCompletion builds an 0220 completing the pre-authorisation orig (an 0100) for amount (at most
// the hold), with the authorization code the 0110 gave.
func NewCompletion(orig *iso8583.Message, authCode string, amount int64, stan int) *iso8583.Message {
	f := onOriginal(orig, ProcPurchase, amount, stan, time.Now())
	f[38] = authCode
	return build("0220", f)
}

// NewRefund builds an 0200 refund (processing code 20) of amount against the sale orig. With orig
// nil it is a refund naming no original, which the switch declines (12); card is used then.
func NewRefund(t Terminal, card cards.Card, orig *iso8583.Message, amount int64, stan int) *iso8583.Message {
	if orig == nil {
		return build("0200", cardRequest(t, card, ProcRefund, amount, "", stan, time.Now()))
	}
	return build("0200", onOriginal(orig, ProcRefund, amount, stan, time.Now()))
}

// NewVoid builds an 0200 void (processing code 02) of orig, for its whole amount.
func NewVoid(orig *iso8583.Message, stan int) *iso8583.Message {
	return build("0200", onOriginal(orig, ProcVoid, amountOf(orig), stan, time.Now()))
}

// NewReversal builds an 0400 reversal of orig (0401 when repeat) for its whole amount. It keeps the
// original's STAN and transmission time as its own, as a terminal that stores its pending reversal
// and resends it does, so the 0400 and every 0401 repeat are one transaction to the switch.
func NewReversal(orig *iso8583.Message, repeat bool) *iso8583.Message {
	return newReversal(orig, "0400", repeat)
}

// NewReversalAdvice builds an 0420 reversal advice of orig (0421 when repeat), like NewReversal.
func NewReversalAdvice(orig *iso8583.Message, repeat bool) *iso8583.Message {
	return newReversal(orig, "0420", repeat)
}

func newReversal(orig *iso8583.Message, mti string, repeat bool) *iso8583.Message {
	f := onOriginal(orig, get(orig, 3), amountOf(orig), 0, time.Now())
	f[7], f[11], f[12], f[13], f[22] = get(orig, 7), get(orig, 11), get(orig, 12), get(orig, 13), get(orig, 22)
	if repeat {
		mti = mti[:3] + "1"
	}
	return build(mti, f)
}

// Repeat is m as its repeat (0200 → 0201, 0220 → 0221, 0400 → 0401 …): the same fields, so the
// same transaction to the switch.
func Repeat(m *iso8583.Message) *iso8583.Message {
	mti, _ := m.GetMTI()
	out := iso8583.NewMessage(m.GetSpec())
	out.MTI(mti[:3] + "1")
	for id := range m.GetFields() {
		if id == 0 || id == 1 {
			continue
		}
		b, err := m.GetBytes(id)
		if err == nil {
			err = out.BinaryField(id, b)
		}
		if err != nil {
			panic(fmt.Sprintf("terminalsim: copying field %d: %v", id, err))
		}
	}
	return out
}

// NewNetwork builds a terminal's 0800 with network management code (NetworkSignOn, …).
func NewNetwork(t Terminal, code string, stan int) *iso8583.Message {
	now := time.Now()
	return build("0800", map[int]string{7: now.UTC().Format("0102150405"), 11: fmt.Sprintf("%06d", stan%1_000_000),
		41: t.TID, 42: t.MID, 70: code})
}

// NewSignOn builds an 0800 sign-on (70 = 001).
func NewSignOn(t Terminal, stan int) *iso8583.Message { return NewNetwork(t, NetworkSignOn, stan) }

// NewEcho builds an 0800 echo test (70 = 301).
func NewEcho(t Terminal, stan int) *iso8583.Message { return NewNetwork(t, NetworkEcho, stan) }

// Totals are a terminal batch's totals as a 0500 carries them: debits are sales (purchases,
// completions, bill payments), credits refunds, their reversals voids; a reversed transaction is
// in no field. Amounts are minor units of Currency.
type Totals struct {
	Currency              string
	CreditsCount          int64 // 74
	CreditsReversalCount  int64 // 75
	DebitsCount           int64 // 76
	DebitsReversalCount   int64 // 77
	CreditsAmount         int64 // 86
	CreditsReversalAmount int64 // 87
	DebitsAmount          int64 // 88
	DebitsReversalAmount  int64 // 89
	InquiriesCount        int64 // 80, sent when SendOptional
	AuthorizationsCount   int64 // 81, sent when SendOptional
	SendOptional          bool
}

// Net is field 97: 86 + 87 − 88 − 89.
func (t Totals) Net() int64 {
	return t.CreditsAmount + t.CreditsReversalAmount - t.DebitsAmount - t.DebitsReversalAmount
}

// NewBatchSettlement builds the 0500 (processing code 920000) that closes t's batch with tot; the
// switch answers 00 when the ledger agrees and 95 when it does not (upload the batch, then send
// NewBatchTrailer).
func NewBatchSettlement(t Terminal, tot Totals, stan int) *iso8583.Message {
	return newSettlement(t, tot, ProcSettlement, stan)
}

// NewBatchTrailer builds the 0500 (processing code 960000) that ends a batch upload.
func NewBatchTrailer(t Terminal, tot Totals, stan int) *iso8583.Message {
	return newSettlement(t, tot, ProcSettlementTrailer, stan)
}

func newSettlement(t Terminal, tot Totals, proc string, stan int) *iso8583.Message {
	now := time.Now()
	n10 := func(v int64) string { return fmt.Sprintf("%010d", v) }
	n16 := func(v int64) string { return fmt.Sprintf("%016d", v) }
	net := tot.Net()
	sign := "C"
	if net < 0 {
		sign, net = "D", -net
	}
	f := map[int]string{3: proc, 7: now.UTC().Format("0102150405"), 11: fmt.Sprintf("%06d", stan%1_000_000), 41: t.TID,
		42: t.MID, 49: tot.Currency, 74: n10(tot.CreditsCount), 75: n10(tot.CreditsReversalCount), 76: n10(tot.DebitsCount),
		77: n10(tot.DebitsReversalCount), 86: n16(tot.CreditsAmount), 87: n16(tot.CreditsReversalAmount),
		88: n16(tot.DebitsAmount), 89: n16(tot.DebitsReversalAmount), 97: sign + n16(net)}
	if tot.SendOptional {
		f[80], f[81] = n10(tot.InquiriesCount), n10(tot.AuthorizationsCount)
	}
	return build("0500", f)
}

// NewBatchUpload builds the 0320 that uploads one transaction of the batch: req as the terminal
// sent it and answer as it came back (for the RRN and authorization code). Field 90 names the
// uploaded transaction itself (its MTI, STAN and field 7); field 11 is the upload's own STAN. No
// card data is uploaded.
func NewBatchUpload(req, answer *iso8583.Message, stan int) *iso8583.Message {
	now := time.Now()
	return build("0320", map[int]string{3: get(req, 3), 4: get(req, 4), 7: now.UTC().Format("0102150405"),
		11: fmt.Sprintf("%06d", stan%1_000_000), 12: get(req, 12), 13: get(req, 13), 37: get(answer, 37), 38: get(answer, 38),
		41: get(req, 41), 42: get(req, 42), 49: get(req, 49), 90: OriginalData(req)})
}

// Batch is a terminal's batch as the terminal keeps it: the transactions approved since its last
// settlement, for its totals and its upload.
type Batch struct {
	Currency string
	txns     map[string]*batchTxn
	order    []string // first-recorded order of the keys in txns (and of some since reversed)
	ordered  map[string]bool
	inquiry  int64
}

type batchTxn struct {
	req, answer *iso8583.Message
	kind        string // "debit", "credit", "void", "preauth"
	voids       string // for a void: the key of what it voids
}

// NewBatch starts an empty batch in currency.
func NewBatch(currency string) *Batch {
	return &Batch{Currency: currency, txns: map[string]*batchTxn{}, ordered: map[string]bool{}}
}

// batchKey names a transaction by MTI class, STAN and field 7, as field 90 does.
func batchKey(mti, stan, f7 string) string {
	class := mti
	if len(mti) == 4 {
		fn := mti[2]
		if fn >= '0' && fn <= '9' {
			fn -= (fn - '0') % 2
		}
		class = string([]byte{mti[1], fn})
	}
	return class + "|" + stan + "|" + f7
}

func keyOf(m *iso8583.Message) string {
	mti, _ := m.GetMTI()
	return batchKey(mti, get(m, 11), get(m, 7))
}

func keyOfOriginal(f90 string) string {
	if len(f90) < 20 {
		return ""
	}
	return batchKey(f90[0:4], f90[4:10], f90[10:20])
}

// Record adds a request and its answer to the batch as a terminal does: approved sales, refunds,
// voids and pre-authorisations stay in it; a reversal (sent whatever its answer) takes its original
// out; inquiries are counted.
func (b *Batch) Record(req, answer *iso8583.Message) {
	mti, _ := req.GetMTI()
	proc := get(req, 3)
	kind2 := ""
	if len(proc) >= 2 {
		kind2 = proc[:2]
	}
	if strings.HasPrefix(mti, "04") {
		if k := keyOfOriginal(get(req, 90)); b.txns[k] != nil {
			delete(b.txns, k)
		}
		return
	}
	if get(answer, 39) != "00" {
		return
	}
	t := &batchTxn{req: req, answer: answer}
	switch {
	case kind2 == "31":
		b.inquiry++
		return
	case strings.HasPrefix(mti, "01"):
		t.kind = "preauth"
	case kind2 == "02":
		t.kind, t.voids = "void", keyOfOriginal(get(req, 90))
	case kind2 == "20":
		t.kind = "credit"
	default:
		t.kind = "debit"
	}
	k := keyOf(req)
	if !b.ordered[k] {
		b.ordered[k] = true
		b.order = append(b.order, k)
	}
	b.txns[k] = t
}

// Totals are the batch's totals.
func (b *Batch) Totals() Totals {
	tot := Totals{Currency: b.Currency, InquiriesCount: b.inquiry}
	for _, k := range b.order {
		t := b.txns[k]
		if t == nil {
			continue
		}
		a := amountOf(t.req)
		switch t.kind {
		case "debit":
			tot.DebitsCount++
			tot.DebitsAmount += a
		case "credit":
			tot.CreditsCount++
			tot.CreditsAmount += a
		case "preauth":
			tot.AuthorizationsCount++
		case "void":
			if o := b.txns[t.voids]; o != nil && o.kind == "credit" {
				tot.CreditsReversalCount++
				tot.CreditsReversalAmount += a
			} else {
				tot.DebitsReversalCount++
				tot.DebitsReversalAmount += a
			}
		}
	}
	return tot
}

// Len is the number of transactions in the batch.
func (b *Batch) Len() int {
	n := 0
	for _, k := range b.order {
		if b.txns[k] != nil {
			n++
		}
	}
	return n
}

// Uploads are the 0320s uploading every transaction of the batch, with STANs from firstSTAN on.
func (b *Batch) Uploads(firstSTAN int) []*iso8583.Message {
	var out []*iso8583.Message
	for _, k := range b.order {
		if t := b.txns[k]; t != nil {
			out = append(out, NewBatchUpload(t.req, t.answer, firstSTAN+len(out)))
		}
	}
	return out
}
