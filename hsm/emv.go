package hsm

import (
	"context"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/emv"
)

// SessionKeyMethod says how the card derived the key of its application cryptogram.
type SessionKeyMethod int

const (
	// SessionKeyCommon is the EMV 4.x common session key from the ATC (EMV Book 2 A1.3): the usual case.
	SessionKeyCommon SessionKeyMethod = iota
	// SessionKeyNone uses the ICC master key itself (e.g. Visa CVN 10).
	SessionKeyNone
)

// MasterKeyOption selects the ICC master key derivation of EMV Book 2 A1.4.
type MasterKeyOption int

const (
	// MasterKeyAuto is option A for PANs of up to 16 digits and option B above, as issuers do.
	MasterKeyAuto MasterKeyOption = iota
	// MasterKeyOptionA always uses option A (rightmost 16 digits of PAN ‖ PSN).
	MasterKeyOptionA
	// MasterKeyOptionB always uses option B (SHA-1 based; the same as A for PANs of 16 digits or fewer).
	MasterKeyOptionB
)

// ARPC methods of EMV Book 2 8.2.
const (
	ARPCNone    = 0
	ARPCMethod1 = 1 // TDES(key)[ARQC XOR ARC‖00…]; 8 bytes
	ARPCMethod2 = 2 // MAC over ARQC ‖ CSU ‖ proprietary data; 4 bytes
)

// EMVCard identifies the card key: the issuer master key and the card it is diversified for.
type EMVCard struct {
	IMK KeyBlock // E0, TDES double-length, mode X
	PAN string   // 12–19 digits; option B derivation is used above 16 digits
	PSN string   // PAN sequence number, 2 digits ("" means 00)
	ATC uint16   // application transaction counter
	// MasterKeyOption selects the ICC master key derivation; the zero value chooses by PAN length.
	MasterKeyOption MasterKeyOption
	// SessionKey selects the cryptogram key.
	SessionKey SessionKeyMethod
	// Diversifier, when 8 bytes, replaces the common session key's R = ATC ‖ 000000000000 (some
	// cryptogram versions put the unpredictable number in R).
	Diversifier []byte
	// ARPCUnderMasterKey makes the ARPC under the ICC master key instead of the cryptogram key
	// (cryptogram versions that authenticate the response with the card key).
	ARPCUnderMasterKey bool
}

// VerifyARQC asks for an application cryptogram to be checked and, optionally, an ARPC made (KQ).
type VerifyARQC struct {
	Card EMVCard
	Data []byte // the data the card MACed (CDOL1 values), padding method 2 is applied by the HSM
	ARQC []byte // 8 bytes
	// ARPCMethod: ARPCNone, ARPCMethod1 (with ARC) or ARPCMethod2 (with CSU and optional
	// ProprietaryData).
	ARPCMethod      int
	ARC             []byte // 2 bytes, method 1
	CSU             []byte // 4 bytes, method 2
	ProprietaryData []byte // 0–8 bytes, method 2
}

// MaxEMVDataLength bounds the cryptogram data of one request.
const MaxEMVDataLength = 1024

// VerifyARQC checks the ARQC and returns the ARPC (nil when ARPCMethod is ARPCNone). A wrong ARQC is
// an error wrapping ErrVerificationFailed.
func (h *HSM) VerifyARQC(ctx context.Context, req VerifyARQC) ([]byte, error) {
	if len(req.Data) > MaxEMVDataLength {
		return nil, fmt.Errorf("verifying ARQC: %d bytes of data: %w", len(req.Data), ErrInvalidInput)
	}
	keys, err := h.cardKeys(req.Card)
	if err != nil {
		return nil, fmt.Errorf("verifying ARQC: %w", err)
	}
	defer keys.clear()
	if err := emv.VerifyARQC(keys.cryptogram, req.Data, req.ARQC); err != nil {
		return nil, fmt.Errorf("verifying ARQC: %w", public(err))
	}
	if req.ARPCMethod == ARPCNone {
		return nil, nil
	}
	arpc, err := makeARPC(keys.arpc, req.ARQC, req.ARPCMethod, req.ARC, req.CSU, req.ProprietaryData)
	if err != nil {
		return nil, fmt.Errorf("generating ARPC: %w", err)
	}
	return arpc, nil
}

