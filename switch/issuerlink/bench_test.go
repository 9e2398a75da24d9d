package issuerlink

import (
	"context"
	"testing"
	"time"

	"github.com/poswitch/poswitch/simulator/cards"
)

// BenchmarkLinkSendParallel is the round trip of purchases through one link of two connections to a
// local issuer-sim, with many requests in flight (b.SetParallelism).
func BenchmarkLinkSendParallel(b *testing.B) {
	is := startIssuer(b, "127.0.0.1:0")
	l := newLink(b, is.Addr(), time.Second)
	waitUp(b, l)
	var card cards.Card
	for _, c := range cards.Load() {
		if c.Issuer == cards.BankA {
			card = c
		}
	}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := l.Send(context.Background(), purchase(card)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
