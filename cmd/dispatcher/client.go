package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/redact"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/spf13/cobra"
)

// The support commands (executions, replay) talk to a running
// dispatcher's API, not to Temporal or the database, so they need only a
// URL and a token: --url and --token, or DISPATCHER_URL and
// DISPATCHER_TOKEN. No server reads these, so they are not in the process
// settings.
const defaultAPIURL = "http://127.0.0.1:8080"

// apiClient calls the dispatcher's HTTP API.
type apiClient struct {
	base  string
	shown string // base without its password, for what the CLI prints
	token string
	http  *http.Client
}

// clientFlags adds --url and --token to cmd and returns a function that
// builds the client from them, falling back to the environment. The token
// has no flag default, so that help output never shows it.
func clientFlags(cmd *cobra.Command, getenv func(string) string) func() (*apiClient, error) {
	var base, token string
	cmd.PersistentFlags().StringVar(&base, "url", "", "dispatcher API base URL (env DISPATCHER_URL, default http://127.0.0.1:8080)")
	cmd.PersistentFlags().StringVar(&token, "token", "", "bearer token (env DISPATCHER_TOKEN)")
	return func() (*apiClient, error) {
		setting := "--url"
		if base == "" {
			base, setting = getenv("DISPATCHER_URL"), "DISPATCHER_URL"
		}
		if base == "" {
			base = defaultAPIURL
		}
		if token == "" {
			token = getenv("DISPATCHER_TOKEN")
		}
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Not quoted whole: it may hold a password (before, printed).
			return nil, fmt.Errorf("%s %q: want an absolute http(s) URL, such as http://127.0.0.1:8080", setting, redactedValue("DISPATCHER_URL", base))
		}
		return &apiClient{base: strings.TrimRight(base, "/"), shown: redactedValue("DISPATCHER_URL", strings.TrimRight(base, "/")), token: token,
			http: &http.Client{Timeout: clientTimeout}}, nil
	}
}

// clientTimeout bounds a request of the CLI: past the server's write
// timeout (2 minutes), which ends its slowest answers (the failures
// summary, a bulk replay's count: 100 s). Before, a minute: the CLI gave
// up on them while the server still worked.
const clientTimeout = 2*time.Minute + 10*time.Second

// apiError is an error answer of the API.
type apiError struct {
	Status int
	Body   wire.Error
}

func (e *apiError) Error() string {
	if e.Body.Name == "" && e.Status == http.StatusNotFound {
		// Every 404 of the dispatcher's API has a body: this is another
		// server.
		return fmt.Sprintf("the API answered %d, without the dispatcher's error body: is --url (DISPATCHER_URL) the dispatcher's API?", e.Status)
	} else if e.Body.Name == "" {
		return fmt.Sprintf("the API answered %d", e.Status)
	}
	if e.Status == http.StatusNotFound && strings.HasPrefix(e.Body.Message, wire.NoRoute) {
		// The route came after the server's release (sync's batch).
		return fmt.Sprintf("%s (HTTP %d): %s: the server is older than this command; upgrade it first", e.Body.Name, e.Status, e.Body.Message)
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Body.Name, e.Status, e.Body.Message)
}

// refused reports whether err is the API's 403: the token lacks the
// permission.
func refused(err error) bool {
	var e *apiError
	return errors.As(err, &e) && e.Status == http.StatusForbidden
}

// rateLimitRetries bounds how often a request that the API refused for
// its rate limit (429, before doing anything) is sent again, after the
// Retry-After it names: a sync of hundreds of changes stopped halfway.
const rateLimitRetries = 5

// do sends a request and decodes a 2xx JSON answer into out (when not
// nil); it returns the raw answer too, for --json.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body, out any) ([]byte, error) {
	raw, _, err := c.doWith(ctx, method, path, query, nil, body, out)
	return raw, err
}

