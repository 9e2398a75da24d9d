package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/poswitch/poswitch/hsm"
)

// testLMK is fixed so that the committed fuzz corpus's key blocks open under it.
var testLMK = bytes.Repeat([]byte{0x5A}, hsm.LMKLength)

// keys is the key set the tests and the fuzz seeds use.
type keys struct {
	tpk, zpk, zpkAES, tdesBDK, aesBDK, pvkIBM, pvkVisa, cvk, macX919, macCMAC, imk, kek hsm.KeyBlock
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newKeys(t testing.TB, h *hsm.HSM) keys {
	t.Helper()
	ctx := context.Background()
	imp := func(usage hsm.KeyUsage, alg hsm.KeyAlgorithm, clearHex string) hsm.KeyBlock {
		kb, _, err := h.ImportClearKey(ctx, hsm.KeySpec{Usage: usage, Algorithm: alg}, unhex(t, clearHex))
		if err != nil {
			t.Fatal(err)
		}
		return kb
	}
	return keys{
		tpk:     imp(hsm.UsagePIN, hsm.TDES, "0123456789ABCDEFFEDCBA9876543210"),
		zpk:     imp(hsm.UsagePIN, hsm.TDES, "1C1C1C1C1C1C1C1C2A2A2A2A2A2A2A2A"),
		zpkAES:  imp(hsm.UsagePIN, hsm.AES, "00112233445566778899AABBCCDDEEFF"),
		tdesBDK: imp(hsm.UsageBDK, hsm.TDES, "0123456789ABCDEFFEDCBA9876543210"),
		aesBDK:  imp(hsm.UsageBDK, hsm.AES, "FEDCBA9876543210F1F1F1F1F1F1F1F1"),
		pvkIBM:  imp(hsm.UsagePVKIBM, hsm.TDES, "0123456789ABCDEFFEDCBA9876543210"),
		pvkVisa: imp(hsm.UsagePVKVisa, hsm.TDES, "0123456789ABCDEFFEDCBA9876543210"),
		cvk:     imp(hsm.UsageCVK, hsm.TDES, "0123456789ABCDEFFEDCBA9876543210"),
		macX919: imp(hsm.UsageMACAlg3, hsm.TDES, "0123456789ABCDEFFEDCBA9876543210"),
		macCMAC: imp(hsm.UsageMACCMAC, hsm.AES, "2B7E151628AED2A6ABF7158809CF4F3C"),
		imk:     imp(hsm.UsageEMVMasterAC, hsm.TDES, "0123456789ABCDEFFEDCBA9876543210"),
		kek:     imp(hsm.UsageKEK, hsm.AES, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"),
	}
}

// startServer runs a real server on a loopback port and returns its address.
func startServer(t testing.TB, h *hsm.HSM, cfg Config) string {
	t.Helper()
	srv, err := NewServer(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func dial(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn speaks the framing by hand so tests can send what a Client never would.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func frame(body string) []byte {
	b := make([]byte, 2, 2+len(body))
	binary.BigEndian.PutUint16(b, uint16(len(body)))
	return append(b, body...)
}

func (r *rawConn) send(body string) {
	r.t.Helper()
	if _, err := r.nc.Write(frame(body)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) recv() (string, error) {
	var l [2]byte
	if _, err := io.ReadFull(r.br, l[:]); err != nil {
		return "", err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r.br, b); err != nil {
		return "", err
	}
	return string(b), nil
}

func (r *rawConn) roundTrip(body string) string {
	r.t.Helper()
	r.send(body)
	got, err := r.recv()
	if err != nil {
		r.t.Fatalf("reading reply: %v", err)
	}
	return got
}

func TestNCAnswersWithLMKCheckValueAndEchoesHeader(t *testing.T) {
	h, _ := hsm.New(testLMK)
	r := dialRaw(t, startServer(t, h, Config{}))
	got := r.roundTrip("1234NC")
	want := "1234ND00" + string(h.LMKCheckValue()) + "0000000000"
	if !strings.HasPrefix(got, want) || len(got) != len(want)+9 {
		t.Fatalf("reply %q, want %q + 9-character firmware", got, want)
	}
}

func TestClientTranslatesPINsOverTCPLikeTheHSMInProcess(t *testing.T) {
	ctx := context.Background()
	h, _ := hsm.New(testLMK)
	k := newKeys(t, h)
	c := dial(t, startServer(t, h, Config{}))
	card := hsm.Card{PAN: "4012345678909"}

	// TPK → ZPK, format 0 → 0: deterministic, so TCP and in-process must agree byte for byte.
	in, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.tpk, Format: hsm.ISO0, PIN: "1234", Card: card})
	req := hsm.TranslatePIN{SourceKey: k.tpk, SourceFormat: hsm.ISO0, PINBlock: in, DestKey: k.zpk, DestFormat: hsm.ISO0, Card: card}
	viaTCP, err := c.TranslatePINBlock(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	local, _ := h.TranslatePINBlock(ctx, req)
	if !bytes.Equal(viaTCP.PINBlock, local.PINBlock) || viaTCP.PINLength != 4 {
		t.Fatalf("TCP %X (len %d) vs in-process %X", viaTCP.PINBlock, viaTCP.PINLength, local.PINBlock)
	}

	// Format changes 0 → 4 and 4 → 0 over TCP, checked by verifying the PIN at the "issuer".
	to4, err := c.TranslatePIN(ctx, hsm.TranslatePIN{SourceKey: k.tpk, SourceFormat: hsm.ISO0, PINBlock: in, DestKey: k.zpkAES, DestFormat: hsm.ISO4, Card: card})
	if err != nil {
		t.Fatal(err)
	}
	back, err := c.TranslatePIN(ctx, hsm.TranslatePIN{SourceKey: k.zpkAES, SourceFormat: hsm.ISO4, PINBlock: to4, DestKey: k.zpk, DestFormat: hsm.ISO0, Card: card})
	if err != nil || !bytes.Equal(back, local.PINBlock) {
		t.Fatalf("0→4→0 over TCP: %X, %v; want %X", back, err, local.PINBlock)
	}

	// DUKPT TDES (the X9.24-1 A.4 block) and AES (X9.24-3 block) to the ZPK over G0.
	tdesOut, err := c.TranslatePINFromDUKPT(ctx, hsm.TranslateDUKPT{BDK: k.tdesBDK, KSN: unhex(t, "FFFF9876543210E00001"), SourceFormat: hsm.ISO0, PINBlock: unhex(t, "1B9C1845EB993A7A"), DestKey: k.zpk, DestFormat: hsm.ISO0, Card: card})
	if err != nil || !bytes.Equal(tdesOut, local.PINBlock) {
		t.Fatalf("TDES DUKPT over G0: %X, %v", tdesOut, err)
	}
	aesCard := hsm.Card{PAN: "4111111111111111"}
	aesOut, err := c.TranslatePINFromDUKPT(ctx, hsm.TranslateDUKPT{BDK: k.aesBDK, KSN: unhex(t, "123456789012345600000001"), SourceFormat: hsm.ISO4, PINBlock: unhex(t, "A912150391AB65A67E52883D81CE2D15"), DestKey: k.zpk, DestFormat: hsm.ISO0, Card: aesCard})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.zpk, Format: hsm.ISO0, PIN: "1234", Card: aesCard})
	if !bytes.Equal(aesOut, want) {
		t.Fatalf("AES DUKPT over G0: %X, want %X", aesOut, want)
	}
	// An invalid KSN is refused with 15, not answered with a wrong PIN block.
	_, err = c.TranslatePINFromDUKPT(ctx, hsm.TranslateDUKPT{BDK: k.tdesBDK, KSN: unhex(t, "FFFF9876543210E00000"), SourceFormat: hsm.ISO0, PINBlock: unhex(t, "1B9C1845EB993A7A"), DestKey: k.zpk, DestFormat: hsm.ISO0, Card: card})
	if hsm.Code(err) != "15" {
		t.Fatalf("counter-zero KSN: %v", err)
	}
}

func TestClientRefusedKeyUsageCarriesTheCode(t *testing.T) {
	ctx := context.Background()
	h, _ := hsm.New(testLMK)
	k := newKeys(t, h)
	c := dial(t, startServer(t, h, Config{}))
	card := hsm.Card{PAN: "4012345678909"}
	in, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.tpk, Format: hsm.ISO0, PIN: "1234", Card: card})
	_, err := c.TranslatePIN(ctx, hsm.TranslatePIN{SourceKey: k.tpk, SourceFormat: hsm.ISO0, PINBlock: in, DestKey: k.cvk, DestFormat: hsm.ISO0, Card: card})
	if !errors.Is(err, hsm.ErrKeyUsage) || hsm.Code(err) != "A6" {
		t.Fatalf("CVK as ZPK over TCP: %v", err)
	}
}

func TestClientVerifiesPINsCVVsMACsAndARQCs(t *testing.T) {
	ctx := context.Background()
	h, _ := hsm.New(testLMK)
	k := newKeys(t, h)
	c := dial(t, startServer(t, h, Config{}))
	card := hsm.Card{PAN: "1122334455667788"}
	method := hsm.IBM3624{DecimalisationTable: "1234567890123456", ValidationData: "1122334455667788"}

	offset, err := h.GenerateOffset(ctx, hsm.GenerateOffset{PVK: k.pvkIBM, Method: method, Card: card, PIN: hsm.PINSource{ClearPIN: "1234"}})
	if err != nil || offset != "7710" {
		t.Fatalf("offset %q %v", offset, err)
	}
	pvv, _ := h.GeneratePVV(ctx, hsm.GeneratePVV{PVK: k.pvkVisa, PVKI: 1, Card: card, PIN: hsm.PINSource{ClearPIN: "1234"}})
	for _, pin := range []string{"1234", "9999"} {
		block, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.zpk, Format: hsm.ISO0, PIN: pin, Card: card})
		errOff := c.VerifyPINOffset(ctx, hsm.VerifyPINOffset{PINKey: k.zpk, PVK: k.pvkIBM, PINBlock: block, Format: hsm.ISO0, Card: card, Method: method, Offset: offset})
		errPVV := c.VerifyPINPVV(ctx, hsm.VerifyPINPVV{PINKey: k.zpk, PVK: k.pvkVisa, PINBlock: block, Format: hsm.ISO0, Card: card, PVKI: 1, PVV: pvv})
		if pin == "1234" && (errOff != nil || errPVV != nil) {
			t.Fatalf("right PIN: offset %v, PVV %v", errOff, errPVV)
		}
		if pin == "9999" && (!errors.Is(errOff, hsm.ErrPINMismatch) || !errors.Is(errPVV, hsm.ErrPINMismatch)) {
			t.Fatalf("wrong PIN: offset %v, PVV %v", errOff, errPVV)
		}
	}
	// Format 48 through EC needs the full PAN field.
	block4, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.zpkAES, Format: hsm.ISO4, PIN: "1234", Card: card})
	if err := c.VerifyPINPVV(ctx, hsm.VerifyPINPVV{PINKey: k.zpkAES, PVK: k.pvkVisa, PINBlock: block4, Format: hsm.ISO4, Card: card, PVKI: 1, PVV: pvv}); err != nil {
		t.Fatalf("ISO 4 PVV over EC: %v", err)
	}

	cvv, err := c.GenerateCVV(ctx, hsm.GenerateCVV{CVK: k.cvk, PAN: "4123456789012345", Expiry: "8701", ServiceCode: "101"})
	if err != nil || cvv != "561" {
		t.Fatalf("CW: %q %v", cvv, err)
	}
	if err := c.VerifyCVV(ctx, hsm.VerifyCVV{CVK: k.cvk, PAN: "4123456789012345", Expiry: "8701", ServiceCode: "101", CVV: "562"}); !errors.Is(err, hsm.ErrVerificationFailed) {
		t.Fatalf("CY wrong CVV: %v", err)
	}

	m, err := c.GenerateMAC(ctx, hsm.GenerateMAC{Key: k.macX919, Data: []byte("Now is the time for all ")})
	if err != nil || !bytes.Equal(m, unhex(t, "A1C72E74EA3FA9B6")) {
		t.Fatalf("M6 X9.19: %X %v", m, err)
	}
	if err := c.VerifyMAC(ctx, hsm.VerifyMAC{Key: k.macCMAC, Data: unhex(t, "6BC1BEE22E409F96E93D7E117393172A"), MAC: unhex(t, "070A16B46B4D4144")}); err != nil {
		t.Fatalf("M8 CMAC: %v", err)
	}
	if err := c.VerifyMAC(ctx, hsm.VerifyMAC{Key: k.macCMAC, Data: []byte("x"), MAC: unhex(t, "070A16B46B4D4144")}); !errors.Is(err, hsm.ErrVerificationFailed) {
		t.Fatalf("M8 wrong MAC: %v", err)
	}

	emvCard := hsm.EMVCard{IMK: k.imk, PAN: "4761739001010010", PSN: "01", ATC: 0x0042}
	data := unhex(t, "0000000010000000000000000826000000000008261506010012345678")
	arqc, _ := h.GenerateARQC(ctx, emvCard, data)
	arpc, err := c.VerifyARQC(ctx, hsm.VerifyARQC{Card: emvCard, Data: data, ARQC: arqc, ARPCMethod: hsm.ARPCMethod1, ARC: []byte("00")})
	wantARPC, _ := h.GenerateARPC(ctx, hsm.GenerateARPC{Card: emvCard, ARQC: arqc, ARPCMethod: hsm.ARPCMethod1, ARC: []byte("00")})
	if err != nil || !bytes.Equal(arpc, wantARPC) {
		t.Fatalf("KQ: %X %v, want %X", arpc, err, wantARPC)
	}
	arqc[0] ^= 1
	if _, err := c.VerifyARQC(ctx, hsm.VerifyARQC{Card: emvCard, Data: data, ARQC: arqc}); !errors.Is(err, hsm.ErrVerificationFailed) {
		t.Fatalf("KQ altered ARQC: %v", err)
	}
}

