package ledger

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestFeeRoundsAsConfigured(t *testing.T) {
	cases := []struct {
		name   string
		amount int64
		rule   FeeRule
		want   int64
	}{
		{"default 60bp exact", 10000, FeeRule{BP: 60}, 60},
		{"half-up rounds .5 up", 250, FeeRule{BP: 60}, 2},
		{"half-up rounds below .5 down", 83, FeeRule{BP: 60}, 0},
		{"half-up rounds above .5 up", 84, FeeRule{BP: 60}, 1},
		{"half-even rounds 1.5 to 2", 250, FeeRule{BP: 60, Rounding: HalfEven}, 2},
		{"half-even rounds 2.5 to 2", 12500, FeeRule{BP: 2}, 3},
		{"half-even 2.5 → 2", 12500, FeeRule{BP: 2, Rounding: HalfEven}, 2},
		{"half-even 3.5 → 4", 17500, FeeRule{BP: 2, Rounding: HalfEven}, 4},
		{"down truncates", 99, FeeRule{BP: 60, Rounding: Down}, 0},
		{"up takes any remainder", 1, FeeRule{BP: 60, Rounding: Up}, 1},
		{"cap applies", 1_000_000, FeeRule{BP: 60, Cap: 2500}, 2500},
		{"cap above fee has no effect", 100_000, FeeRule{BP: 60, Cap: 2500}, 600},
		{"zero bp", 100_000, FeeRule{BP: 0}, 0},
		{"JPY amount (exponent 0) 1234 yen", 1234, FeeRule{BP: 60}, 7},
		{"KWD amount (exponent 3) 12.345", 12345, FeeRule{BP: 60}, 74},
		{"largest amount (5 999 999 999.994 rounds up)", 999_999_999_999, FeeRule{BP: 60}, 6_000_000_000},
		{"override 38bp", 100_000, FeeRule{BP: 38}, 380},
	}
	for _, c := range cases {
		if got := Fee(c.amount, c.rule); got != c.want {
			t.Errorf("%s: Fee(%d, %+v) = %d, want %d", c.name, c.amount, c.rule, got, c.want)
		}
	}
}

// TestFeeHalfUpMatchesExactArithmetic checks the integer rule against exact rational arithmetic.
func TestFeeHalfUpMatchesExactArithmetic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		a := r.Int64N(maxAmountMinor + 1)
		bp := r.Int64N(10001)
		exact := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(a), big.NewInt(bp)), big.NewInt(10000))
		exact.Add(exact, big.NewRat(1, 2))
		want := new(big.Int).Quo(exact.Num(), exact.Denom()) // floor(x + 1/2) for x >= 0
		if got := Fee(a, FeeRule{BP: bp}); got != want.Int64() {
			t.Fatalf("Fee(%d, %d bp) = %d, want %s", a, bp, got, want)
		}
	}
}

func TestProportionalFeeOfWholeAmountIsTheFee(t *testing.T) {
	for _, c := range []struct{ fee, part, amount, want int64 }{
		{60, 10000, 10000, 60},
		{60, 5000, 10000, 30},
		{61, 5000, 10000, 31}, // 30.5 half-up
		{1, 1, 3, 0},
		{0, 10, 10, 0},
	} {
		if got := proportionalFee(c.fee, c.part, c.amount); got != c.want {
			t.Errorf("proportionalFee(%d, %d, %d) = %d, want %d", c.fee, c.part, c.amount, got, c.want)
		}
	}
}
