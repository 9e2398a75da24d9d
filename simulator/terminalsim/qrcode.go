package terminalsim

import (
	"fmt"
	"os"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QR codes are drawn with github.com/skip2/go-qrcode: a maintained, dependency-free encoder that
// picks the version and mask itself, gives the module matrix (for the terminal rendering below) and
// writes PNG. Medium error correction (15 %) is what wallets scan well from a screen.
const qrLevel = qrcode.Medium

// Bounds of the QR drawings.
const (
	maxQRPayloadBytes = 512 // EMV QRCPS's limit on a payload
	minPNGPixels      = 64
	maxPNGPixels      = 2048
	DefaultPNGPixels  = 384
)

// QRText draws payload as a QR code for a terminal screen with Unicode half blocks: each character
// cell holds two modules, one above the other, so the code stays square in a terminal font. Dark
// modules are drawn as spaces on a light background (inverse), which phone cameras read from a dark
// terminal; the quiet zone of four modules is included.
func QRText(payload string) (string, error) {
	q, err := newQR(payload)
	if err != nil {
		return "", err
	}
	bits := q.Bitmap() // includes the quiet zone
	var b strings.Builder
	for y := 0; y < len(bits); y += 2 {
		for x := range bits[y] {
			top := !bits[y][x]
			bottom := true // light below the last row
			if y+1 < len(bits) {
				bottom = !bits[y+1][x]
			}
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// QRPNG draws payload as a PNG image about pixels wide (64..2048; 0 takes 384), dark on white.
func QRPNG(payload string, pixels int) ([]byte, error) {
	if pixels == 0 {
		pixels = DefaultPNGPixels
	}
	if pixels < minPNGPixels || pixels > maxPNGPixels {
		return nil, fmt.Errorf("QR image of %d pixels: want %d..%d", pixels, minPNGPixels, maxPNGPixels)
	}
	q, err := newQR(payload)
	if err != nil {
		return nil, err
	}
	png, err := q.PNG(pixels)
	if err != nil {
		return nil, fmt.Errorf("drawing the QR code: %w", err)
	}
	return png, nil
}

// WriteQRPNG writes payload as a PNG file (QRPNG) to path.
func WriteQRPNG(path, payload string, pixels int) error {
	png, err := QRPNG(payload, pixels)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("writing the QR code: %w", err)
	}
	return nil
}

func newQR(payload string) (*qrcode.QRCode, error) {
	if payload == "" || len(payload) > maxQRPayloadBytes {
		return nil, fmt.Errorf("QR payload of %d bytes: want 1..%d", len(payload), maxQRPayloadBytes)
	}
	q, err := qrcode.New(payload, qrLevel)
	if err != nil {
		return nil, fmt.Errorf("encoding the QR code: %w", err)
	}
	return q, nil
}
