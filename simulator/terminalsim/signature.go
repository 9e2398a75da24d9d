package terminalsim

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"time"

	"github.com/moov-io/iso8583"
)

// NetworkSignatureUpload is field 70 of an 0820 carrying a chunk of an e-signature.
const NetworkSignatureUpload = "850"

// Signature pad size (pixels) and the chunking of an upload.
const (
	signatureWidth  = 320
	signatureHeight = 120
	// maxSignatureChunkChars is field 62's share of one 0820: base64 in multiples of 4 characters
	// within the field's 999, so each chunk decodes on its own.
	maxSignatureChunkChars = 996
	maxSignatureChunkBytes = maxSignatureChunkChars / 4 * 3
	// MaxSignatureBytes is the largest image the switch keeps.
	MaxSignatureBytes = 256 << 10
)

// SignatureImage draws a cardholder's signature as the terminal's pad captured it: a few pen strokes,
// the same image for the same seed. The result is a 1-bit PNG of a few kilobytes.
func SignatureImage(seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed_5eed))
	img := image.NewPaletted(image.Rect(0, 0, signatureWidth, signatureHeight), color.Palette{color.White, color.Black})
	pen := func(x, y float64) {
		for dx := -1; dx <= 1; dx++ {
			for dy := -1; dy <= 1; dy++ {
				img.SetColorIndex(int(x)+dx, int(y)+dy, 1)
			}
		}
	}
	strokes := 3 + rng.IntN(3)
	x := 20 + rng.Float64()*20
	for range strokes {
		// Each stroke is a wave across part of the pad: amplitude, frequency and slope at random.
		length := 40 + rng.Float64()*80
		amp := 10 + rng.Float64()*30
		freq := 0.05 + rng.Float64()*0.15
		phase := rng.Float64() * 2 * math.Pi
		base := signatureHeight/2 + (rng.Float64()-0.5)*30
		slope := (rng.Float64() - 0.5) * 0.4
		for t := 0.0; t < length && x+t < signatureWidth-5; t += 0.5 {
			pen(x+t, base+amp*math.Sin(freq*t+phase)+slope*t)
		}
		x += length * (0.6 + rng.Float64()*0.3)
	}
	// The underline every pad draws under a signature.
	for px := 10; px < signatureWidth-10; px++ {
		img.SetColorIndex(px, signatureHeight-12, 1)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(fmt.Sprintf("terminalsim: encoding a signature: %v", err)) // a bytes.Buffer does not fail
	}
	return b.Bytes()
}

// NewSignatureChunks builds the 0820s that upload img as the e-signature of the transaction orig
// (field 90 as OriginalData builds it): chunk n of m in fields 71 and 72, the chunk in base64 in
// field 62 (at most 996 characters), STANs from stan on.
func NewSignatureChunks(t Terminal, orig *iso8583.Message, img []byte, stan int) ([]*iso8583.Message, error) {
	if len(img) == 0 || len(img) > MaxSignatureBytes {
		return nil, fmt.Errorf("signature image of %d bytes: must be 1 to %d", len(img), MaxSignatureBytes)
	}
	m := (len(img) + maxSignatureChunkBytes - 1) / maxSignatureChunkBytes
	now := time.Now()
	out := make([]*iso8583.Message, 0, m)
	for n := 1; n <= m; n++ {
		part := img[(n-1)*maxSignatureChunkBytes : min(n*maxSignatureChunkBytes, len(img))]
		out = append(out, build("0820", map[int]string{
			7: now.UTC().Format("0102150405"), 11: fmt.Sprintf("%06d", (stan+n-1)%1_000_000), 41: t.TID, 42: t.MID,
			62: base64.StdEncoding.EncodeToString(part), 70: NetworkSignatureUpload,
			71: fmt.Sprintf("%04d", n), 72: fmt.Sprintf("%04d", m), 90: OriginalData(orig),
		}))
	}
	return out, nil
}

// UploadSignature sends img as the e-signature of orig, chunk after chunk on c, and returns the
// switch's answer to the last chunk sent: "00" when the image is stored with the transaction (or
// was already), or the first code other than 00 (25: no approved transaction to sign for; 30: bad
// chunk or image; 12: the transaction has another signature).
func UploadSignature(ctx context.Context, c *Client, t Terminal, orig *iso8583.Message, img []byte, stan int) (string, error) {
	msgs, err := NewSignatureChunks(t, orig, img, stan)
	if err != nil {
		return "", err
	}
	code := ""
	for i, m := range msgs {
		resp, err := c.Send(ctx, m)
		if err != nil {
			return "", fmt.Errorf("sending signature chunk %d of %d: %w", i+1, len(msgs), err)
		}
		if code = get(resp, 39); code != "00" {
			return code, nil
		}
	}
	return code, nil
}
