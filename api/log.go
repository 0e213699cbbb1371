package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
)

type loggerKey struct{}

// logger returns the request's logger, which carries the request id;
// requestLog puts it in every request's context.
func logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// requestIDKey is the gin context key of the request's id.
type requestIDKey struct{}

// requestLog gives every request an id (X-Request-Id, taken from the client
// when it sends a sane one), a logger carrying it, and one log line when it
// ends: debug when it succeeded, info for a client error, warn for a server
// error. Headers and bodies are never logged: they carry tokens and
// secrets.
func (s *Server) requestLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader("X-Request-Id")
		if !saneRequestID(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Header("X-Request-Id", id)
		c.Set(requestIDKey{}, id)
		c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), loggerKey{}, s.log.With("request_id", id)))
		start := time.Now()
		c.Next()
		level := slog.LevelDebug
		switch status := c.Writer.Status(); {
		case status >= 500:
			level = slog.LevelWarn
		case status >= 400:
			level = slog.LevelInfo
		}
		attrs := []any{"method", method(c.Request), "route", c.FullPath(), "status", c.Writer.Status(),
			"duration_ms", time.Since(start).Milliseconds()}
		if c.FullPath() == "" {
			// No route: the path asked for (not its query, which may hold
			// a token), bounded. Before, route="" said nothing of what a
			// misrouted client or probe asked.
			path := c.Request.URL.EscapedPath() // ASCII
			if len(path) > 256 {
				path = path[:256] + "…"
			}
			attrs = append(attrs, "path", path)
		}
		if level > slog.LevelDebug {
			// Who was refused, or failed: the request id is the client's
			// choice, and a refused request leaves no audit record.
			attrs = append(attrs, "client_addr", c.RemoteIP())
			if p := principalOf(c); p.Subject != "" {
				attrs = append(attrs, "subject", p.Subject, "tenant", p.Tenant)
			}
		}
		logger(c.Request.Context()).Log(c.Request.Context(), level, "request", attrs...)
	}
}

// saneRequestID reports whether a client's X-Request-Id can be kept: up
// to 64 printable ASCII characters. It goes into logs and the audit
// trail, whose column PostgreSQL refuses invalid UTF-8 in: a client's
// odd header must not fail its write.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
