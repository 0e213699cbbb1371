// Package encryption keeps what the dispatcher must not leave readable
// where others can read it — function secrets and headers in the database,
// payloads in Temporal's histories — encrypted with AES-256-GCM under the
// keys of DISPATCHER_ENCRYPTION_KEY. It is a leaf of the standard library:
// the database and Temporal sides (models/, dispatch/) use it.
//
// A key ring holds one or more named keys. The first encrypts; all of them
// decrypt, which is what makes rotation possible: add a new key in front,
// re-encrypt what is stored, and drop the old key once nothing needs it.
package encryption

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

// Errors of decryption; the errors returned wrap them with the key id.
var (
	// ErrUnknownKey: the data names a key the ring does not hold.
	ErrUnknownKey = errors.New("the key is not in DISPATCHER_ENCRYPTION_KEY")
	// ErrNoKeys: the data is encrypted, and no key ring is configured.
	ErrNoKeys = errors.New("DISPATCHER_ENCRYPTION_KEY is not set")
	// ErrDecrypt: the key is known but does not open the data: a
	// different key was given the same id, or the data was altered.
	ErrDecrypt = errors.New("does not decrypt: the key differs from the one it was encrypted with, or the data was altered")
)

// keyID is what a key may be called: it travels in every envelope and
// payload, so it is short and needs no escaping.
var keyID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$`)

// KeyRing is a set of named AES-256-GCM keys, the first of them current.
// It is safe for concurrent use. A nil *KeyRing means "no encryption":
// see EncryptString and DecryptString.
type KeyRing struct {
	ids   []string // in the order configured; ids[0] encrypts
	aeads map[string]cipher.AEAD
}

// ParseKeyRing reads a key ring from its setting: comma-separated
// "id:key" entries, key being 32 bytes in standard or URL-safe base64,
// the first entry current. Errors name the entry (by position and id)
// but never quote a key.
func ParseKeyRing(s string) (*KeyRing, error) {
	r := &KeyRing{aeads: map[string]cipher.AEAD{}}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, key, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("entry %d: want id:base64key", i+1)
		}
		if !keyID.MatchString(id) {
			return nil, fmt.Errorf("entry %d: the key id must be 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit", i+1)
		}
		if _, dup := r.aeads[id]; dup {
			return nil, fmt.Errorf("entry %d: key id %q appears twice", i+1, id)
		}
		raw, err := decodeKey(key)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", id, err)
		}
		aead, err := newAEAD(raw)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", id, err)
		}
		r.ids = append(r.ids, id)
		r.aeads[id] = aead
	}
	if len(r.ids) == 0 {
		return nil, errors.New("no key: want id:base64key[,id:base64key...]")
	}
	return r, nil
}

// decodeKey accepts the base64 forms people paste: standard or URL-safe,
// padded or not.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("want %d bytes (AES-256), base64-encoded; it is %d bytes (`dispatcher encryption keygen` makes one)", KeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64 (`dispatcher encryption keygen` makes a key)")
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Current returns the id of the key that encrypts.
func (r *KeyRing) Current() string { return r.ids[0] }

// IDs returns the ids of the keys, the current one first.
func (r *KeyRing) IDs() []string { return append([]string(nil), r.ids...) }

// Seal encrypts plaintext with the current key, binding it to aad (which
// must be given again to Open), and returns the key's id and the random
// nonce followed by the ciphertext.
func (r *KeyRing) Seal(plaintext, aad []byte) (string, []byte, error) {
	sealed, err := r.SealWith(r.ids[0], plaintext, aad)
	return r.ids[0], sealed, err
}

// SealWith is Seal with the key named id, one of the ring's.
func (r *KeyRing) SealWith(id string, plaintext, aad []byte) ([]byte, error) {
	aead, ok := r.aeads[id]
	if !ok {
		return nil, fmt.Errorf("key %q: %w", id, ErrUnknownKey)
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return aead.Seal(out, out, plaintext, aad), nil
}

// Open decrypts what Seal returned under the key named id. Errors wrap
// ErrUnknownKey or ErrDecrypt.
func (r *KeyRing) Open(id string, sealed, aad []byte) ([]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("encrypted with key %q, but %w", id, ErrNoKeys)
	}
	aead, ok := r.aeads[id]
	if !ok {
		return nil, fmt.Errorf("encrypted with key %q: %w (it holds %s)", id, ErrUnknownKey, strings.Join(r.ids, ", "))
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("encrypted with key %q: %w (too short)", id, ErrDecrypt)
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("encrypted with key %q: %w", id, ErrDecrypt)
	}
	return plain, nil
}

// GenerateKey returns a new random key entry "id:base64key" for the
// setting. id must be a valid key id.
func GenerateKey(id string) (string, error) {
	if !keyID.MatchString(id) {
		return "", fmt.Errorf("key id %q: want 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}
