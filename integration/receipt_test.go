package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/keyceremony"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/txn"
)

// A PIN purchase prints "no signature required"; a swiped purchase without PIN needs a signature,
// which the terminal uploads in chunks: the switch keeps it with the transaction, auditors list it
// (v_signatures) and fetch it back byte for byte through the ledger API, the HTTP API and the CLI.
// The same image again stores nothing, another one is refused, and an upload for a transaction the
// switch did not approve is 25.
func TestReceiptsAndASignatureStoredWithTheTransaction(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 4, pinPads: map[int]string{0: keyceremony.TPK}})
	c := s.dial("iso87a", "iso87a", false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A chip purchase with a PIN (terminal 0 has a PIN pad).
	pinTerm := s.terminals[0]
	pinCard := cards.MustLookup("6226090000000014")
	pinReq := terminalsim.NewPurchase(pinTerm, pinCard, 12345, pinCard.Currency, 1)
	if err := terminalsim.WithPIN(ctx, pinReq, s.keys.Terminals[pinTerm.TID].Pad, pinCard.PAN, pinCard.PIN); err != nil {
		t.Fatal(err)
	}
	pinResp := mustExchange(t, c, pinReq)
	r := terminalsim.NewReceipt(pinTerm, pinReq, pinResp)
	if !r.Approved || !r.NoSignatureRequired || r.SignatureRequired {
		t.Fatalf("PIN purchase receipt: %+v", r)
	}
	if r.Card != pinCard.Masked() || r.Currency != "CNY" || r.FormattedAmount() != "123.45" || len(r.AuthCode) != 6 ||
		len(r.RRN) != 12 || r.MerchantID != pinTerm.MID || r.TerminalID != pinTerm.TID {
		t.Errorf("PIN purchase receipt fields: %+v", r)
	}
	if slip := r.String(); !strings.Contains(slip, "NO SIGNATURE REQUIRED") || strings.Contains(slip, pinCard.PAN) {
		t.Errorf("PIN purchase slip:\n%s", slip)
	}

	// A swiped purchase without PIN: the cardholder signs.
	term := s.terminals[1]
	card := cards.MustLookup("4761730000000029") // magstripe only: swiped
	req := terminalsim.NewPurchase(term, card, 2500, card.Currency, 10)
	resp := mustExchange(t, c, req)
	r = terminalsim.NewReceipt(term, req, resp)
	if !r.Approved || !r.SignatureRequired || r.NoSignatureRequired || r.EntryMode != "SWIPE" || r.Card != card.Masked() ||
		r.Currency+" "+r.FormattedAmount() != "USD 25.00" || len(r.AuthCode) != 6 {
		t.Fatalf("swiped purchase receipt: %+v", r)
	}
	if strings.Contains(r.String(), "NO SIGNATURE REQUIRED") {
		t.Errorf("swiped purchase slip says no signature:\n%s", r.String())
	}
	// An image of several chunks: the pad's PNG with a text chunk of padding (still a valid PNG).
	img := padPNG(t, terminalsim.SignatureImage(42), 3000)
	code, err := terminalsim.UploadSignature(ctx, c, term, req, img, 11)
	if err != nil || code != txn.RCApproved {
		t.Fatalf("upload: %q %v", code, err)
	}

	key := txnIdentity(req)
	aud := pgtest.Pool(t, s.db.Auditor) // the read-only auditor role
	sig, ok, err := ledger.SignatureByKey(ctx, aud, key)
	if err != nil || !ok {
		t.Fatalf("auditor reading the signature: %v %v", ok, err)
	}
	sum := sha256.Sum256(img)
	if !bytes.Equal(sig.Image, img) || sig.SHA256 != hex.EncodeToString(sum[:]) || sig.Size != len(img) ||
		sig.PANMasked != card.Masked() || sig.Amount != 2500 || sig.Terminal != term.TID || sig.Merchant != term.MID {
		t.Fatalf("stored signature differs: %+v (image equal %v)", sig, bytes.Equal(sig.Image, img))
	}
	var listed int
	if err := aud.QueryRow(ctx, `SELECT count(*) FROM v_signatures WHERE entry_id = $1 AND sha256 = $2 AND pan_masked = $3`,
		[16]byte(sig.EntryID), sig.SHA256, card.Masked()).Scan(&listed); err != nil || listed != 1 {
		t.Fatalf("v_signatures lists it %d times (%v)", listed, err)
	}

	// The HTTP API serves the PNG itself.
	h, err := ledger.NewAuditHandler(aud, "a-test-token-of-16+", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	hreq, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/signatures/"+sig.EntryID.String(), nil)
	hreq.Header.Set("Authorization", "Bearer a-test-token-of-16+")
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if hresp.StatusCode != 200 || hresp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(body, img) {
		t.Fatalf("HTTP API: %d %s, image equal %v", hresp.StatusCode, hresp.Header.Get("Content-Type"), bytes.Equal(body, img))
	}

	// The CLI writes the same bytes.
	out := filepath.Join(t.TempDir(), "sig.png")
	cmd := exec.CommandContext(ctx, poswitchBinary(t), "ledger", "signature", "--db", s.db.Auditor, "--entry", sig.EntryID.String(), "--out", out)
	if text, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("poswitch ledger signature: %v\n%s", err, text)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, img) {
		t.Fatalf("CLI wrote a different file (%v)", err)
	}

	// The same image again: 00, nothing new; another image: refused, the record unchanged.
	if code, err := terminalsim.UploadSignature(ctx, c, term, req, img, 20); err != nil || code != txn.RCApproved {
		t.Fatalf("same image again: %q %v", code, err)
	}
	if code, err := terminalsim.UploadSignature(ctx, c, term, req, terminalsim.SignatureImage(43), 30); err != nil || code != txn.RCInvalidTxn {
		t.Fatalf("another image: %q %v, want 12", code, err)
	}
	var n int
	var have []byte
	if err := aud.QueryRow(ctx, `SELECT count(*) OVER (), image FROM signature WHERE txn_key = $1`, key).Scan(&n, &have); err != nil ||
		n != 1 || !bytes.Equal(have, img) {
		t.Fatalf("after a second and third upload: %d rows, image unchanged %v (%v)", n, bytes.Equal(have, img), err)
	}

	// A dispute record does not change, not even by the switch's own role.
	if _, err := s.node.Pool.Exec(ctx, `UPDATE signature SET image = $1 WHERE txn_key = $2`, terminalsim.SignatureImage(45), key); err == nil {
		t.Fatal("the application role changed a stored signature")
	}

	// No approved transaction to sign for: one never sent, one declined.
	never := terminalsim.NewPurchase(term, card, 2500, card.Currency, 40)
	if code, err := terminalsim.UploadSignature(ctx, c, term, never, img, 41); err != nil || code != txn.RCNoRecord {
		t.Fatalf("upload for an unknown transaction: %q %v, want 25", code, err)
	}
	declinedCard := cards.MustLookup("4761730000000037") // balance 0.50: 51
	declined := terminalsim.NewPurchase(term, declinedCard, 2500, declinedCard.Currency, 50)
	if rc := fieldOf(mustExchange(t, c, declined), 39); rc == txn.RCApproved {
		t.Fatalf("the declining card was approved")
	}
	if code, err := terminalsim.UploadSignature(ctx, c, term, declined, img, 51); err != nil || code != txn.RCNoRecord {
		t.Fatalf("upload for a declined transaction: %q %v, want 25", code, err)
	}
	// Another terminal cannot sign for this terminal's transaction.
	if code, err := terminalsim.UploadSignature(ctx, c, s.terminals[2], req, terminalsim.SignatureImage(44), 60); err != nil || code != txn.RCNoRecord {
		t.Fatalf("upload from another terminal: %q %v, want 25", code, err)
	}
	var total int
	if err := aud.QueryRow(ctx, `SELECT count(*) FROM v_signatures`).Scan(&total); err != nil || total != 1 {
		t.Fatalf("%d signatures kept (%v), want 1", total, err)
	}
}

// padPNG inserts a private text chunk ("tEXt" is ancillary: readers skip it) of n bytes after the
// header, so the image spans several upload chunks and stays a valid PNG.
func padPNG(t *testing.T, png []byte, n int) []byte {
	t.Helper()
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // magic, IHDR length, type, data, CRC
	data := append([]byte("Comment\x00"), bytes.Repeat([]byte("x"), n)...)
	chunk := make([]byte, 0, 12+len(data))
	chunk = append(chunk, byte(len(data)>>24), byte(len(data)>>16), byte(len(data)>>8), byte(len(data)))
	chunk = append(chunk, "tEXt"...)
	chunk = append(chunk, data...)
	crc := crc32.ChecksumIEEE(chunk[4:])
	chunk = append(chunk, byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc))
	out := append(append(append([]byte(nil), png[:ihdrEnd]...), chunk...), png[ihdrEnd:]...)
	return out
}
