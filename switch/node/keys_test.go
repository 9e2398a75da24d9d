package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/switch/config"
)

// Key settings the node cannot honour are refused at start, naming the file, line and key: a MAC
// terminal without a master key, a master key that is not an AES key-encryption key, and a master
// key with no HSM to use it.
func TestOpenRefusesTerminalKeySettingsItCannotHonourByLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := hsm.NewDevelopment()
	kek, _, err := h.GenerateKey(ctx, hsm.KeySpec{Usage: hsm.UsageKEK, Algorithm: hsm.AES, Length: 32})
	if err != nil {
		t.Fatal(err)
	}
	pinKey, _, err := h.GenerateKey(ctx, hsm.KeySpec{Usage: hsm.UsagePIN, Algorithm: hsm.TDES})
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.NewDatabase(t)
	for _, tc := range []struct {
		name  string
		lines string
		hsm   hsm.PINTranslator
		want  string // in the error; "" opens
	}{
		{"MAC without a master key", "    mac: x9.19\n", h, "terminals[0].mac"},
		{"a PIN key as master key", "    tmk: \"" + string(pinKey) + "\"\n    mac: x9.19\n", h, "want an AES K0 or K1"},
		{"a master key and no HSM", "    tmk: \"" + string(kek) + "\"\n", nil, "needs an HSM"},
		{"a master key and MAC", "    tmk: \"" + string(kek) + "\"\n    mac: aes-cmac\n", h, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := parseNodeConfig(t, "switch.yaml", nodeHead(db, "iso87a")+fmt.Sprintf(keysYAML, tc.lines))
			var parts Parts
			if tc.hsm != nil {
				parts.HSM = tc.hsm
			}
			st, err := Open(ctx, cfg, parts, zaptest.NewLogger(t))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				st.Close()
				return
			}
			var ce *config.Error
			if err == nil || !errors.As(err, &ce) || ce.Line == 0 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v; want a config error with a line, mentioning %q", err, tc.want)
			}
			if err == nil {
				st.Close()
			}
		})
	}
}

// keysYAML is the rest of a one-terminal node after nodeHead; the argument is appended to the
// terminal's entry.
const keysYAML = `issuers:
  - id: bank-a
    endpoints: [127.0.0.1:1]
routes:
  - prefix: "622609"
    issuer: bank-a
merchants:
  - id: MERCHANT0000001
terminals:
  - id: TERM0001
    merchant: MERCHANT0000001
%s`