func TestKeyCommandsGenerateExportImportAndCheck(t *testing.T) {
	h, _ := hsm.New(testLMK)
	k := newKeys(t, h)
	r := dialRaw(t, startServer(t, h, Config{}))

	// A0 mode 1: a ZPK under the LMK and under the KEK.
	got := r.roundTrip("0001A01FFFSS" + string(k.kek) + "#P0T2B00E00")
	if !strings.HasPrefix(got, "0001A100S") {
		t.Fatalf("A0: %q", got)
	}
	f := &fields{b: []byte(got[8:])}
	underLMK := f.key("key", "S")
	underKEK := f.key("key under KEK", "R")
	kcv := f.text(6, "kcv")
	f.done()
	if f.err != nil {
		t.Fatalf("A1 fields: %v", f.err)
	}
	// BU agrees on the KCV.
	if got := r.roundTrip("0002BUFFFS" + string(underLMK)); got != "0002BV00"+kcv {
		t.Fatalf("BU: %q, want KCV %s", got, kcv)
	}
	// A6 imports the KEK copy back under the LMK: same key, same KCV.
	got = r.roundTrip("0003A6FFFS" + string(k.kek) + "R" + string(underKEK) + "S")
	if !strings.HasPrefix(got, "0003A700S") || !strings.HasSuffix(got, kcv) {
		t.Fatalf("A6: %q", got)
	}
	// A8 exports it again.
	got = r.roundTrip("0004A8FFFS" + string(k.kek) + "S" + string(underLMK) + "R")
	if !strings.HasPrefix(got, "0004A900R") || !strings.HasSuffix(got, kcv) {
		t.Fatalf("A8: %q", got)
	}
	// A ZPK is not a KEK.
	if got := r.roundTrip("0005A8FFFS" + string(k.zpk) + "S" + string(underLMK) + "R"); got != "0005A9A6" {
		t.Fatalf("A8 with a ZPK as KEK: %q", got)
	}
}

