package encryption_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/encryption"
)

// newKey returns a fresh key entry, failing the test on error.
func newKey(t *testing.T, id string) string {
	t.Helper()
	k, err := encryption.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ring(t *testing.T, setting string) *encryption.KeyRing {
	t.Helper()
	r, err := encryption.ParseKeyRing(setting)
	if err != nil {
		t.Fatalf("ParseKeyRing: %v", err)
	}
	return r
}

func TestParseKeyRing(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	raw := make([]byte, encryption.KeySize)
	for i := range raw {
		raw[i] = byte(i) + 0xc0 // base64 of these bytes has '+' and '/' or '-' and '_'
	}
	r := ring(t, " "+k2+" , "+k1+",")
	if r.Current() != "k2" || strings.Join(r.IDs(), ",") != "k2,k1" {
		t.Errorf("current %q, ids %v; want k2 first", r.Current(), r.IDs())
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if _, err := encryption.ParseKeyRing("a:" + enc.EncodeToString(raw)); err != nil {
			t.Errorf("a key in %v base64: %v", enc, err)
		}
	}

	short := base64.StdEncoding.EncodeToString(raw[:16])
	secretish := base64.StdEncoding.EncodeToString(raw)
	for _, tt := range []struct{ setting, want string }{
		{"", "no key"},
		{" , ", "no key"},
		{secretish, "entry 1: want id:base64key"},
		{"k1:" + short, `key "k1": want 32 bytes (AES-256), base64-encoded; it is 16 bytes`},
		{"k1:not*base64", `key "k1": not base64`},
		{":" + secretish, "entry 1: the key id must be"},
		{"a/b:" + secretish, "entry 1: the key id must be"},
		{k1 + "," + strings.Replace(k2, "k2", "k1", 1), `entry 2: key id "k1" appears twice`},
	} {
		_, err := encryption.ParseKeyRing(tt.setting)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseKeyRing(%q) = %v, want an error with %q", tt.setting, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), secretish) || strings.Contains(err.Error(), short) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
}

func TestEncryptStringRoundTripAndRotation(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	old := ring(t, k1)
	env, err := old.EncryptString("s3cr3t", "functions/1/secret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(env, "enc:v1:k1:") || strings.Contains(env, "s3cr3t") {
		t.Fatalf("envelope %q: want enc:v1:k1:… without the plaintext", env)
	}
	if again, _ := old.EncryptString("s3cr3t", "functions/1/secret"); again == env {
		t.Error("two encryptions of one value are equal: the nonce is not random")
	}
	if id, ok := encryption.EnvelopeKey(env); !ok || id != "k1" {
		t.Errorf("EnvelopeKey = %q, %v", id, ok)
	}

	rotated := ring(t, k2+","+k1)
	if got, err := rotated.DecryptString(env, "functions/1/secret"); err != nil || got != "s3cr3t" {
		t.Fatalf("the new ring reads the old envelope: %q, %v", got, err)
	}
	if !rotated.NeedsRotation(env) || rotated.NeedsRotation("") || !rotated.NeedsRotation("clear") {
		t.Error("NeedsRotation: want true for the old key and clear text, false for empty")
	}
	env2, err := rotated.EncryptString("s3cr3t", "functions/1/secret")
	if err != nil || !strings.HasPrefix(env2, "enc:v1:k2:") || rotated.NeedsRotation(env2) {
		t.Fatalf("new envelope %q, %v: want one under k2", env2, err)
	}
	if _, err := old.DecryptString(env2, "functions/1/secret"); !errors.Is(err, encryption.ErrUnknownKey) {
		t.Errorf("the old ring on a k2 envelope: %v, want ErrUnknownKey", err)
	}
}

func TestDecryptStringRefuses(t *testing.T) {
	k1 := newKey(t, "k1")
	r := ring(t, k1)
	env, err := r.EncryptString("s3cr3t", "functions/1/secret")
	if err != nil {
		t.Fatal(err)
	}
	impostor := ring(t, newKey(t, "k1")) // same id, other key
	tampered := flipLastByte(t, env)
	for _, tt := range []struct {
		name    string
		r       *encryption.KeyRing
		s, ctx  string
		wantErr error
		wantMsg string
	}{
		{"wrong key under the same id", impostor, env, "functions/1/secret", encryption.ErrDecrypt, `encrypted with key "k1": does not decrypt`},
		{"another row's context", r, env, "functions/2/secret", encryption.ErrDecrypt, "does not decrypt"},
		{"altered", r, tampered, "functions/1/secret", encryption.ErrDecrypt, "does not decrypt"},
		{"no key ring", nil, env, "functions/1/secret", encryption.ErrNoKeys, `encrypted with key "k1", but DISPATCHER_ENCRYPTION_KEY is not set`},
		{"unknown key", ring(t, newKey(t, "k9")), env, "functions/1/secret", encryption.ErrUnknownKey, `encrypted with key "k1": the key is not in DISPATCHER_ENCRYPTION_KEY (it holds k9)`},
		{"no key id", r, "enc:v1:nokeyid", "x", encryption.ErrDecrypt, "malformed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.DecryptString(tt.s, tt.ctx)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("DecryptString = %q, %v; want %v saying %q", got, err, tt.wantErr, tt.wantMsg)
			}
		})
	}

	var none *encryption.KeyRing
	if got, err := none.DecryptString("clear text", "x"); err != nil || got != "clear text" {
		t.Errorf("a nil ring reads clear text: %q, %v", got, err)
	}
	if got, err := none.EncryptString("clear text", "x"); err != nil || got != "clear text" {
		t.Errorf("a nil ring stores clear text: %q, %v", got, err)
	}
}

func TestGenerateKey(t *testing.T) {
	k, err := encryption.GenerateKey("2025-01")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := encryption.ParseKeyRing(k); err != nil {
		t.Errorf("a generated key does not parse: %v", err)
	}
	if other, _ := encryption.GenerateKey("2025-01"); other == k {
		t.Error("two generated keys are equal")
	}
	if _, err := encryption.GenerateKey("no spaces"); err == nil {
		t.Error("an invalid id was accepted")
	}
}

// flipLastByte alters the last byte of an envelope's ciphertext.
func flipLastByte(t *testing.T, env string) string {
	t.Helper()
	i := strings.LastIndexByte(env, ':')
	b, err := base64.RawURLEncoding.DecodeString(env[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	return env[:i+1] + base64.RawURLEncoding.EncodeToString(b)
}
