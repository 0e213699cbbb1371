package jetstream

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/dispatcherhq/dispatcher/internal/redact"
)

// ValidName reports whether n can name a stream or a consumer: at most 255
// bytes, without white space, dots, wildcards (* and >), path separators
// or other characters that cannot be printed.
func ValidName(n string) bool {
	if n == "" || len(n) > 255 {
		return false
	}
	return !strings.ContainsFunc(n, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune(".*>/\\", r)
	})
}

// ValidSubject reports whether t can be a subject, or a subject's prefix
// or tail: at most 256 bytes of dot-separated tokens, none empty, without
// wildcards or white space.
func ValidSubject(t string) bool {
	if t == "" || len(t) > 256 {
		return false
	}
	for tok := range strings.SplitSeq(t, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return false
		}
	}
	return true
}

// CheckURLs reports why urls, comma-separated, are not the URLs of a NATS
// server or cluster, each read as nats.go reads it (nats:// where it has no
// scheme). Its error never quotes a password.
func CheckURLs(urls string) error {
	for i, raw := range strings.Split(urls, ",") {
		if raw = strings.TrimSpace(raw); raw == "" {
			continue // nats.go skips an empty one
		}
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err == nil {
			err = redact.Ambiguous(raw)
		}
		switch {
		case err != nil:
			return fmt.Errorf("URL %d: %w", i+1, redact.URL(err))
		case !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme) || u.Hostname() == "":
			return fmt.Errorf("URL %d: want nats://, tls://, ws:// or wss:// and a host", i+1)
		}
	}
	return nil
}
