// Package redact keeps passwords out of errors that quote a URL. It is a
// leaf of the standard library: the producer package, which other
// services import, uses it too.
package redact

import (
	"errors"
	"net/url"
	"strings"
)

// URL returns the error of a connection that could not begin: err,
// unless it holds a *url.Error, which quotes the broker's URL, password
// and all. That is replaced whole (whatever wraps it quotes the URL too)
// by a copy showing the URL without its user information, path or query,
// so that callers may log it and report it (the sources on /readyz).
func URL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	why := ue.Err
	if strings.Contains(why.Error(), `"`) {
		// It quotes a piece of the URL (a bad escape, a port), which may
		// be a piece of the password.
		why = errors.New(badURL)
	}
	return &url.Error{Op: ue.Op, URL: redactedURL(ue.URL), Err: why}
}

// Ambiguous returns an error, quoting nothing of raw, when raw parses but
// most likely holds a password with an unencoded #, / or @: part of it
// would then be taken for the host, and the rest for a fragment or a path
// with an @ in it, which no broker URL has. Dialed, such a URL went to a
// host named after a piece of the password, and was logged with the rest
// of it in plain sight.
func Ambiguous(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Fragment == "" && !strings.Contains(u.EscapedPath()+u.RawQuery, "@") {
		return nil
	}
	return &url.Error{Op: "parse", URL: redactedURL(raw), Err: errors.New(badURL)}
}

// badURL is why a URL quoting the password in its error does not parse.
const badURL = "not a valid URL (percent-encode a password's special characters: % as %25, / as %2F, @ as %40, # as %23)"

// redactedURL shows the scheme and the host of raw, which may not parse.
func redactedURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(hidden)"
	}
	user := ""
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		user, rest = "xxxxx@", rest[i+1:]
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if strings.ContainsAny(rest, "= \t;") {
		// No host: a key=value connection string (password=…) taken
		// for one.
		rest = "(hidden)"
	} else if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.HasSuffix(rest, "]") && strings.Trim(rest[i+1:], "0123456789") != "" {
		// No port: a user and a password that url.Parse took for the
		// host, the rest of the URL cut off at an unencoded # in the
		// password ("amqp://guest:s3cret#x@host" fails as
		// "amqp://guest:s3cret").
		rest = "(hidden)"
	}
	return scheme + "://" + user + rest
}
