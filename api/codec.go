package api

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// codecBodyBytes bounds a request to the codec endpoint: the Web UI sends
// the payloads of an event at once, and Temporal takes payloads of up to
// 2 MiB, a third more in JSON.
const codecBodyBytes = 8 << 20

// operatorsOnly refuses the principals of a tenant: the codec decrypts
// whatever it is handed with the deployment's keys, and the payloads of a
// Temporal namespace, which all tenants share, are every tenant's. Its
// users are the operators of that namespace, with tokens of no tenant.
func operatorsOnly(c *gin.Context) {
	if t := principalOf(c).Tenant; t != "" {
		abort(c, errNoPermission, "the payload codec serves every tenant's payloads: tokens of a tenant ("+t+") may not use it, only operators' (no tenant)")
	}
}

// codec answers POST /codec/encode and /codec/decode, the codec server
// protocol of Temporal's Web UI and CLI: {"payloads": [...]} in and out,
// each payload encrypted or decrypted (dispatch.PayloadCodec, served by
// the SDK's handler). Payloads the dispatcher did not encrypt decode as
// they are.
func (s *Server) codec(c *gin.Context) {
	if s.codecHandler == nil {
		abort(c, errResourceUnknown, "this process serves no payload codec")
		return
	}
	// Read here, so that a body past the limit is a 413 like any other
	// route's, not the codec handler's plain-text 400.
	body, ok := readBody(c)
	if !ok {
		return
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	// The handler answers a body it cannot read, or a payload it cannot
	// decode, in plain text: as every route's errors, in the envelope.
	w := &captured{header: http.Header{}}
	s.codecHandler.ServeHTTP(w, c.Request)
	if w.status != http.StatusOK {
		abort(c, errBodyFormat, "payloads: "+strings.TrimSpace(w.body.String()))
		return
	}
	c.Data(http.StatusOK, w.header.Get("Content-Type"), w.body.Bytes())
}

// captured holds what a handler answered.
type captured struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *captured) Header() http.Header { return w.header }

func (w *captured) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *captured) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}
