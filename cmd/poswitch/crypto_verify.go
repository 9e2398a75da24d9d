package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/poswitch/poswitch/hsm/calc"
)

func newCryptoIBM3624Cmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ibm3624", Short: "IBM 3624 PIN method: natural PIN, offset, verify"}
	var pvk, pin, offset string
	var p calc.IBM3624Params
	base := func(c *cobra.Command) {
		c.Flags().StringVar(&pvk, "pvk", "", "PIN verification key, clear hex")
		c.Flags().StringVar(&p.DecimalizationTable, "dec-table", "0123456789012345", "decimalisation table, 16 digits")
		c.Flags().StringVar(&p.ValidationData, "validation-data", "", "validation data, 1-16 hex digits (usually from the PAN)")
		c.Flags().StringVar(&p.Pad, "pad", "F", "pad character for the validation data")
		c.Flags().IntVar(&p.CheckLength, "check-length", 4, "PIN digits checked, 4-12")
	}
	cmd.AddCommand(
		cryptoLeaf("natural-pin", "Compute the natural PIN (offset 0000)",
			func() (string, error) { return calc.IBM3624NaturalPIN(pvk, p) }, base, "pvk", "validation-data"),
		cryptoLeaf("offset", "Compute the offset of a PIN",
			func() (string, error) { return calc.IBM3624Offset(pvk, p, pin) },
			func(c *cobra.Command) { base(c); c.Flags().StringVar(&pin, "pin", "", "customer PIN") }, "pvk", "validation-data", "pin"),
		cryptoLeaf("verify", "Verify a PIN against its offset (prints OK or fails)",
			cryptoVerified(func() error { return calc.IBM3624VerifyOffset(pvk, p, pin, offset) }),
			func(c *cobra.Command) {
				base(c)
				c.Flags().StringVar(&pin, "pin", "", "customer PIN")
				c.Flags().StringVar(&offset, "offset", "", "stored offset")
			}, "pvk", "validation-data", "pin", "offset"),
	)
	return cmd
}

func newCryptoPVVCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pvv", Short: "Visa PIN verification value: generate, verify"}
	var pvk, pan, pin, pvv string
	var pvki int
	base := func(c *cobra.Command) {
		c.Flags().StringVar(&pvk, "pvk", "", "PVK pair, clear hex (16 bytes)")
		c.Flags().StringVar(&pan, "pan", "", "PAN, 12-19 digits")
		c.Flags().IntVar(&pvki, "pvki", 1, "PIN verification key index, 0-9")
		c.Flags().StringVar(&pin, "pin", "", "PIN (leftmost 4 digits are used)")
	}
	cmd.AddCommand(
		cryptoLeaf("generate", "Compute the PVV of a PIN",
			func() (string, error) { return calc.VisaPVV(pvk, pan, pvki, pin) }, base, "pvk", "pan", "pin"),
		cryptoLeaf("verify", "Verify a PIN against a PVV (prints OK or fails)",
			cryptoVerified(func() error { return calc.VisaVerifyPVV(pvk, pan, pvki, pin, pvv) }),
			func(c *cobra.Command) { base(c); c.Flags().StringVar(&pvv, "pvv", "", "stored PVV, 4 digits") }, "pvk", "pan", "pin", "pvv"),
	)
	return cmd
}

func newCryptoCVVCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cvv", Short: "CVV, CVV2 (service code 000) and iCVV (service code 999): generate, verify"}
	var cvk, pan, expiry, sc, value string
	base := func(c *cobra.Command) {
		c.Flags().StringVar(&cvk, "cvk", "", "CVK pair A||B, clear hex (16 bytes)")
		c.Flags().StringVar(&pan, "pan", "", "PAN, 12-19 digits")
		c.Flags().StringVar(&expiry, "expiry", "", "expiry date YYMM")
		c.Flags().StringVar(&sc, "service-code", "101", "service code: the stripe's for CVV, 000 for CVV2, 999 for iCVV")
	}
	cmd.AddCommand(
		cryptoLeaf("generate", "Compute a CVV",
			func() (string, error) { return calc.CVV(cvk, pan, expiry, sc) }, base, "cvk", "pan", "expiry"),
		cryptoLeaf("verify", "Verify a CVV (prints OK or fails)",
			cryptoVerified(func() error { return calc.VerifyCVV(cvk, pan, expiry, sc, value) }),
			func(c *cobra.Command) { base(c); c.Flags().StringVar(&value, "cvv", "", "CVV to check, 3 digits") }, "cvk", "pan", "expiry", "cvv"),
	)
	return cmd
}

func newCryptoMACCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mac", Short: "MACs: X9.19 retail MAC, X9.9, ISO 9797-1 algorithm 1, AES-CMAC"}
	var alg, key, data, given string
	var padding, length int
	base := func(c *cobra.Command) {
		c.Flags().StringVar(&alg, "alg", "x919", "x919 (ISO 9797-1 alg 3), x99 (alg 1, single DES), alg1 (alg 1, TDES), cmac (AES-CMAC)")
		c.Flags().StringVar(&key, "key", "", "MAC key, clear hex")
		c.Flags().StringVar(&data, "data", "", "data, hex")
		c.Flags().IntVar(&padding, "padding", 1, "ISO 9797-1 padding method 0 (none), 1, 2 or 3; ignored by cmac")
	}
	cmd.AddCommand(
		cryptoLeaf("generate", "Compute a MAC",
			func() (string, error) { return calc.MAC(alg, key, data, padding, length) },
			func(c *cobra.Command) {
				base(c)
				c.Flags().IntVar(&length, "length", 0, "MAC length in bytes, 4 to the block size (0 = full block)")
			}, "key", "data"),
		cryptoLeaf("verify", "Verify a MAC, full or truncated to 4 bytes or more (prints OK or fails)",
			cryptoVerified(func() error { return calc.VerifyMAC(alg, key, data, padding, given) }),
			func(c *cobra.Command) { base(c); c.Flags().StringVar(&given, "mac", "", "MAC to check, hex") }, "key", "data", "mac"),
	)
	return cmd
}

func newCryptoEMVCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "emv", Short: "EMV: ICC master key, session key, ARQC, ARPC"}
	var imk, mk, pan, psn, option, atc, sk, data, arqc, arc, csu, prop, key string
	var aes bool
	var method int
	cmd.AddCommand(
		cryptoLeaf("master-key", "Derive the ICC master key (EMV Book 2 A1.4 option A, or B for PANs over 16 digits)",
			func() (string, error) { return calc.EMVMasterKey(imk, pan, psn, option) },
			func(c *cobra.Command) {
				c.Flags().StringVar(&imk, "imk", "", "issuer master key, clear hex (16 bytes)")
				c.Flags().StringVar(&pan, "pan", "", "PAN, 12-19 digits")
				c.Flags().StringVar(&psn, "psn", "00", "PAN sequence number, 2 digits")
				c.Flags().StringVar(&option, "option", "auto", "a, b or auto (A up to 16 digits, B beyond)")
			}, "imk", "pan"),
		cryptoLeaf("session-key", "Derive the EMV common session key (EMV Book 2 A1.3)",
			func() (string, error) { return calc.EMVSessionKey(mk, atc) },
			func(c *cobra.Command) {
				c.Flags().StringVar(&mk, "mk", "", "ICC master key, clear hex (16 bytes)")
				c.Flags().StringVar(&atc, "atc", "", "ATC (2 bytes hex) or the full 8-byte diversification value R")
			}, "mk", "atc"),
		cryptoLeaf("arqc", "Compute an ARQC/TC/AAC over the CDOL data, or verify one with --verify",
			func() (string, error) {
				if arqc != "" {
					return cryptoVerified(func() error { return calc.VerifyARQC(sk, data, arqc, aes) })()
				}
				return calc.ARQC(sk, data, aes)
			},
			func(c *cobra.Command) {
				c.Flags().StringVar(&sk, "sk", "", "session key, clear hex")
				c.Flags().StringVar(&data, "data", "", "transaction data, hex")
				c.Flags().StringVar(&arqc, "verify", "", "ARQC to verify instead of printing one")
				c.Flags().BoolVar(&aes, "aes", false, "AES session key: AES-CMAC truncated to 8 bytes")
			}, "sk", "data"),
		cryptoLeaf("arpc", "Compute an ARPC by method 1 (ARQC XOR ARC) or method 2 (MAC over ARQC, CSU, data)",
			func() (string, error) {
				if method == 2 {
					return calc.ARPCMethod2(key, arqc, csu, prop)
				}
				if method != 1 {
					return "", fmt.Errorf("--method %d: want 1 or 2", method)
				}
				return calc.ARPCMethod1(key, arqc, arc)
			},
			func(c *cobra.Command) {
				c.Flags().IntVar(&method, "method", 1, "ARPC method, 1 or 2")
				c.Flags().StringVar(&key, "key", "", "session key (or ICC master key for method 1 where the scheme says so), clear hex")
				c.Flags().StringVar(&arqc, "arqc", "", "ARQC, 8 bytes hex")
				c.Flags().StringVar(&arc, "arc", "0000", "method 1: authorisation response code, 2 bytes hex")
				c.Flags().StringVar(&csu, "csu", "00000000", "method 2: card status update, 4 bytes hex")
				c.Flags().StringVar(&prop, "prop-auth-data", "", "method 2: proprietary authentication data, 0-8 bytes hex")
			}, "key", "arqc"),
	)
	return cmd
}
