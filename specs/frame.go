package specs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrameLength bounds the body of one frame in bytes. ISO 8583:1987 messages of a POS network
// stay well under it; anything longer is a broken or hostile peer.
const MaxFrameLength = 8192

// frameHeaderLength is the 2-byte big-endian length that precedes every frame body.
const frameHeaderLength = 2

// FrameLengthError is a length prefix that cannot start a frame: zero or above MaxFrameLength.
// After it the stream cannot be resynchronised; the reader should close the connection.
type FrameLengthError struct {
	Length int
	Max    int
}

func (e *FrameLengthError) Error() string {
	if e.Length == 0 {
		return "frame length prefix is zero"
	}
	return fmt.Sprintf("frame length %d exceeds maximum %d", e.Length, e.Max)
}

// ReadFrame reads one frame and returns its body (without the length prefix, with the TPDU if the
// link uses one). It reuses buf when it is large enough, so the body is only valid until the next
// call with the same buf. It returns io.EOF at a clean end between frames, io.ErrUnexpectedEOF for a
// frame cut short and *FrameLengthError for a bad length.
func ReadFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var header [frameHeaderLength]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err // io.EOF before the first byte, io.ErrUnexpectedEOF after it
	}
	n := int(binary.BigEndian.Uint16(header[:]))
	if n == 0 || n > MaxFrameLength {
		return nil, &FrameLengthError{Length: n, Max: MaxFrameLength}
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	body := buf[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading frame body of %d bytes: %w", n, err)
	}
	return body, nil
}

// AppendFrame appends the length prefix and body to dst.
func AppendFrame(dst, body []byte) ([]byte, error) {
	if len(body) == 0 || len(body) > MaxFrameLength {
		return dst, &FrameLengthError{Length: len(body), Max: MaxFrameLength}
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(body)))
	return append(dst, body...), nil
}

// ReadMessageLength reads the 2-byte length prefix; it has the shape of iso8583-connection's
// MessageLengthReader, so issuer links use it with connection.New.
func ReadMessageLength(r io.Reader) (int, error) {
	var header [frameHeaderLength]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return 0, fmt.Errorf("reading message length: %w", err)
	}
	n := int(binary.BigEndian.Uint16(header[:]))
	if n == 0 || n > MaxFrameLength {
		return 0, &FrameLengthError{Length: n, Max: MaxFrameLength}
	}
	return n, nil
}

// WriteMessageLength writes the 2-byte length prefix; it has the shape of iso8583-connection's
// MessageLengthWriter.
func WriteMessageLength(w io.Writer, length int) (int, error) {
	if length <= 0 || length > MaxFrameLength {
		return 0, &FrameLengthError{Length: length, Max: MaxFrameLength}
	}
	var header [frameHeaderLength]byte
	binary.BigEndian.PutUint16(header[:], uint16(length))
	n, err := w.Write(header[:])
	if err != nil {
		return n, fmt.Errorf("writing message length: %w", err)
	}
	return n, nil
}
