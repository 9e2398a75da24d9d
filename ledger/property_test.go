package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// model is an independent account of what the ledger should hold, kept by the property test.
type modelTxn struct {
	b         Booking
	fee       int64
	refunded  int64
	feeRet    int64
	cancelled bool
	isRefund  bool
	parent    *modelTxn
	cycle     int64
}

type merchantFig struct{ gross, fee, refunds, feeRet int64 }

// TestPropertyRandomSequencesKeepTheBooksTrue books random rounds of purchases, retries,
// reversals (of known, unknown and already reversed transactions), voids, refunds (some above
// what is left) and cut-overs, many at once, and then checks the invariants of issue #4.
func TestPropertyRandomSequencesKeepTheBooksTrue(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { propertyRun(t, seed) })
	}
}

func propertyRun(t *testing.T, seed uint64) {
	tl := newTestLedger(t, WriterConfig{BatchWindow: time.Millisecond, MaxBatchBookings: 64})
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(seed, 99))
	merchants := []MerchantSettings{
		{ID: "MA"}, {ID: "MB", FeeBP: 38}, {ID: "MC", RefundsReturnFee: true}, {ID: "MD", FeeCap: 150, RefundsReturnFee: true},
		{ID: "ME", FeeBP: 0, FeeBPSet: true},
	}
	settings := map[string]MerchantSettings{}
	for _, m := range merchants {
		if err := UpsertMerchant(ctx, tl.app, m); err != nil {
			t.Fatal(err)
		}
		n, _ := m.normalized()
		settings[m.ID] = n
	}
	currencies := []string{"156", "392", "414"}
	var txns []*modelTxn // sales and refunds that booked
	var allKeys []Booking
	figs := map[[3]string]*merchantFig{} // cycle|merchant|currency
	fig := func(cycle int64, m, c string) *merchantFig {
		k := [3]string{fmt.Sprint(cycle), m, c}
		if figs[k] == nil {
			figs[k] = &merchantFig{}
		}
		return figs[k]
	}
	var wantFeeIncome = map[string]int64{}
	cycle := int64(1)
	n := 0
	newKey := func(kind string) string { n++; return fmt.Sprintf("p%d|T%d|%06d|%s", seed, n%7, n, kind) }

	for round := 0; round < 25; round++ {
		var batch []Booking
		type expect struct {
			status    Status
			apply     func(res Result)
			duplicate bool
		}
		var expects []expect
		touched := map[*modelTxn]bool{}
		for i := 0; i < 40; i++ {
			switch op := rnd.IntN(10); {
			case op < 4 || len(txns) == 0: // purchase
				m := merchants[rnd.IntN(len(merchants))].ID
				c := currencies[rnd.IntN(len(currencies))]
				b := Booking{Key: newKey("02"), Kind: Purchase, Merchant: m, Terminal: fmt.Sprintf("T%d", n%7), Issuer: fmt.Sprintf("I%d", rnd.IntN(3)),
					Currency: c, Amount: 1 + rnd.Int64N(500000), At: time.Now()}
				if rnd.IntN(5) == 0 {
					b.Kind = BillPayment
				}
				mt := &modelTxn{b: b, fee: Fee(b.Amount, settings[m].feeRule()), cycle: cycle}
				batch = append(batch, b)
				cyc := cycle
				expects = append(expects, expect{status: StatusBooked, apply: func(res Result) {
					if res.Fee != mt.fee {
						t.Errorf("purchase %s fee %d, model %d", b.Key, res.Fee, mt.fee)
					}
					txns = append(txns, mt)
					f := fig(cyc, m, c)
					f.gross += b.Amount
					f.fee += mt.fee
					wantFeeIncome[c] += mt.fee
				}})
			case op < 5 && len(allKeys) > 0: // retry of something already booked
				b := allKeys[rnd.IntN(len(allKeys))]
				batch = append(batch, b)
				expects = append(expects, expect{duplicate: true})
			case op < 6: // reversal of an unknown transaction
				b := Booking{Key: newKey("04"), Kind: Reversal, OriginalKey: "never-" + newKey("x"), Currency: "156", At: time.Now()}
				batch = append(batch, b)
				expects = append(expects, expect{status: StatusNoop})
			default: // reversal, void or refund of an earlier transaction
				mt := txns[rnd.IntN(len(txns))]
				if touched[mt] || (mt.parent != nil && touched[mt.parent]) {
					continue
				}
				touched[mt] = true
				if mt.parent != nil {
					touched[mt.parent] = true
				}
				kind := []Kind{Reversal, Void, Refund, Refund}[rnd.IntN(4)]
				if mt.isRefund && kind == Refund {
					kind = Reversal
				}
				b := Booking{Key: newKey(kind.String()), Kind: kind, OriginalKey: mt.b.Key, Merchant: mt.b.Merchant, Terminal: mt.b.Terminal,
					Currency: mt.b.Currency, At: time.Now()}
				cyc := cycle
				m, c := mt.b.Merchant, mt.b.Currency
				switch {
				case kind == Refund:
					left := mt.b.Amount - mt.refunded
					b.Amount = 1 + rnd.Int64N(max(left, 1)+left/4+1) // sometimes more than is left
					if mt.cancelled || b.Amount > left {
						expects = append(expects, expect{status: StatusRefused})
						break
					}
					var fr int64
					if settings[m].RefundsReturnFee {
						fr = proportionalFee(mt.fee, b.Amount, mt.b.Amount)
						if b.Amount == left || fr > mt.fee-mt.feeRet {
							fr = mt.fee - mt.feeRet
						}
					}
					rt := &modelTxn{b: b, fee: fr, isRefund: true, parent: mt, cycle: cyc}
					expects = append(expects, expect{status: StatusBooked, apply: func(res Result) {
						if res.Fee != fr {
							t.Errorf("refund %s returned fee %d, model %d", b.Key, res.Fee, fr)
						}
						mt.refunded += b.Amount
						mt.feeRet += fr
						txns = append(txns, rt)
						f := fig(cyc, m, c)
						f.refunds += b.Amount
						f.feeRet += fr
						wantFeeIncome[c] -= fr
					}})
				case kind == Void && !mt.cancelled && mt.cycle < cycle:
					// Its cycle was cut over: the money was settled, a void is refused (refund instead).
					expects = append(expects, expect{status: StatusRefused})
				case mt.cancelled:
					expects = append(expects, expect{status: StatusNoop})
				case !mt.isRefund && mt.refunded > 0:
					// A refunded sale can still be reversed (the mirror of the sale); the model
					// books it like any reversal.
					fallthrough
				default:
					expects = append(expects, expect{status: StatusBooked, apply: func(res Result) {
						mt.cancelled = true
						f := fig(cyc, m, c)
						if mt.isRefund {
							f.refunds -= mt.b.Amount
							f.feeRet -= mt.fee
							wantFeeIncome[c] += mt.fee
							mt.parent.refunded -= mt.b.Amount
							mt.parent.feeRet -= mt.fee
						} else {
							f.gross -= mt.b.Amount
							f.fee -= mt.fee
							wantFeeIncome[c] -= mt.fee
						}
					}})
				}
				batch = append(batch, b)
			}
		}
		// Book the round concurrently (they land in shared batches), then apply the model.
		results := make([]Result, len(batch))
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for i := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = tl.w.Book(ctx, batch[i])
			}()
		}
		wg.Wait()
		for i, b := range batch {
			if errs[i] != nil {
				t.Fatalf("round %d: booking %s: %v", round, b.Key, errs[i])
			}
			e := expects[i]
			if e.duplicate {
				if !results[i].Duplicate {
					t.Errorf("retry of %s was booked again: %+v", b.Key, results[i])
				}
				continue
			}
			if results[i].Status != e.status {
				t.Fatalf("round %d: %s %s: %s (%s), model says %s", round, b.Kind, b.Key, results[i].Status, results[i].Reason, e.status)
			}
			allKeys = append(allKeys, b)
			if e.apply != nil {
				e.apply(results[i])
			}
		}
		if round%6 == 5 {
			rep, err := Cutover(ctx, tl.app, "manual", time.Now(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rep.Payouts {
				f := fig(rep.Cycle, p.Merchant, p.Currency)
				if want := f.gross - f.fee - f.refunds + f.feeRet; p.Net != want || p.Gross != f.gross || p.Fee != f.fee || p.Refunds != f.refunds {
					t.Errorf("cycle %d payout %s/%s: %+v; model gross %d fee %d refunds %d net %d", rep.Cycle, p.Merchant, p.Currency, p, f.gross, f.fee, f.refunds, want)
				}
				delete(figs, [3]string{fmt.Sprint(rep.Cycle), p.Merchant, p.Currency})
			}
			for k, f := range figs {
				if k[0] == fmt.Sprint(rep.Cycle) && (f.gross != 0 || f.refunds != 0 || f.fee != 0) {
					t.Errorf("cycle %d: model has figures for %s/%s but no payout: %+v", rep.Cycle, k[1], k[2], f)
				}
			}
			cycle = rep.Cycle + 1
		}
	}

	// Invariants, from the database.
	aconn, err := pgx.Connect(ctx, tl.db.Auditor)
	if err != nil {
		t.Fatal(err)
	}
	defer aconn.Close(ctx)
	rep, err := Verify(ctx, aconn)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
	for c, want := range wantFeeIncome {
		if got := -tl.balance(t, AccountFeeIncome, c); got != want {
			t.Errorf("fee income in %s: %d, Σ fees %d", c, got, want)
		}
	}
	var over int
	if err := tl.owner.QueryRow(ctx, `
SELECT count(*) FROM journal_entry o
 WHERE o.amount < (SELECT COALESCE(sum(r.amount), 0) FROM journal_entry r WHERE r.original_key = o.txn_key AND r.kind = 'refund'
                    AND r.status = 'booked' AND NOT EXISTS (SELECT 1 FROM journal_entry v WHERE v.consumes = r.txn_key))`).Scan(&over); err != nil {
		t.Fatal(err)
	}
	if over != 0 {
		t.Errorf("%d transactions refunded beyond their amount", over)
	}
	t.Logf("%d entries, %d postings, %d batches in %d chains", rep.Entries, rep.Postings, rep.Batches, rep.Chains)
}
