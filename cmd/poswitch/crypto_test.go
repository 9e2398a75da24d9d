package main

import (
	"bytes"
	"strings"
	"testing"
)

func runCrypto(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{"crypto"}, args...))
	err := root.Execute()
	return strings.TrimSpace(out.String()), err
}

func TestCryptoCommandsPrintUppercaseHex(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		// Vectors: psec (format 0), ANSI X9.24-1 (DUKPT), ANSI X9.24-3 (AES DUKPT), ISO 9797-1 B.4.
		{[]string{"pinblock", "encode", "--format", "0", "--pin", "1234", "--pan", "5555555551234567"}, "041261AAAAEDCBA9"},
		{[]string{"dukpt", "pin-key", "--bdk", "0123456789abcdeffedcba9876543210", "--ksn", "FFFF9876543210E00001"}, "042666B49184CF5C68DE9628D0397B36"},
		{[]string{"dukpt", "pin-key", "--bdk", "FEDCBA9876543210F1F1F1F1F1F1F1F1", "--ksn", "123456789012345600000001"}, "AF8CB133A78F8DC2D1359F18527593FB"},
		{[]string{"mac", "generate", "--alg", "x919", "--key", "0123456789ABCDEFFEDCBA9876543210", "--data", "4E6F77206973207468652074696D6520666F7220616C6C20"}, "A1C72E74EA3FA9B6"},
		{[]string{"pvv", "verify", "--pvk", "0123456789ABCDEFFEDCBA9876543210", "--pan", "1122334455667788", "--pvki", "1", "--pin", "4524", "--pvv", "8523"}, "OK"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			got, err := runCrypto(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("printed %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCryptoCommandsFailOnBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"kcv", "--key", "0123456789ABCDEFFEDCBA987654321"}, "odd number of hex digits"},
		{[]string{"pinblock", "encrypt", "--pin", "1234", "--pan", "4012345678909", "--key", "0123456789ABCDEFFEDCBA98765432"}, "key length"},
		{[]string{"pinblock", "encode", "--pin", "1234", "--pan", "40123"}, "PAN of 5 digits"},
		{[]string{"pvv", "verify", "--pvk", "0123456789ABCDEFFEDCBA9876543210", "--pan", "1122334455667788", "--pin", "4525", "--pvv", "8523"}, "verification failed"},
		{[]string{"cvv", "generate", "--cvk", "0123456789ABCDEFFEDCBA9876543210", "--pan", "4123456789012345"}, "expiry"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			out, err := runCrypto(t, tc.args...)
			if err == nil {
				t.Fatalf("accepted, printed %q", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if out != "" {
				t.Errorf("printed %q on failure", out)
			}
		})
	}
}
