package specs

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadFrameReadsBackToBackFramesThenEOF(t *testing.T) {
	wire := []byte{0x00, 0x03, 'a', 'b', 'c', 0x00, 0x01, 'z'}
	r := bufio.NewReader(bytes.NewReader(wire))
	buf := make([]byte, 16)
	for _, want := range []string{"abc", "z"} {
		got, err := ReadFrame(r, buf)
		if err != nil || string(got) != want {
			t.Fatalf("ReadFrame = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := ReadFrame(r, buf); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestAppendFramePrefixesBigEndianLength(t *testing.T) {
	body := bytes.Repeat([]byte{'x'}, 0x0123)
	got, err := AppendFrame([]byte("keep"), body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:6], []byte{'k', 'e', 'e', 'p', 0x01, 0x23}) || len(got) != 6+0x0123 {
		t.Fatalf("frame starts % X, length %d", got[:6], len(got))
	}
}

func TestBadFrameLengths(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		want func(error) bool
	}{
		{"length over maximum", []byte{0x20, 0x01, 'a'}, func(err error) bool {
			var fe *FrameLengthError
			return errors.As(err, &fe) && fe.Length == 0x2001 && fe.Max == MaxFrameLength
		}},
		{"zero length", []byte{0x00, 0x00}, func(err error) bool {
			var fe *FrameLengthError
			return errors.As(err, &fe) && fe.Length == 0
		}},
		{"truncated body", []byte{0x00, 0x05, 'a', 'b'}, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"truncated header", []byte{0x00}, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReader(bytes.NewReader(tt.wire)), nil)
			if !tt.want(err) {
				t.Fatalf("ReadFrame error = %v", err)
			}
		})
	}
	if _, err := AppendFrame(nil, make([]byte, MaxFrameLength+1)); err == nil {
		t.Fatal("AppendFrame accepted a body over MaxFrameLength")
	}
}

func TestMessageLengthFunctionsMatchFraming(t *testing.T) {
	var b bytes.Buffer
	if _, err := WriteMessageLength(&b, 300); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), []byte{0x01, 0x2C}) {
		t.Fatalf("header % X", b.Bytes())
	}
	n, err := ReadMessageLength(&b)
	if err != nil || n != 300 {
		t.Fatalf("ReadMessageLength = %d, %v", n, err)
	}
	if _, err := ReadMessageLength(bytes.NewReader([]byte{0xFF, 0xFF})); err == nil {
		t.Fatal("ReadMessageLength accepted 65535")
	}
}

func TestTPDUSplitAndReply(t *testing.T) {
	// TPDU 60 0003 0000 (to NII 3 from terminal 0), then the MTI.
	body := []byte{0x60, 0x00, 0x03, 0x00, 0x00, '0', '2', '0', '0'}
	tpdu, msg, err := SplitTPDU(body)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != "0200" || tpdu.Destination() != 3 || tpdu.Source() != 0 {
		t.Fatalf("tpdu %s msg %q", tpdu, msg)
	}
	if reply := tpdu.Reply(); reply != (TPDU{0x60, 0x00, 0x00, 0x00, 0x03}) {
		t.Fatalf("reply % X", reply[:])
	}
	if NewTPDU(3, 0) != tpdu {
		t.Fatal("NewTPDU differs from the parsed TPDU")
	}
	for _, bad := range [][]byte{{0x60, 0x00}, {0x61, 0, 3, 0, 0, '0'}} {
		if _, _, err := SplitTPDU(bad); err == nil || !strings.Contains(err.Error(), "TPDU") {
			t.Errorf("SplitTPDU(% X) error = %v", bad, err)
		}
	}
}