// GenerateARPC asks for an ARPC without checking the ARQC (KQ mode 2).
type GenerateARPC struct {
	Card            EMVCard
	ARQC            []byte
	ARPCMethod      int
	ARC             []byte
	CSU             []byte
	ProprietaryData []byte
}

// GenerateARPC returns the ARPC for req.
func (h *HSM) GenerateARPC(ctx context.Context, req GenerateARPC) ([]byte, error) {
	keys, err := h.cardKeys(req.Card)
	if err != nil {
		return nil, fmt.Errorf("generating ARPC: %w", err)
	}
	defer keys.clear()
	arpc, err := makeARPC(keys.arpc, req.ARQC, req.ARPCMethod, req.ARC, req.CSU, req.ProprietaryData)
	if err != nil {
		return nil, fmt.Errorf("generating ARPC: %w", err)
	}
	return arpc, nil
}

// GenerateARQC computes the cryptogram a card would: for the card simulator and tests.
func (h *HSM) GenerateARQC(ctx context.Context, card EMVCard, data []byte) ([]byte, error) {
	if len(data) > MaxEMVDataLength {
		return nil, fmt.Errorf("generating ARQC: %d bytes of data: %w", len(data), ErrInvalidInput)
	}
	keys, err := h.cardKeys(card)
	if err != nil {
		return nil, fmt.Errorf("generating ARQC: %w", err)
	}
	defer keys.clear()
	arqc, err := emv.GenerateARQC(keys.cryptogram, data)
	if err != nil {
		return nil, fmt.Errorf("generating ARQC: %w", public(err))
	}
	return arqc, nil
}

func makeARPC(key, arqc []byte, method int, arc, csu, prop []byte) ([]byte, error) {
	var (
		arpc []byte
		err  error
	)
	switch method {
	case ARPCMethod1:
		arpc, err = emv.ARPCMethod1(key, arqc, arc)
	case ARPCMethod2:
		arpc, err = emv.ARPCMethod2(key, arqc, csu, prop)
	default:
		return nil, fmt.Errorf("ARPC method %d: %w", method, ErrInvalidInput)
	}
	if err != nil {
		return nil, public(err)
	}
	return arpc, nil
}

// cardKeys derives the card's master key and its cryptogram key (the session key, or the master
// key itself), and says which of them makes the ARPC. The caller clears both with clearKeys.
type cardKeys struct {
	master, cryptogram, arpc []byte
}

func (k *cardKeys) clear() {
	clear(k.master)
	clear(k.cryptogram)
}

func (h *HSM) cardKeys(c EMVCard) (*cardKeys, error) {
	imk, err := h.need(c.IMK, "issuer master key", []KeyUsage{UsageEMVMasterAC}, modesDerive, "T")
	if err != nil {
		return nil, err
	}
	var mk [emv.KeyLen]byte
	switch c.MasterKeyOption {
	case MasterKeyAuto:
		mk, err = emv.MasterKey(imk.block, c.PAN, c.PSN)
	case MasterKeyOptionA:
		mk, err = emv.MasterKeyOptionA(imk.block, c.PAN, c.PSN)
	case MasterKeyOptionB:
		mk, err = emv.MasterKeyOptionB(imk.block, c.PAN, c.PSN)
	default:
		return nil, fmt.Errorf("master key option %d: %w", c.MasterKeyOption, ErrInvalidInput)
	}
	if err != nil {
		return nil, public(err)
	}
	k := &cardKeys{master: mk[:]}
	switch c.SessionKey {
	case SessionKeyNone:
		k.cryptogram = append([]byte(nil), mk[:]...)
	case SessionKeyCommon:
		r := emv.ATCDiversifier(c.ATC)
		if c.Diversifier != nil {
			if len(c.Diversifier) != 8 {
				k.clear()
				return nil, fmt.Errorf("diversifier of %d bytes: %w", len(c.Diversifier), ErrInvalidInput)
			}
			copy(r[:], c.Diversifier)
		}
		sk, err := emv.CommonSessionKey(mk[:], r)
		if err != nil {
			k.clear()
			return nil, public(err)
		}
		k.cryptogram = sk[:]
	default:
		k.clear()
		return nil, fmt.Errorf("session key method %d: %w", c.SessionKey, ErrInvalidInput)
	}
	k.arpc = k.cryptogram
	if c.ARPCUnderMasterKey {
		k.arpc = k.master
	}
	return k, nil
}
