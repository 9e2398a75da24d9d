package service

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poswitch/poswitch/hsm"
)

// seedCommands are well-formed commands of every kind, built under testLMK; the fuzzer mutates
// them. They are also written to testdata/fuzz/FuzzExecute (see TestWriteFuzzSeeds).
func seedCommands(t testing.TB, h *hsm.HSM) map[string]string {
	ctx := context.Background()
	k := newKeys(t, h)
	card := hsm.Card{AccountNumber: "401234567890"}
	block, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.tpk, Format: hsm.ISO0, PIN: "1234", Card: card})
	b := strings.ToUpper(hex.EncodeToString(block))
	block4, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.zpkAES, Format: hsm.ISO4, PIN: "1234", Card: hsm.Card{PAN: "4012345678909"}})
	b4 := strings.ToUpper(hex.EncodeToString(block4))
	blockZ, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.zpk, Format: hsm.ISO0, PIN: "1234", Card: card})
	bz := strings.ToUpper(hex.EncodeToString(blockZ))
	method := hsm.IBM3624{DecimalisationTable: "1234567890123456", ValidationData: "1122334" + "67890" + "5678"}
	offset, err := h.GenerateOffset(ctx, hsm.GenerateOffset{PVK: k.pvkIBM, Method: method, Card: card, PIN: hsm.PINSource{ClearPIN: "1234"}})
	if err != nil {
		t.Fatal(err)
	}
	pvv, err := h.GeneratePVV(ctx, hsm.GeneratePVV{PVK: k.pvkVisa, PVKI: 1, Card: card, PIN: hsm.PINSource{ClearPIN: "1234"}})
	if err != nil {
		t.Fatal(err)
	}
	emvCard := hsm.EMVCard{IMK: k.imk, PAN: "47617390010100", PSN: "10", MasterKeyOption: hsm.MasterKeyOptionA, ATC: 0x0042}
	arqc, err := h.GenerateARQC(ctx, emvCard, []byte{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	S := func(kb hsm.KeyBlock) string { return "S" + string(kb) }
	return map[string]string{
		"nc":   "NC",
		"a0":   "A00FFFS#P0T2B00E00",
		"a0e":  "A01FFFS" + S(k.kek) + "#K0A3B00E00",
		"bu":   "BUFFF" + S(k.zpk),
		"a8":   "A8FFF" + S(k.kek) + S(k.zpk) + "R",
		"ca":   "CA" + S(k.tpk) + S(k.zpk) + "12" + b + "0101401234567890",
		"ca48": "CA" + S(k.zpkAES) + S(k.zpk) + "12" + b4 + "480113" + "4012345678909",
		"cc":   "CC" + S(k.tpk) + S(k.zpkAES) + "12" + b + "014814" + "14012345678905",
		"g0":   "G0" + S(k.tdesBDK) + S(k.zpk) + "A05FFFF9876543210E000011B9C1845EB993A7A0101401234567890",
		"g0a":  "G0" + S(k.aesBDK) + S(k.zpk) + "A05123456789012345600000001A912150391AB65A67E52883D81CE2D154801164111111111111111",
		"ea":   "EA" + S(k.zpk) + S(k.pvkIBM) + "12" + bz + "0104401234567890" + "1234567890123456" + "1122334N5678" + offset + "FFFFFFFF",
		"ec":   "EC" + S(k.zpk) + S(k.pvkVisa) + bz + "01401234567890" + "1" + pvv,
		"cw":   "CW" + S(k.cvk) + "4123456789012345;8701101",
		"cy":   "CY" + S(k.cvk) + "5614123456789012345;8701101",
		"m6":   "M6" + "0203" + "1FFF" + S(k.macX919) + "0018Now is the time for all ",
		"m8":   "M8" + "0105" + "0FFF" + S(k.macCMAC) + "00206BC1BEE22E409F96E93D7E117393172A070A16B46B4D4144",
		"kq":   "KQ12" + S(k.imk) + "\x47\x61\x73\x90\x01\x01\x00\x10\x00\x42\x00\x00\x00\x00" + "04" + "\x01\x02\x03\x04" + ";" + string(arqc) + "00",
	}
}

// FuzzExecute holds the command parser to its promise: any bytes give a reply with a response code
// and a 2-character error code, and never a panic.
func FuzzExecute(f *testing.F) {
	h, err := hsm.New(testLMK)
	if err != nil {
		f.Fatal(err)
	}
	for _, cmd := range seedCommands(f, h) {
		f.Add([]byte(cmd))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, cmd []byte) {
		out := execute(ctx, h, cmd, nil)
		if len(out) < 4 {
			t.Fatalf("reply %q too short", out)
		}
		if len(cmd) >= 2 {
			rc := responseCode(cmd[:2])
			if out[0] != rc[0] || out[1] != rc[1] {
				t.Fatalf("reply code %q for command %q", out[:2], cmd[:2])
			}
		}
		if string(out[2:4]) != "00" && len(out) != 4 {
			t.Fatalf("error reply %q carries fields", out)
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed corpus when POSWITCH_WRITE_FUZZ_SEEDS=1; the key
// blocks in it are wrapped under testLMK, so they stay valid.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("POSWITCH_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set POSWITCH_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzExecute")
	}
	h, _ := hsm.New(testLMK)
	dir := filepath.Join("testdata", "fuzz", "FuzzExecute")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, cmd := range seedCommands(t, h) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", cmd)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSeedCommandsSucceed keeps the seeds meaningful: each one is a command the HSM accepts.
func TestSeedCommandsSucceed(t *testing.T) {
	h, _ := hsm.New(testLMK)
	for name, cmd := range seedCommands(t, h) {
		out := execute(context.Background(), h, []byte(cmd), nil)
		if string(out[2:4]) != "00" {
			t.Errorf("seed %s: reply %q", name, out)
		}
	}
}
