package encryption

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// envelopePrefix starts every encrypted string: "enc:v1:<key id>:<data>",
// data being the nonce and ciphertext in unpadded URL-safe base64. Text
// without the prefix is a value stored before encryption was configured,
// and reads as it is.
const envelopePrefix = "enc:v1:"

// EncryptString returns plaintext encrypted with the current key as an
// envelope bound to context (e.g. "functions/<id>/secret"), so that an
// envelope copied to another row or column does not decrypt there. The
// empty string stays empty: "no value" is not a secret. A nil ring
// returns plaintext as it is (encryption not configured).
func (r *KeyRing) EncryptString(plaintext, context string) (string, error) {
	if r == nil || plaintext == "" {
		return plaintext, nil
	}
	id, sealed, err := r.Seal([]byte(plaintext), []byte(context))
	if err != nil {
		return "", err
	}
	return envelopePrefix + id + ":" + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// DecryptString returns the plaintext of an envelope EncryptString made
// with the same context, or s itself when s is not an envelope (stored
// in clear text). A nil ring reads clear text only. Errors wrap
// ErrNoKeys, ErrUnknownKey or ErrDecrypt and never quote s.
func (r *KeyRing) DecryptString(s, context string) (string, error) {
	rest, ok := strings.CutPrefix(s, envelopePrefix)
	if !ok {
		return s, nil
	}
	id, data, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("%w: a malformed envelope (no key id)", ErrDecrypt)
	}
	sealed, err := base64.RawURLEncoding.DecodeString(data)
	if err != nil {
		return "", fmt.Errorf("encrypted with key %q: %w (not base64)", id, ErrDecrypt)
	}
	plain, err := r.Open(id, sealed, []byte(context))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// IsEnvelope reports whether s reads as an envelope: clear text that
// does cannot be stored as it is, since it would be read as one.
func IsEnvelope(s string) bool { return strings.HasPrefix(s, envelopePrefix) }

// EnvelopeKey returns the id of the key that encrypted s, and false when
// s is not an envelope.
func EnvelopeKey(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, envelopePrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ":")
	return id, ok
}

// NeedsRotation reports whether s should be encrypted again: it is clear
// text, or encrypted with a key other than the current one. The empty
// string never needs it.
func (r *KeyRing) NeedsRotation(s string) bool {
	if s == "" {
		return false
	}
	id, ok := EnvelopeKey(s)
	return !ok || id != r.Current()
}