func TestMalformedCommandsGetErrorCodesAndTheConnectionKeepsServing(t *testing.T) {
	ctx := context.Background()
	h, _ := hsm.New(testLMK)
	k := newKeys(t, h)
	r := dialRaw(t, startServer(t, h, Config{}))
	block, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.tpk, Format: hsm.ISO0, PIN: "1234", Card: hsm.Card{AccountNumber: "401234567890"}})
	good := "CA" + "S" + string(k.tpk) + "S" + string(k.zpk) + "12" + strings.ToUpper(hex.EncodeToString(block)) + "0101" + "401234567890"
	if got := r.roundTrip("0000" + good); !strings.HasPrefix(got, "0000CB0004") {
		t.Fatalf("good CA: %q", got)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"unknown command", "0001XX", "0001XY15"},
		{"no command", "0002", "0002ZZ15"},
		{"one-letter command", "0003C", "0003ZZ15"},
		{"short fields", "0004" + good[:40], "0004CB15"},
		{"bad hex PIN block", "0005" + strings.Replace(good, strings.ToUpper(hex.EncodeToString(block)), "ZZZZZZZZZZZZZZZZ", 1), "0005CB15"},
		{"bad format code", "0006" + strings.Replace(good, "12"+strings.ToUpper(hex.EncodeToString(block))+"0101", "12"+strings.ToUpper(hex.EncodeToString(block))+"9901", 1), "0006CB23"},
		{"trailing garbage", "0007" + good + "X", "0007CB15"},
		{"key scheme not S", "0008CA" + "U" + good[3:], "0008CB15"},
		{"tampered key block", "0009CA" + "S" + string(k.tpk[:40]) + flip(string(k.tpk[40])) + string(k.tpk[41:]) + good[3+len(k.tpk):], "0009CBA4"},
		{"key length field not digits", "0010BUFFFSD01X2P0TB00E0000", "0010BV83"},
		{"wrong PIN key for block size", "0011CA" + "S" + string(k.zpkAES) + good[3+len(k.tpk):], "0011CB15"},
		{"KQ truncated binary", "0012KQ12S" + string(k.imk) + "\x12\x34", "0012KR15"},
		{"M6 length beyond message", "0013M60003FFFS" + string(k.macX919) + "00FFabc", "0013M715"},
	} {
		if got := r.roundTrip(tc.body); got != tc.want {
			t.Errorf("%s: reply %q, want %q", tc.name, got, tc.want)
		}
	}
	// Still serving after all of that.
	if got := r.roundTrip("0099" + good); !strings.HasPrefix(got, "0099CB0004") {
		t.Fatalf("after malformed commands: %q", got)
	}
}

