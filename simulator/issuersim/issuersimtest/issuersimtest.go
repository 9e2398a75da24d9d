// Package issuersimtest starts an issuer-sim for a test, so packages that test against a real issuer
// host over TCP do not each repeat the start-and-close scaffolding.
package issuersimtest

import (
	"testing"

	"github.com/poswitch/poswitch/simulator/issuersim"
)

// Start starts an issuer-sim with cfg (on a free loopback port unless cfg.Addr says otherwise) and
// closes it when the test ends; a sim that cannot start fails the test.
func Start(t testing.TB, cfg issuersim.Config) *issuersim.Server {
	t.Helper()
	srv, err := issuersim.New(cfg)
	if err != nil {
		t.Fatalf("issuersimtest: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("issuersimtest: starting: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}
