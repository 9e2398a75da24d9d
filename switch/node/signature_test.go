package node

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/switch/txn"
)

// noLedger fails every read: the chunk rules below decide before the ledger is asked.
type noLedger struct{ ledger.Querier }

func (noLedger) QueryRow(context.Context, string, ...any) pgx.Row { panic("the ledger was asked") }

func chunk(n, m int, b []byte) *txn.Transaction {
	return &txn.Transaction{MTI: "0820", Type: txn.TypeSignatureUpload, TerminalID: "T1", MerchantID: "M1", STAN: "000001",
		TransmissionTime: "0614120000", OriginalData: "020000000106141200000000000000000000000000000"[:42],
		ChunkNumber: n, ChunkLast: m, SignatureChunk: b}
}

func TestSignatureChunksOutOfOrderOrTooLargeAre30(t *testing.T) {
	d := newSignatureDesk(noLedger{}, map[string]string{"T1": "M1"}, "ACQ", zap.NewNop(), nil)
	ctx := context.Background()
	run := func(tx *txn.Transaction) string { d.handle(ctx, tx); return tx.Response }

	if rc := run(chunk(2, 3, []byte("x"))); rc != txn.RCFormatError {
		t.Fatalf("chunk 2 first: %s", rc)
	}
	if rc := run(chunk(1, 3, []byte("a"))); rc != txn.RCApproved {
		t.Fatalf("chunk 1: %s", rc)
	}
	if rc := run(chunk(1, 3, []byte("a"))); rc != txn.RCApproved {
		t.Fatalf("chunk 1 repeated (answer lost): %s", rc)
	}
	if rc := run(chunk(3, 3, []byte("c"))); rc != txn.RCFormatError {
		t.Fatalf("chunk 3 before 2: %s", rc)
	}
	if rc := run(chunk(2, 3, []byte("b"))); rc != txn.RCFormatError {
		t.Fatalf("chunk 2 after the assembly was dropped: %s", rc)
	}
	big := make([]byte, ledger.MaxSignatureBytes/2+1)
	if rc := run(chunk(1, 2, big)); rc != txn.RCApproved {
		t.Fatalf("first half: %s", rc)
	}
	if rc := run(chunk(2, 2, big)); rc != txn.RCFormatError {
		t.Fatalf("over 256 KiB: %s", rc)
	}
	other := chunk(1, 1, []byte("x"))
	other.TerminalID = "T9"
	if rc := run(other); rc != txn.RCInvalidMerchant {
		t.Fatalf("unknown terminal: %s", rc)
	}
	notPNG := chunk(1, 1, []byte("not a png"))
	if rc := run(notPNG); rc != txn.RCFormatError {
		t.Fatalf("not a PNG: %s", rc)
	}
}
