package dispatcher

import "time"

// Function kinds.
const (
	FunctionHTTP     = "http"     // called with an HTTP POST to URL
	FunctionTemporal = "temporal" // run as a child workflow named Name on TaskQueue
)

// Function is a named task function that task actions run.
type Function struct {
	ID        string
	Name      string // unique; what task actions name in functionName
	Kind      string
	URL       string            // http
	Timeout   time.Duration     // http: per call
	Secret    string            // http: signs calls with HMAC-SHA256; never shown
	Headers   map[string]string // http: sent with every call
	TaskQueue string            // temporal
	Created   time.Time
	Updated   time.Time
}
