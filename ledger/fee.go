package ledger

import (
	"fmt"
	"math/big"
)

// DefaultFeeBP is the merchant discount rate unless a merchant overrides it: 60 basis points (0.6%).
const DefaultFeeBP = 60

// Rounding is how a fee that falls between two minor units is rounded.
type Rounding string

// Rounding modes; half-up is the default and the brief's rule.
const (
	HalfUp   Rounding = "half_up"   // 0.5 rounds away from zero
	HalfEven Rounding = "half_even" // banker's rounding
	Down     Rounding = "down"      // truncate
	Up       Rounding = "up"        // any remainder rounds up
)

func (r Rounding) valid() bool { return r == HalfUp || r == HalfEven || r == Down || r == Up }

// FeeRule is the part of a merchant's settings the fee depends on.
type FeeRule struct {
	BP       int64    // basis points, 0..10000
	Rounding Rounding // "" means half-up
	Cap      int64    // maximum fee in minor units; 0 means no cap
}

// Fee is round(amount × bp / 10000) in the rule's rounding mode, then capped. amount is in minor
// units of the transaction currency and must be >= 0; the product fits int64 for every amount the
// ledger accepts (12 digits × 10000).
func Fee(amount int64, r FeeRule) int64 {
	if amount < 0 || r.BP < 0 || r.BP > 10000 {
		panic(fmt.Sprintf("ledger: Fee(%d, %d bp): out of range", amount, r.BP))
	}
	num := amount * r.BP
	q, rem := num/10000, num%10000
	switch r.Rounding {
	case HalfUp, "":
		if rem*2 >= 10000 {
			q++
		}
	case HalfEven:
		if rem*2 > 10000 || (rem*2 == 10000 && q%2 == 1) {
			q++
		}
	case Up:
		if rem > 0 {
			q++
		}
	case Down:
	default:
		panic(fmt.Sprintf("ledger: unknown rounding mode %q", r.Rounding))
	}
	if r.Cap > 0 && q > r.Cap {
		q = r.Cap
	}
	return q
}

// proportionalFee is the share of an original fee that goes with part of its amount (a partial
// refund returns fee × part / amount, half-up), so that refunds of the whole amount return exactly
// the fee charged, whatever the merchant's settings are now.
func proportionalFee(fee, part, amount int64) int64 {
	if amount == 0 || fee == 0 {
		return 0
	}
	// fee and part are both below 10^13: use big to be obviously safe.
	n := new(big.Int).Mul(big.NewInt(fee), big.NewInt(part))
	n.Mul(n, big.NewInt(2))
	n.Add(n, big.NewInt(amount))
	n.Quo(n, new(big.Int).Mul(big.NewInt(amount), big.NewInt(2)))
	return n.Int64()
}
