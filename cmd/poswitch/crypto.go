package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/poswitch/poswitch/hsm/calc"
)

func init() { register(newCryptoCmd) }

// cryptoLabWarning heads every crypto help text: the calculator takes keys in clear.
const cryptoLabWarning = "TEST/LAB TOOL: keys, PINs and card data are given and shown in clear. Never use it with live keys."

func newCryptoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "crypto",
		Short: "Payment crypto calculator on clear keys (test/lab tool, never live keys)",
		Long: cryptoLabWarning + `

Each operation of the software HSM on keys given in clear hex: PIN blocks (ISO 9564 formats 0-4),
DUKPT (TDES X9.24-1, AES X9.24-3), IBM 3624 offsets, Visa PVV, CVV/CVV2/iCVV, MACs (X9.19, X9.9,
ISO 9797-1 alg 1, AES-CMAC), EMV key derivation, ARQC and ARPC, and key check values. Results are
printed as uppercase hex on stdout; bad input gets a message on stderr and a non-zero exit.`,
	}
	cmd.AddCommand(newCryptoPINBlockCmd(), newCryptoDUKPTCmd(), newCryptoIBM3624Cmd(), newCryptoPVVCmd(),
		newCryptoCVVCmd(), newCryptoMACCmd(), newCryptoEMVCmd(), newCryptoKCVCmd())
	return cmd
}

