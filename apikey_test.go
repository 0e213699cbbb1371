package dispatcher_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

func TestNewAPIKey(t *testing.T) {
	key, hash := dispatcher.NewAPIKey()
	other, _ := dispatcher.NewAPIKey()
	if !strings.HasPrefix(key, dispatcher.APIKeyPrefix) || len(key) != len(dispatcher.APIKeyPrefix)+43 || key == other {
		t.Fatalf("keys %q and %q: want dsp_ and 43 base64url characters (32 random bytes), each new", key, other)
	}
	if hash != dispatcher.APIKeyHash(key) || len(hash) != 64 || strings.Contains(hash, key) {
		t.Fatalf("hash %q of %q: want the hex SHA-256 of the key", hash, key)
	}
	if !dispatcher.IsAPIKey(key) {
		t.Fatalf("IsAPIKey(%q) = false", key)
	}
	// A JWT's first part is base64 of '{"', so it starts with "ey".
	if dispatcher.IsAPIKey("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.x") {
		t.Fatal("a JWT was taken for an API key")
	}
}

func TestAPIKeyExpired(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		expires time.Time
		expired bool
	}{
		{"never expires", time.Time{}, false},
		{"expires later", now.Add(time.Millisecond), false},
		{"expires now", now, true},
		{"expired", now.Add(-time.Hour), true},
	} {
		if got := (dispatcher.APIKey{Expires: tc.expires}).Expired(now); got != tc.expired {
			t.Errorf("%s: Expired = %v, want %v", tc.name, got, tc.expired)
		}
	}
}

// An API key's event types are held to what an event's type may be:
// before, ["a\"b"] was taken, a type no event can have.
func TestAPIKeyEventTypes(t *testing.T) {
	now := time.Now()
	_, hash := dispatcher.NewAPIKey()
	for _, typ := range []string{`a"b`, `a\b`, "a\u0085b"} {
		k := dispatcher.APIKey{Name: "k", Permissions: []string{"CREATE_EVENTS"}, EventTypes: []string{"ok", typ}, Hash: hash}
		if err := k.Validate(now); dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.HasPrefix(dispatcher.ErrorMessage(err), "eventTypes[1]: must not contain") {
			t.Errorf("event type %q: %v, want eventTypes[1] refused", typ, err)
		}
	}
}

// A permission in lower case is refused with its name in upper case: before,
// "create_events" was said to be no permission name, with no more to go on.
func TestAPIKeyPermissionInLowerCase(t *testing.T) {
	_, hash := dispatcher.NewAPIKey()
	for perm, want := range map[string]string{
		"create_events": `permissions[0]: "create_events" is not a permission name: they are upper case ("CREATE_EVENTS")`,
		"create-events": `permissions[0]: "create-events" is not a permission name`,
	} {
		k := dispatcher.APIKey{Name: "k", Permissions: []string{perm}, Hash: hash}
		if err := k.Validate(time.Now()); dispatcher.ErrorCode(err) != dispatcher.EINVALID || dispatcher.ErrorMessage(err) != want {
			t.Errorf("%q: %v, want %q", perm, err, want)
		}
	}
}
