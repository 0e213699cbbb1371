package dispatcher

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// APIKey is a long-lived credential for a producer or a piece of
// automation: it acts in the tenant of whoever created it, with a subset
// of their permissions and, when EventTypes is set, may only send events
// of those types. The key itself is shown once, when it is created; only
// its hash is kept.
type APIKey struct {
	ID          string
	Name        string
	Tenant      string
	Permissions []string // sorted, no duplicates
	// EventTypes, when not nil, are the only event types the key may
	// send; nil means any.
	EventTypes []string
	Expires    time.Time // zero: never
	CreatedBy  string    // the subject that created it
	Created    time.Time
	LastUsed   time.Time // zero: never; kept to APIKeyUseResolution
	Revoked    time.Time // zero: not revoked
	// Hash is APIKeyHash of the key: what a presented key is looked up
	// by. Never shown.
	Hash string
}

// APIKeyPrefix starts every API key, so the API tells a key from a JWT
// without parsing it, and secret scanners can recognise a leaked one.
const APIKeyPrefix = "dsp_"

// APIKeyUseResolution is how finely an API key's last use is kept: it is
// written at most once per this much time per key, not on every request.
const APIKeyUseResolution = time.Minute

// apiKeyBytes is the randomness of a key: 256 bits, beyond guessing.
const apiKeyBytes = 32

// NewAPIKey returns a fresh key and its hash.
func NewAPIKey() (key, hash string) {
	b := make([]byte, apiKeyBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, APIKeyHash(key)
}

// IsAPIKey reports whether a bearer token is meant as an API key (a JWT
// never starts with the prefix: its first part is base64 of '{').
func IsAPIKey(token string) bool { return strings.HasPrefix(token, APIKeyPrefix) }

// APIKeyHash is what a key is stored and looked up by: hex SHA-256. A key
// holds 256 random bits, so a fast hash is enough: a slow KDF (bcrypt,
// argon2) protects guessable passwords from a stolen table and would
// only cost every request time here. A lookup by hash also gives an
// attacker timing nothing to work with, since they cannot steer it.
func APIKeyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Expired reports whether the key has expired at now.
func (k APIKey) Expired(now time.Time) bool {
	return !k.Expires.IsZero() && !now.Before(k.Expires)
}

// Validate checks a key about to be created at now: a name, at least one
// permission, well-formed event types and an expiry in the future. It
// sorts and deduplicates Permissions and EventTypes. Which permissions
// exist, and whether the creator may grant them, the API checks.
func (k *APIKey) Validate(now time.Time) error {
	if err := checkText("name", k.Name); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(k.Name) == "":
		return Errorf(EREQUIRED, "name: is required (say what the key is for, e.g. \"billing producer\")")
	case utf8.RuneCountInString(k.Name) > 256:
		return Errorf(EINVALID, "name: must be at most 256 characters")
	case len(k.Permissions) == 0:
		return Errorf(EREQUIRED, "permissions: at least one permission is required")
	case k.EventTypes != nil && len(k.EventTypes) == 0:
		return Errorf(EINVALID, "eventTypes: must name at least one event type; leave it out to allow any")
	case len(k.EventTypes) > MaxAPIKeyEventTypes:
		return Errorf(EINVALID, "eventTypes: at most %d event types, not %d; leave it out to allow any", MaxAPIKeyEventTypes, len(k.EventTypes))
	case !k.Expires.IsZero() && !k.Expires.After(now):
		return Errorf(EINVALID, "expiresAt: must be in the future, not %s", k.Expires.UTC().Format(time.RFC3339))
	case len(k.Hash) != sha256.Size*2:
		return Errorf(EINTERNAL, "an API key needs its hash")
	}
	notName := func(p string) bool {
		return p == "" || strings.ContainsFunc(p, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r == '_') })
	}
	for i, p := range k.Permissions {
		if up := strings.ToUpper(p); notName(p) && !notName(up) {
			return Errorf(EINVALID, "permissions[%d]: %q is not a permission name: they are upper case (%q)", i, p, up)
		} else if notName(p) {
			return Errorf(EINVALID, "permissions[%d]: %q is not a permission name", i, p)
		}
	}
	for i, t := range k.EventTypes {
		if err := checkText(fmt.Sprintf("eventTypes[%d]", i), t); err != nil {
			return err
		}
		if t == "" || utf8.RuneCountInString(t) > 256 {
			return Errorf(EINVALID, "eventTypes[%d]: must be 1 to 256 characters", i)
		}
		if !searchable(t) {
			return Errorf(EINVALID, "eventTypes[%d]: %s", i, unsearchable)
		}
	}
	k.Permissions = sortedSet(k.Permissions)
	if k.EventTypes != nil {
		k.EventTypes = sortedSet(k.EventTypes)
	}
	return nil
}

func sortedSet(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// APIKeySubject is the subject of the principal an API key makes, in audit
// entries, rate limits and the CreatedBy of the keys it creates: its id,
// never its name, which may change meaning or be reused.
func APIKeySubject(id string) string { return "apikey:" + id }
