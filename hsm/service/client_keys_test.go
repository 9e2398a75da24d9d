package service

import (
	"context"
	"testing"

	"github.com/poswitch/poswitch/hsm"
)

// A switch rolls a terminal's working keys over the remote HSM: the keys it generates there are
// exported under the terminal's master key, import into the terminal's own HSM with the same check
// values, and MAC alike on both sides.
func TestClientGeneratesAndExportsWorkingKeysUnderATMK(t *testing.T) {
	ctx := context.Background()
	switchHSM, terminalHSM := hsm.NewDevelopment(), hsm.NewDevelopment()
	c := dial(t, startServer(t, switchHSM, Config{}))
	tmkSwitch, tmkTerminal, err := hsm.EstablishSharedKEK(ctx, switchHSM, terminalHSM)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []hsm.KeySpec{
		{Usage: hsm.UsagePIN, Algorithm: hsm.TDES, Length: 16},
		{Usage: hsm.UsageMACAlg3, Algorithm: hsm.TDES, Length: 16},
		{Usage: hsm.UsageMACCMAC, Algorithm: hsm.AES, Length: 16},
	} {
		kb, kcv, err := c.GenerateKey(ctx, spec)
		if err != nil {
			t.Fatalf("%s: %v", spec.Usage, err)
		}
		info, err := switchHSM.DescribeKey(ctx, kb)
		if err != nil || info.Usage != spec.Usage || info.Algorithm != spec.Algorithm || info.Length != 16 || info.KCV != kcv {
			t.Fatalf("%s: generated %+v (%v), KCV %s", spec.Usage, info, err, kcv)
		}
		if bu, err := c.KeyCheckValue(ctx, kb); err != nil || bu != kcv {
			t.Errorf("%s: BU says %s (%v), A0 said %s", spec.Usage, bu, err, kcv)
		}
		wrapped, exportKCV, err := c.ExportKey(ctx, tmkSwitch, kb)
		if err != nil || exportKCV != kcv {
			t.Fatalf("%s: export: KCV %s (%v), want %s", spec.Usage, exportKCV, err, kcv)
		}
		onTerminal, terminalKCV, err := terminalHSM.ImportKey(ctx, tmkTerminal, wrapped)
		if err != nil || terminalKCV != kcv {
			t.Fatalf("%s: terminal import: KCV %s (%v), want %s", spec.Usage, terminalKCV, err, kcv)
		}
		if spec.Usage == hsm.UsagePIN {
			continue
		}
		data := []byte("0200 message bytes up to the MAC")
		mac, err := terminalHSM.GenerateMAC(ctx, hsm.GenerateMAC{Key: onTerminal, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.VerifyMAC(ctx, hsm.VerifyMAC{Key: kb, Data: data, MAC: mac}); err != nil {
			t.Errorf("%s: the switch's copy does not verify the terminal's MAC: %v", spec.Usage, err)
		}
	}
	// A PIN key cannot serve as the KEK: the HSM refuses by the key's usage.
	pin, _, err := c.GenerateKey(ctx, hsm.KeySpec{Usage: hsm.UsagePIN, Algorithm: hsm.AES})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ExportKey(ctx, pin, pin); hsm.Code(err) != "A6" && hsm.Code(err) != "A8" {
		t.Errorf("export under a PIN key: %v, want a key usage or mode error", err)
	}
}