// doWith is do with the request's headers set from header; it returns
// the answer's headers too.
func (c *apiClient) doWith(ctx context.Context, method, path string, query url.Values, header http.Header, body, out any) ([]byte, http.Header, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, nil, err
		}
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for attempt := 0; ; attempt++ {
		raw, res, err := c.send(ctx, method, u, header, b)
		if err != nil {
			return nil, nil, err
		}
		if res.StatusCode == http.StatusTooManyRequests && attempt < rateLimitRetries {
			wait, _ := strconv.Atoi(res.Header.Get("Retry-After"))
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(time.Duration(min(max(wait, 1), 60)) * time.Second):
				continue
			}
		}
		if res.StatusCode >= 300 {
			e := &apiError{Status: res.StatusCode}
			_ = json.Unmarshal(raw, &e.Body)
			if e.Body.Code == 104 {
				e.Body.Message += " (pass --token or set DISPATCHER_TOKEN)"
			}
			return raw, res.Header, e
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				if !json.Valid(raw) { // another server: a page, a UI (before, "invalid character '<'" alone)
					return raw, res.Header, fmt.Errorf("the API answered %d with %s, not the dispatcher's JSON: is --url (DISPATCHER_URL) the dispatcher's API?",
						res.StatusCode, cmp.Or(res.Header.Get("Content-Type"), "a body of no type"))
				}
				return raw, res.Header, fmt.Errorf("the API answered something unexpected: %w", err)
			}
		}
		return raw, res.Header, nil
	}
}

// send sends one request with body b (JSON, when not nil) and reads the
// answer.
func (c *apiClient) send(ctx context.Context, method, u string, header http.Header, b []byte) ([]byte, *http.Response, error) {
	var r io.Reader
	if b != nil {
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if b != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		err = redact.URL(err) // it quotes the URL, a token in its query with it
		// Where no API answered, how to name another; not for a TLS
		// error, a timeout or a Ctrl-C.
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, nil, fmt.Errorf("is the dispatcher API at %s up? (--url or DISPATCHER_URL names another) %w", c.shown, err)
		}
		return nil, nil, fmt.Errorf("calling the dispatcher API at %s: %w", c.shown, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return raw, res, err
}

// printJSON writes an API answer indented.
func printJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// timeArg turns a --from/--to value into what the API takes: a duration
// such as 24h means that long ago; epoch milliseconds and ISO-8601
// date-times pass through.
func timeArg(name, v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	if d, err := parseDuration(v); err == nil { // 24h, 7d
		if d < 0 {
			// "-5m" read as five minutes ahead matched nothing, silently.
			return "", fmt.Errorf("--%s %q: a duration counts back from now: write %s", name, v, strings.TrimPrefix(v, "-"))
		}
		return now.Add(-d).UTC().Format(time.RFC3339), nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms > 0 && ms < 100_000_000_000 { // before 1973: seconds, surely
			return "", fmt.Errorf("--%s %q: epoch milliseconds, and this is %s; seconds? write %s000", name, v, time.UnixMilli(ms).UTC().Format(time.RFC3339), v)
		}
		return v, nil
	}
	if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return v, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.Format(time.RFC3339), nil // its midnight, UTC
	}
	if _, err := time.Parse("2006-01-02T15:04:05.999999999", v); err == nil {
		return "", fmt.Errorf("--%s %q: a date-time needs its time zone: %sZ for UTC, or an offset (+01:00)", name, v, v)
	}
	return "", fmt.Errorf("--%s %q: want a duration ago (24h, 7d), epoch milliseconds, an ISO-8601 date-time with its time zone or a date (2026-12-04, from midnight UTC)", name, v)
}

// jsonTime is timeArg's value as a JSON body field: a number for epoch
// milliseconds, a string otherwise, nothing for none.
func jsonTime(v string) json.RawMessage {
	if v == "" {
		return nil
	}
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return json.RawMessage(v)
	}
	b, _ := json.Marshal(v)
	return b
}

// millisTime formats epoch milliseconds for tables.
func millisTime(ms *int64) string {
	if ms == nil || *ms == 0 {
		return "-"
	}
	return time.UnixMilli(*ms).UTC().Format("2006-01-02 15:04:05")
}
