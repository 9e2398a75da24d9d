package saf

// Response codes (field 39) with which an issuer says it could not process a message at all. The
// issuer answered, so the message arrived, but it was not taken.
const (
	rcInvalidTransaction = "12" // the issuer will not post this message
	rcInvalidCard        = "14" // no account to post it to
	rcFormatError        = "30" // the issuer could not read it (e.g. an advice without field 2)
	rcSystemError        = "96" // the issuer failed while processing it: what it did is unknown
)

// Acknowledged tells whether an issuer's answer rc settles an item of kind (done), or whether the
// item needs an operator, and why. Repeating the message would get the same answer, and repeating
// it until MaxAttempts would hide the problem for hours, so the item is flagged at once.
//
//   - An advice (0120/0220) tells the issuer of something the switch already approved on its
//     behalf, and the issuer must post it. Answered 30, 12, 14 or 96 it was not posted (or, for 96,
//     may not have been): operator. Any other code acknowledges it: an issuer cannot decline what
//     is already approved.
//   - A reversal (0420) is acknowledged whatever the issuer decided about it: an issuer answers 00
//     for an original it never saw or already reversed, and 12, 14 or 25 mean there is nothing of
//     that original to undo. Only 30 (it could not read which original) and 96 (it failed while
//     reversing) leave the original possibly standing: operator.
//   - An answer without a response code cannot say the message was taken: operator.
func Acknowledged(kind Kind, rc string) (ok bool, why string) {
	if rc == "" {
		return false, "the issuer's answer has no response code (field 39)"
	}
	switch kind {
	case KindAdvice:
		switch rc {
		case rcFormatError:
			return false, "advice answered 30 (format error): the issuer could not read it and posted nothing"
		case rcInvalidTransaction:
			return false, "advice answered 12 (invalid transaction): the issuer will not post it"
		case rcInvalidCard:
			return false, "advice answered 14 (invalid card): the issuer has no account to post it to"
		case rcSystemError:
			return false, "advice answered 96 (system error): the issuer may not have posted it"
		}
	case KindReversal:
		switch rc {
		case rcFormatError:
			return false, "reversal answered 30 (format error): the issuer could not read which original to reverse"
		case rcSystemError:
			return false, "reversal answered 96 (system error): the original may not be reversed"
		}
	}
	return true, ""
}
