package wire

import (
	"encoding/json"

	"github.com/dispatcherhq/dispatcher"
)

// APIKeyRequest is the body of POST /apikeys/v1.
type APIKeyRequest struct {
	Name        *string  `json:"name"`
	Permissions []string `json:"permissions"`
	// EventTypes, when given, are the only event types the key may send.
	EventTypes []string `json:"eventTypes"`
	// ExpiresAt is an ISO-8601 date-time or epoch milliseconds; absent or
	// null: never.
	ExpiresAt json.RawMessage `json:"expiresAt"`
}

// APIKey is an API key in an answer. Key is only ever set in the answer
// to its creation; the hash is never shown.
type APIKey struct {
	ID                string   `json:"id"`
	Key               string   `json:"key,omitempty"`
	Name              string   `json:"name"`
	Permissions       []string `json:"permissions"`
	EventTypes        []string `json:"eventTypes,omitempty"`
	ExpiresAt         *int64   `json:"expiresAt,omitempty"`
	CreatedBy         string   `json:"createdBy"`
	CreationTimestamp int64    `json:"creationTimestamp"`
	LastUsedTimestamp *int64   `json:"lastUsedTimestamp,omitempty"`
}

// ToDomain converts a create request into a key, not yet validated; it
// fails with EINVALID naming expiresAt when that is not a time.
func (r APIKeyRequest) ToDomain() (dispatcher.APIKey, error) {
	k := dispatcher.APIKey{Name: value(r.Name), Permissions: r.Permissions, EventTypes: r.EventTypes}
	if len(r.ExpiresAt) > 0 && string(r.ExpiresAt) != "null" {
		t, err := ParseTimestamp(r.ExpiresAt)
		if err != nil {
			return k, dispatcher.Errorf(dispatcher.EINVALID, "expiresAt: %v", err)
		}
		k.Expires = t
	}
	return k, nil
}

// FromAPIKey converts a key for an answer; key is the key itself, given
// only when answering its creation, "" otherwise.
func FromAPIKey(k dispatcher.APIKey, key string) APIKey {
	return APIKey{ID: k.ID, Key: key, Name: k.Name, Permissions: NonNil(k.Permissions), EventTypes: k.EventTypes,
		ExpiresAt: optionalMillis(k.Expires), CreatedBy: k.CreatedBy, CreationTimestamp: k.Created.UnixMilli(),
		LastUsedTimestamp: optionalMillis(k.LastUsed)}
}
