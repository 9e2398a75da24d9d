package hsm

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LMKLength is the size of the local master key: an AES-256 key block protection key.
const LMKLength = 32

// LoadLMK reads the LMK as 64 hex characters from the environment variable named envVar when it is
// set, else from the file at path. A file readable by group or others is refused: the LMK protects
// every key in the store.
func LoadLMK(path, envVar string) ([]byte, error) {
	if envVar != "" {
		if v, ok := os.LookupEnv(envVar); ok {
			lmk, err := parseLMK([]byte(v))
			if err != nil {
				return nil, fmt.Errorf("reading LMK from $%s: %w", envVar, err)
			}
			return lmk, nil
		}
	}
	if path == "" {
		if envVar != "" {
			return nil, fmt.Errorf("no LMK: $%s is not set and no LMK file was given", envVar)
		}
		return nil, errors.New("no LMK: neither an LMK file nor an environment variable was given")
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading LMK file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("reading LMK file %s: mode %04o lets others read it; chmod 600 it", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading LMK file: %w", err)
	}
	lmk, err := parseLMK(data)
	if err != nil {
		return nil, fmt.Errorf("reading LMK file %s: %w", path, err)
	}
	return lmk, nil
}

func parseLMK(text []byte) ([]byte, error) {
	text = bytes.TrimSpace(text)
	if len(text) != 2*LMKLength {
		return nil, fmt.Errorf("LMK must be %d hex characters, got %d characters", 2*LMKLength, len(text))
	}
	lmk := make([]byte, LMKLength)
	if _, err := hex.Decode(lmk, text); err != nil {
		return nil, errors.New("LMK is not hex")
	}
	return lmk, nil
}

// GenerateLMKFile writes a fresh random development LMK to path with mode 0600. It refuses to
// overwrite an existing file, so that a second `make run` cannot orphan every stored key block.
func GenerateLMKFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating LMK directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("LMK file %s already exists; not overwriting it", path)
		}
		return fmt.Errorf("creating LMK file: %w", err)
	}
	lmk := make([]byte, LMKLength)
	defer clear(lmk)
	if _, err := rand.Read(lmk); err != nil {
		f.Close()
		return fmt.Errorf("drawing LMK: %w", err)
	}
	text := make([]byte, 2*LMKLength+1)
	defer clear(text)
	hex.Encode(text, lmk)
	text[len(text)-1] = '\n'
	if _, err := f.Write(bytes.ToUpper(text)); err != nil {
		f.Close()
		return fmt.Errorf("writing LMK file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing LMK file: %w", err)
	}
	return nil
}
