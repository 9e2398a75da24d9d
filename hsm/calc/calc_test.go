package calc

import (
	"errors"
	"testing"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
)

// The calculator wraps the primitives; these check the wiring with one published vector each
// (sources as cited in the primitives' tests) and the argument errors a lab user will hit.
func TestCalculatorReproducesPublishedVectors(t *testing.T) {
	ibm := IBM3624Params{DecimalizationTable: "1234567890123456", ValidationData: "1122334455667788", Pad: "F", CheckLength: 4}
	tests := []struct {
		name string
		run  func() (string, error)
		want string
	}{
		{"format 0 (psec)", func() (string, error) { return EncodePINBlock(0, "1234", "5555555551234567") }, "041261AAAAEDCBA9"},
		{"format 0 decode", func() (string, error) { return DecodePINBlock(0, "041261aaaaedcba9", "5555555551234567") }, "1234"},
		{"DUKPT PIN block (X9.24-1)", func() (string, error) {
			return EncryptPINBlock("042666B49184CF5C68DE9628D0397B36", 0, "1234", "4012345678909")
		}, "1B9C1845EB993A7A"},
		{"DUKPT IPEK (X9.24-1)", func() (string, error) {
			return TDESIPEK("0123456789ABCDEFFEDCBA9876543210", "FFFF9876543210E00000")
		}, "6AC292FAA1315B4D858AB3A3D7D5933A"},
		{"TDES DUKPT PIN key", func() (string, error) {
			return DUKPTKey("0123456789ABCDEFFEDCBA9876543210", "FFFF9876543210E00001", "pin", "")
		}, "042666B49184CF5C68DE9628D0397B36"},
		{"AES DUKPT initial key (X9.24-3)", func() (string, error) {
			return AESInitialKey("FEDCBA9876543210F1F1F1F1F1F1F1F1", "123456789012345600000001")
		}, "1273671EA26AC29AFA4D1084127652A1"},
		{"AES DUKPT PIN key", func() (string, error) {
			return DUKPTKey("FEDCBA9876543210F1F1F1F1F1F1F1F1", "123456789012345600000001", "pin", "aes128")
		}, "AF8CB133A78F8DC2D1359F18527593FB"},
		{"IBM 3624 natural PIN (psec)", func() (string, error) { return IBM3624NaturalPIN("0123456789ABCDEFFEDCBA9876543210", ibm) }, "4524"},
		{"IBM 3624 offset", func() (string, error) { return IBM3624Offset("0123456789ABCDEFFEDCBA9876543210", ibm, "1234") }, "7710"},
		{"PVV (psec)", func() (string, error) {
			return VisaPVV("0123456789ABCDEFFEDCBA9876543210", "1122334455667788", 1, "4524")
		}, "8523"},
		{"CVV (Visa)", func() (string, error) {
			return CVV("0123456789ABCDEFFEDCBA9876543210", "4123456789012345", "8701", "101")
		}, "561"},
		{"X9.19 MAC (ISO 9797-1 B.4)", func() (string, error) {
			return MAC(MACX919, "0123456789ABCDEFFEDCBA9876543210", "4E6F77206973207468652074696D6520666F7220616C6C20", 1, 0)
		}, "A1C72E74EA3FA9B6"},
		{"X9.9 MAC, 4 bytes", func() (string, error) {
			return MAC(MACX99, "0123456789ABCDEF", "4E6F77206973207468652074696D6520666F7220616C6C20", 1, 4)
		}, "70A30640"},
		{"AES-CMAC (RFC 4493)", func() (string, error) { return MAC(MACCMAC, "2B7E151628AED2A6ABF7158809CF4F3C", "", 0, 0) }, "BB1D6929E95937287FA37D129B756746"},
		{"EMV option A (pyemv)", func() (string, error) {
			return EMVMasterKey("0123456789ABCDEFFEDCBA9876543210", "12345678901234567", "01", "a")
		}, "73AD54688CEF2934B0979857E3C719F1"},
		{"EMV session key (pyemv)", func() (string, error) { return EMVSessionKey("0123456789ABCDEFFEDCBA9876543210", "001C") }, "E9FB384AF807B940FEDCEA613461B0C4"},
		{"ARQC (pyemv)", func() (string, error) {
			return ARQC("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB", "000000002000"+"000000000000"+"0124"+"0000008000"+"0124"+"110309"+"00"+"3804823E"+"5800"+"0001", false)
		}, "3B76CF10FECD8789"},
		{"ARPC 1 (pyemv)", func() (string, error) {
			return ARPCMethod1("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB", "1234567890ABCDEF", "0000")
		}, "F5E6F44147E2F1B0"},
		{"ARPC 2 (pyemv)", func() (string, error) {
			return ARPCMethod2("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB", "1234567890ABCDEF", "00000000", "")
		}, "9308BEBC"},
		{"KCV", func() (string, error) { return KCV("0123456789ABCDEFFEDCBA9876543210", "tdes") }, "08D7B4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.run()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCalculatorNamesTheBadArgument(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
		text string
	}{
		{"odd hex key", second(EncryptPINBlock("012", 0, "1234", "4012345678909")), cryptoerr.ErrInvalidInput, "key: odd number of hex digits: invalid input"},
		{"short key", second(EncryptPINBlock("0123456789ABCDEF01", 0, "1234", "4012345678909")), cryptoerr.ErrKeyLength, ""},
		{"short PAN", second(EncodePINBlock(0, "1234", "40123")), cryptoerr.ErrPAN, ""},
		{"short PIN", second(EncodePINBlock(0, "123", "4012345678909")), cryptoerr.ErrPINLength, ""},
		{"format 7", second(EncodePINBlock(7, "1234", "4012345678909")), cryptoerr.ErrPINBlockFormat, ""},
		{"AES key for format 0 is TDES-length-checked", second(EncryptPINBlock("00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF", 0, "1234", "4012345678909")), cryptoerr.ErrKeyLength, ""},
		{"KSN of 11 bytes", second(DUKPTKey("0123456789ABCDEFFEDCBA9876543210", "FFFF9876543210E0000100", "pin", "")), cryptoerr.ErrKSN, ""},
		{"KSN counter zero", second(DUKPTKey("0123456789ABCDEFFEDCBA9876543210", "FFFF9876543210E00000", "pin", "")), cryptoerr.ErrKSN, ""},
		{"unknown MAC alg", second(MAC("md5", "00", "00", 1, 0)), cryptoerr.ErrInvalidInput, ""},
		{"non-hex data", second(MAC(MACCMAC, "2B7E151628AED2A6ABF7158809CF4F3C", "zz", 0, 0)), cryptoerr.ErrInvalidInput, "data: not hex: invalid input"},
		{"wrong CVV", VerifyCVV("0123456789ABCDEFFEDCBA9876543210", "4123456789012345", "8701", "101", "562"), cryptoerr.ErrVerifyFailed, ""},
		{"wrong PVV", VisaVerifyPVV("0123456789ABCDEFFEDCBA9876543210", "1122334455667788", 1, "4525", "8523"), cryptoerr.ErrVerifyFailed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("err = %v, want %v", tc.err, tc.want)
			}
			if tc.text != "" && tc.err.Error() != tc.text {
				t.Errorf("message %q, want %q", tc.err, tc.text)
			}
		})
	}
}

func second(_ string, err error) error { return err }
