package service

import (
	"context"
	"fmt"

	"github.com/poswitch/poswitch/hsm"
)

// The key management a switch asks of a remote HSM: generate a working key (A0), export it under a
// terminal's or zone's KEK (A8), and tell a key's check value (BU). The switch's terminal key
// download (switch/termkeys) runs over these as it does over the in-process HSM.

// algorithmCode is the payShield key block algorithm field for a key spec (T2 T3 A1 A2 A3).
func algorithmCode(spec hsm.KeySpec) (string, error) {
	n := spec.Length
	if n == 0 {
		n = 16
	}
	for code, a := range keyAlgorithms {
		if a.alg == spec.Algorithm && a.length == n {
			return code, nil
		}
	}
	return "", fmt.Errorf("%d-byte key of algorithm %q: %w", n, printable(byte(spec.Algorithm)), hsm.ErrKeyLength)
}

// GenerateKey sends A0 mode 0: a random key under the LMK and its check value.
func (c *Client) GenerateKey(ctx context.Context, spec hsm.KeySpec) (hsm.KeyBlock, hsm.KCV, error) {
	alg, err := algorithmCode(spec)
	if err != nil {
		return "", "", fmt.Errorf("generating key: %w", err)
	}
	if len(spec.Usage) != 2 {
		return "", "", fmt.Errorf("generating key: usage %q: %w", spec.Usage, hsm.ErrKeyUsage)
	}
	mode := byte(spec.ModeOfUse)
	if mode == 0 {
		mode = defaultModeOfUse(spec.Usage)
	}
	version := spec.KeyVersion
	if version == "" {
		version = "00"
	}
	export := "E"
	if spec.NotExportable {
		export = "N"
	}
	cmd := command("A0").text("0").text("FFF").text("S#").text(string(spec.Usage)).text(alg).
		text(string([]byte{mode})).text(version).text(export).text("00")
	out, err := c.call(ctx, cmd)
	if err != nil {
		return "", "", fmt.Errorf("generating key: %w", err)
	}
	f := &fields{b: out}
	kb := f.key("key under LMK", "S")
	kcv := f.text(6, "check value")
	f.done()
	if f.err != nil {
		return "", "", fmt.Errorf("generating key: HSM reply: %v: %w", f.err, hsm.ErrInternal)
	}
	return kb, hsm.KCV(kcv), nil
}

// defaultModeOfUse is the mode the in-process HSM gives a usage when none is asked for.
func defaultModeOfUse(u hsm.KeyUsage) byte {
	switch {
	case u == hsm.UsagePIN || u == hsm.UsageKEK || u == hsm.UsageKBPK || u == hsm.UsageDataEncryption:
		return byte(hsm.ModeBoth)
	case u == hsm.UsageBDK || u[0] == 'E':
		return byte(hsm.ModeDerive)
	default:
		return byte(hsm.ModeMAC)
	}
}

// ExportKey sends A8: the key as a TR-31 key block under the KEK, and its check value.
func (c *Client) ExportKey(ctx context.Context, kek, key hsm.KeyBlock) (string, hsm.KCV, error) {
	out, err := c.call(ctx, command("A8").text("FFF").key(kek).key(key).text("R"))
	if err != nil {
		return "", "", fmt.Errorf("exporting key: %w", err)
	}
	f := &fields{b: out}
	wrapped := f.key("key under KEK", "R")
	kcv := f.text(6, "check value")
	f.done()
	if f.err != nil {
		return "", "", fmt.Errorf("exporting key: HSM reply: %v: %w", f.err, hsm.ErrInternal)
	}
	return string(wrapped), hsm.KCV(kcv), nil
}

// KeyCheckValue sends BU.
func (c *Client) KeyCheckValue(ctx context.Context, kb hsm.KeyBlock) (hsm.KCV, error) {
	out, err := c.call(ctx, command("BU").text("FF").text("F").key(kb))
	if err != nil {
		return "", fmt.Errorf("computing check value: %w", err)
	}
	f := &fields{b: out}
	kcv := f.text(6, "check value")
	f.done()
	if f.err != nil {
		return "", fmt.Errorf("computing check value: HSM reply: %v: %w", f.err, hsm.ErrInternal)
	}
	return hsm.KCV(kcv), nil
}
