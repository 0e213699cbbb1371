package wire

// Me is GET /auth/v1/me: who the request's token or API key speaks for
// and what it may do, so that a client (the console) offers only what
// the server will allow. The server checks every request all the same.
type Me struct {
	Subject string `json:"subject"`
	Tenant  string `json:"tenant,omitempty"`
	Kind    string `json:"kind"` // "token" (a JWT) or "apikey"
	// Name is an API key's name, which its subject does not say.
	Name        string   `json:"name,omitempty"`
	Permissions []string `json:"permissions"`
	// EventTypes, when present, are the only event types an API key may
	// send.
	EventTypes []string `json:"eventTypes,omitempty"`
	// RequestTimeoutMs is how long the server waits on a request's behalf
	// (DISPATCHER_REQUEST_TIMEOUT) before it answers 503: a client waits
	// longer than that before it gives up on an answer.
	RequestTimeoutMs int64 `json:"requestTimeoutMs,omitempty"`
}