// cryptoLeaf builds a calculator subcommand that prints one result line; required lists the flags
// that must be given.
func cryptoLeaf(use, short string, run func() (string, error), define func(*cobra.Command), required ...string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  cryptoLabWarning + "\n\n" + short + ".",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := run()
			if err != nil {
				return fmt.Errorf("crypto %s: %w", cmd.CommandPath()[len("poswitch crypto "):], err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	define(cmd)
	for _, f := range required {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// cryptoVerified adapts a verify function: "OK" on success, the error (exit 1) on a mismatch.
func cryptoVerified(verify func() error) func() (string, error) {
	return func() (string, error) {
		if err := verify(); err != nil {
			return "", err
		}
		return "OK", nil
	}
}

func newCryptoPINBlockCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pinblock", Short: "ISO 9564 PIN blocks: encode, decode, encrypt, decrypt, translate (formats 0, 1, 2, 3, 4)"}
	var format, toFormat int
	var pin, pan, block, key, toKey string
	formatFlag := func(c *cobra.Command) {
		c.Flags().IntVar(&format, "format", 0, "ISO 9564 format: 0, 1, 2, 3 or 4 (4 = AES)")
		c.Flags().StringVar(&pan, "pan", "", "full PAN, 12-19 digits (formats 0, 3, 4)")
	}
	cmd.AddCommand(
		cryptoLeaf("encode", "Build the clear PIN block (format 4: the plain-text PIN field)",
			func() (string, error) { return calc.EncodePINBlock(format, pin, pan) },
			func(c *cobra.Command) { formatFlag(c); c.Flags().StringVar(&pin, "pin", "", "PIN, 4-12 digits") }, "pin"),
		cryptoLeaf("decode", "Read the PIN from a clear PIN block (format 4: the plain-text PIN field)",
			func() (string, error) { return calc.DecodePINBlock(format, block, pan) },
			func(c *cobra.Command) {
				formatFlag(c)
				c.Flags().StringVar(&block, "block", "", "clear PIN block, hex")
			}, "block"),
		cryptoLeaf("encrypt", "Encode a PIN and encipher it under a TDES key (formats 0-3) or an AES key (format 4)",
			func() (string, error) { return calc.EncryptPINBlock(key, format, pin, pan) },
			func(c *cobra.Command) {
				formatFlag(c)
				c.Flags().StringVar(&pin, "pin", "", "PIN, 4-12 digits")
				c.Flags().StringVar(&key, "key", "", "PIN key (TPK/ZPK/DUKPT PIN key), clear hex")
			}, "pin", "key"),
		cryptoLeaf("decrypt", "Decipher a PIN block and print the PIN",
			func() (string, error) { return calc.DecryptPINBlock(key, format, block, pan) },
			func(c *cobra.Command) {
				formatFlag(c)
				c.Flags().StringVar(&block, "block", "", "enciphered PIN block, hex")
				c.Flags().StringVar(&key, "key", "", "PIN key, clear hex")
			}, "block", "key"),
		cryptoLeaf("translate", "Re-encipher a PIN block from one key and format to another (TPK→ZPK, ZPK→ZPK)",
			func() (string, error) { return calc.TranslatePINBlock(key, format, block, toKey, toFormat, pan) },
			func(c *cobra.Command) {
				c.Flags().IntVar(&format, "from-format", 0, "source ISO 9564 format")
				c.Flags().IntVar(&toFormat, "to-format", 0, "destination ISO 9564 format")
				c.Flags().StringVar(&pan, "pan", "", "full PAN, 12-19 digits")
				c.Flags().StringVar(&block, "block", "", "enciphered PIN block, hex")
				c.Flags().StringVar(&key, "from-key", "", "source PIN key, clear hex")
				c.Flags().StringVar(&toKey, "to-key", "", "destination PIN key, clear hex")
			}, "block", "from-key", "to-key"),
	)
	return cmd
}

func newCryptoDUKPTCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "dukpt", Short: "DUKPT key derivation: TDES (ANSI X9.24-1, 10-byte KSN) and AES (X9.24-3, 12-byte KSN)"}
	var bdk, ksn, usage, keyType string
	base := func(c *cobra.Command) {
		c.Flags().StringVar(&bdk, "bdk", "", "base derivation key, clear hex (TDES 16 bytes; AES 16, 24 or 32 bytes)")
		c.Flags().StringVar(&ksn, "ksn", "", "key serial number, hex (10 bytes TDES, 12 bytes AES)")
	}
	cmd.AddCommand(
		cryptoLeaf("ipek", "Derive the TDES DUKPT initial PIN encryption key (IPEK)",
			func() (string, error) { return calc.TDESIPEK(bdk, ksn) }, base, "bdk", "ksn"),
		cryptoLeaf("initial-key", "Derive the AES DUKPT initial key",
			func() (string, error) { return calc.AESInitialKey(bdk, ksn) }, base, "bdk", "ksn"),
		cryptoLeaf("pin-key", "Derive the PIN encryption key for a KSN (TDES or AES by KSN length)",
			func() (string, error) { return calc.DUKPTKey(bdk, ksn, "pin", keyType) },
			func(c *cobra.Command) {
				base(c)
				c.Flags().StringVar(&keyType, "key-type", "aes128", "AES DUKPT working key type: 2tdea, 3tdea, aes128, aes192, aes256")
			}, "bdk", "ksn"),
		cryptoLeaf("key", "Derive any working key for a KSN",
			func() (string, error) { return calc.DUKPTKey(bdk, ksn, usage, keyType) },
			func(c *cobra.Command) {
				base(c)
				c.Flags().StringVar(&usage, "usage", "pin", "TDES: pin, mac-request, mac-response, data-request, data-response; AES: pin, mac-generate, mac-verify, mac-both, data-encrypt, data-decrypt, data-both, kek")
				c.Flags().StringVar(&keyType, "key-type", "aes128", "AES DUKPT working key type: 2tdea, 3tdea, aes128, aes192, aes256")
			}, "bdk", "ksn"),
	)
	return cmd
}

func newCryptoKCVCmd() *cobra.Command {
	var key, alg string
	return cryptoLeaf("kcv", "Compute a key check value (3 bytes)",
		func() (string, error) { return calc.KCV(key, alg) },
		func(c *cobra.Command) {
			c.Flags().StringVar(&key, "key", "", "key, clear hex")
			c.Flags().StringVar(&alg, "alg", "tdes", "tdes (encrypt zeros), aes (CMAC of zeros) or aes-zeros (encrypt zeros)")
		}, "key")
}