func flip(c string) string {
	if c == "A" {
		return "B"
	}
	return "A"
}

func TestUnreadableFrameClosesOnlyThatConnection(t *testing.T) {
	h, _ := hsm.New(testLMK)
	addr := startServer(t, h, Config{HeaderLength: 4})
	bad, other := dialRaw(t, addr), dialRaw(t, addr)
	// A 2-byte frame cannot hold the 4-byte header: the server cannot answer it, so it hangs up.
	bad.send("12")
	if _, err := bad.recv(); err == nil {
		t.Fatalf("connection with an unreadable frame still answered")
	}
	if got := other.roundTrip("7777NC"); !strings.HasPrefix(got, "7777ND00") {
		t.Fatalf("other connection: %q", got)
	}
}

func TestPipelinedRequestsOnOneConnectionAreAllAnsweredByHeader(t *testing.T) {
	ctx := context.Background()
	h, _ := hsm.New(testLMK)
	k := newKeys(t, h)
	addr := startServer(t, h, Config{MaxInFlightPerConn: 32})

	// Raw: write 500 requests in one go, then read 500 replies and match them by header.
	r := dialRaw(t, addr)
	var batch bytes.Buffer
	want := map[string]string{}
	for i := 0; i < 500; i++ {
		pin := fmt.Sprintf("%04d", 1000+i)
		card := hsm.Card{AccountNumber: fmt.Sprintf("%012d", 400000000000+i)}
		block, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.tpk, Format: hsm.ISO0, PIN: pin, Card: card})
		expect, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.zpk, Format: hsm.ISO0, PIN: pin, Card: card})
		hdr := fmt.Sprintf("%04d", i)
		batch.Write(frame(hdr + "CAS" + string(k.tpk) + "S" + string(k.zpk) + "12" + strings.ToUpper(hex.EncodeToString(block)) + "0101" + card.AccountNumber))
		want[hdr] = hdr + "CB0004" + strings.ToUpper(hex.EncodeToString(expect)) + "01"
	}
	go r.nc.Write(batch.Bytes())
	for i := 0; i < 500; i++ {
		got, err := r.recv()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if want[got[:4]] != got {
			t.Fatalf("reply %q does not match its request", got)
		}
		delete(want, got[:4])
	}
	if len(want) != 0 {
		t.Fatalf("%d requests unanswered", len(want))
	}

	// Client: 40 goroutines share one connection, 50 calls each.
	c := dial(t, addr)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for g := 0; g < 40; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				card := hsm.Card{AccountNumber: fmt.Sprintf("%012d", 500000000000+g*100+i)}
				pin := fmt.Sprintf("%d", 10000+g*100+i)
				block, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.tpk, Format: hsm.ISO0, PIN: pin, Card: card})
				got, err := c.TranslatePINBlock(ctx, hsm.TranslatePIN{SourceKey: k.tpk, SourceFormat: hsm.ISO0, PINBlock: block, DestKey: k.zpk, DestFormat: hsm.ISO0, Card: card})
				expect, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.zpk, Format: hsm.ISO0, PIN: pin, Card: card})
				if err != nil || !bytes.Equal(got.PINBlock, expect) || got.PINLength != 5 {
					errs <- fmt.Errorf("goroutine %d call %d: %v", g, i, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestClientRedialsAfterTheConnectionDrops(t *testing.T) {
	h, _ := hsm.New(testLMK)
	addr := startServer(t, h, Config{})
	c := dial(t, addr)
	if _, err := c.call(context.Background(), []byte("NC")); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.sess.nc.Close()
	c.mu.Unlock()
	// The first call after the drop may fail with the broken connection; the next one redials.
	var err error
	for i := 0; i < 3; i++ {
		if _, err = c.call(context.Background(), []byte("NC")); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no recovery after the connection dropped: %v", err)
}

// TestLogsHoldNoPINBlocksOrKeys runs a busy session with a debug-level logger and searches every
// log line for the PIN blocks, key blocks and clear keys involved.
func TestLogsHoldNoPINBlocksOrKeys(t *testing.T) {
	ctx := context.Background()
	core, logs := observer.New(zap.DebugLevel)
	h, _ := hsm.New(testLMK)
	k := newKeys(t, h)
	addr := startServer(t, h, Config{Logger: zap.New(core)})
	c := dial(t, addr)
	card := hsm.Card{PAN: "4012345678909"}
	block, _ := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: k.tpk, Format: hsm.ISO0, PIN: "97531", Card: card})
	out, _ := c.TranslatePIN(ctx, hsm.TranslatePIN{SourceKey: k.tpk, SourceFormat: hsm.ISO0, PINBlock: block, DestKey: k.zpk, DestFormat: hsm.ISO0, Card: card})
	_, errWrong := c.TranslatePIN(ctx, hsm.TranslatePIN{SourceKey: k.tpk, SourceFormat: hsm.ISO0, PINBlock: block, DestKey: k.cvk, DestFormat: hsm.ISO0, Card: card})
	r := dialRaw(t, addr)
	r.send("12") // unreadable: logged with its length only
	r.recv()
	c.Close()
	time.Sleep(50 * time.Millisecond)

	secrets := []string{hex.EncodeToString(block), hex.EncodeToString(out), string(k.tpk[16:48]), string(k.zpk[16:48]),
		"0123456789ABCDEFFEDCBA9876543210", "1C1C1C1C1C1C1C1C", "4012345678909", "97531"}
	var text strings.Builder
	for _, e := range logs.All() {
		text.WriteString(e.Message)
		for _, f := range e.Context {
			fmt.Fprintf(&text, " %v %v %v", f.Key, f.String, f.Interface)
		}
		text.WriteString("\n")
	}
	text.WriteString(errWrong.Error())
	all := strings.ToUpper(text.String())
	if logs.Len() == 0 {
		t.Fatalf("no log lines captured: the test would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(all, strings.ToUpper(s)) {
			t.Errorf("logs or errors contain %q", s)
		}
	}
}

func TestServeStopsWithConnectionsOpen(t *testing.T) {
	h, _ := hsm.New(testLMK)
	srv, _ := NewServer(h, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	r := dialRaw(t, ln.Addr().String())
	if got := r.roundTrip("0001NC"); !strings.HasPrefix(got, "0001ND00") {
		t.Fatalf("NC: %q", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return with a connection open")
	}
	if _, err := r.recv(); err == nil {
		t.Fatal("connection still open after shutdown")
	}
}
