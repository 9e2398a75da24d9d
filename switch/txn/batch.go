package txn

// BatchTotals are a terminal's totals from a 0500 batch settlement request (ISO 8583:1987 fields
// 74-89 and 97). Counts and amounts are the terminal's own; amounts are minor units of the
// transaction currency (field 49). From the terminal's side debits are sales (purchases,
// completions, bill payments) and credits are refunds; their "reversal" fields count voids.
type BatchTotals struct {
	CreditsCount          int64 // 74
	CreditsReversalCount  int64 // 75
	DebitsCount           int64 // 76
	DebitsReversalCount   int64 // 77
	TransferCount         int64 // 78
	TransferReversalCount int64 // 79
	InquiriesCount        int64 // 80
	AuthorizationsCount   int64 // 81
	CreditsProcessingFee  int64 // 82
	CreditsTransactionFee int64 // 83
	DebitsProcessingFee   int64 // 84
	DebitsTransactionFee  int64 // 85
	CreditsAmount         int64 // 86
	CreditsReversalAmount int64 // 87
	DebitsAmount          int64 // 88
	DebitsReversalAmount  int64 // 89
	NetAmount             int64 // 97, signed: C is positive, D negative
	// Sent lists the optional fields (78-85) the terminal sent; fields 74-77, 86-89 and 97 are
	// required in a 0500.
	Sent map[int]bool
}

// Processing codes of batch settlement (field 3 of a 0500).
const (
	ProcSettlement        = "920000" // the terminal's totals; the answer is 00 or 95
	ProcSettlementTrailer = "960000" // after a batch upload: totals again, the upload is complete
)
