package terminalsim

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poswitch/poswitch/specs/emvqr"
)

func orderPayload(t *testing.T) string {
	t.Helper()
	s, err := emvqr.Build(emvqr.Payload{AcquirerGUID: "cn.poswitch.qr", MerchantID: "MERCHANT0000001", TerminalID: "TERM0001",
		OrderID: "0190F2A1B2C3D4E5F6A7", MCC: "5411", Currency: "156", Amount: "123.45", Country: "CN",
		MerchantName: "POSWITCH TEST SHOP 001", MerchantCity: "SHANGHAI"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// zbar decodes the QR code in a PNG file with Debian's zbarimg, an independent reader. The test
// fails without it (`make test` installs zbar-tools).
func zbar(t *testing.T, path string) string {
	t.Helper()
	bin, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Fatalf("zbarimg is required (apt-get install zbar-tools; make test installs it): %v", err)
	}
	out, err := exec.Command(bin, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path).Output()
	if err != nil {
		t.Fatalf("zbarimg %s: %v", path, err)
	}
	return strings.TrimSuffix(string(out), "\n")
}

func TestQRPNGReadsBackAsThePayload(t *testing.T) {
	payload := orderPayload(t)
	path := filepath.Join(t.TempDir(), "order.png")
	if err := WriteQRPNG(path, payload, 0); err != nil {
		t.Fatal(err)
	}
	if got := zbar(t, path); got != payload {
		t.Fatalf("zbarimg read %q, want %q", got, payload)
	}
}

// The terminal drawing is turned back into pixels (a full block is two light modules, a space two
// dark ones) and read by zbarimg: what the screen shows is the payload.
func TestQRTextReadsBackAsThePayload(t *testing.T) {
	payload := orderPayload(t)
	text, err := QRText(payload)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	width := len([]rune(rows[0]))
	const scale = 8
	img := image.NewGray(image.Rect(0, 0, width*scale, len(rows)*2*scale))
	for y, row := range rows {
		runes := []rune(row)
		if len(runes) != width {
			t.Fatalf("row %d is %d cells wide, row 0 is %d", y, len(runes), width)
		}
		for x, r := range runes {
			var top, bottom bool // light?
			switch r {
			case '█':
				top, bottom = true, true
			case '▀':
				top = true
			case '▄':
				bottom = true
			case ' ':
			default:
				t.Fatalf("unexpected rune %q in the drawing", r)
			}
			for dy := 0; dy < 2*scale; dy++ {
				light := top
				if dy >= scale {
					light = bottom
				}
				for dx := 0; dx < scale; dx++ {
					c := color.Gray{Y: 0}
					if light {
						c.Y = 255
					}
					img.SetGray(x*scale+dx, (2*y)*scale+dy, c)
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "screen.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got := zbar(t, path)
	if got != payload {
		t.Fatalf("zbarimg read the screen as %q, want %q", got, payload)
	}
}

func TestQRDrawingsRefuseWhatNoWalletReads(t *testing.T) {
	if _, err := QRText(""); err == nil {
		t.Error("QRText accepted an empty payload")
	}
	if _, err := QRPNG(strings.Repeat("9", 513), 0); err == nil {
		t.Error("QRPNG accepted a payload above 512 bytes")
	}
	if _, err := QRPNG("000201", 10_000); err == nil {
		t.Error("QRPNG accepted a 10000-pixel image")
	}
}
