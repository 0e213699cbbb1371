package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// limitBody refuses bodies over limit bytes with 413, before any handler
// reads them, and then drains what the client sends of them (see drain).
func limitBody(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		body := c.Request.Body
		if c.Request.ContentLength > limit {
			abort(c, errBodyTooLarge, fmt.Sprintf("request body is %d bytes; the limit is %d bytes", c.Request.ContentLength, limit))
			drain(c, body)
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, body, limit)
		if !decoded(c, limit) {
			drain(c, body)
			return
		}
		c.Next()
		if c.Writer.Status() == http.StatusRequestEntityTooLarge {
			drain(c, body) // a chunked body that went past the limit
		}
	}
}

// decoded replaces a gzip-compressed request body (Content-Encoding: gzip,
// as log shippers and some SDKs send) by its content, held to limit bytes
// too: a small body can unpack to gigabytes. It refuses any other coding,
// which would otherwise be read as a body that is not JSON; on refusal it
// has answered.
func decoded(c *gin.Context, limit int64) bool {
	switch coding := strings.ToLower(strings.TrimSpace(c.GetHeader("Content-Encoding"))); coding {
	case "", "identity":
		return true
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(c.Request.Body)
		if err != nil {
			abort(c, errBodyFormat, "the request body is not gzip data, as its Content-Encoding says: "+err.Error())
			return false
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, zr, limit)
		c.Request.Header.Del("Content-Encoding")
		return true
	default:
		abort(c, errBodyFormat, fmt.Sprintf("Content-Encoding %q is not supported: send the body uncompressed, or compressed with gzip", coding))
		return false
	}
}

// Bounds of drain: past them the connection is closed on the client.
const (
	maxDrainBytes = 4 << 20
	drainTimeout  = 10 * time.Second
)

// drain reads and discards the rest of a refused body, up to maxDrainBytes
// and for drainTimeout at most. Many clients (Python's urllib, most
// HTTP/1.1 clients without Expect: 100-continue) send the whole body before
// they read the answer; closing the connection on unread data resets it,
// and they see a broken pipe instead of the 413. A client that asked for
// 100-continue has sent nothing yet and gets its answer at once.
func drain(c *gin.Context, body io.Reader) {
	r := c.Request
	if r.ProtoMajor != 1 || body == nil || body == http.NoBody || r.ContentLength > maxDrainBytes ||
		strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		return
	}
	// Not every ResponseWriter supports deadlines (httptest's does not);
	// the server's ReadTimeout still bounds the read then.
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.CopyN(io.Discard, body, maxDrainBytes)
}

// readBody reads the whole request body; on failure it answers and
// returns false.
func readBody(c *gin.Context) ([]byte, bool) {
	body, err := io.ReadAll(c.Request.Body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		abort(c, errBodyTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", tooLarge.Limit))
		return nil, false
	case err != nil:
		abort(c, errBodyFormat, "could not read the request body: "+readError(err))
		return nil, false
	}
	return body, true
}

// readError says why a body could not be read, without the addresses of
// the connection's ends that a network error quotes (the server's own,
// behind a proxy): "read tcp 10.0.3.7:8080->…: i/o timeout" was the
// message a client that sent too slowly got.
func readError(err error) string {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "it did not arrive within the server's read timeout"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err.Error()
	}
	return err.Error()
}

// bindJSON decodes the request body, a JSON object, into v. Unknown keys
// are ignored, as Extra Horizon clients send extra ones, but for one that
// nearly spells a field or names one again (wire.CheckKeys). On failure it
// answers with the error that names the problem and returns false:
// 13 for an empty body, 22 for one that is not a JSON object (or not
// text, see notText), 15 for a field of the wrong type.
func bindJSON(c *gin.Context, v any) bool { return bindJSONOf(c, v, false) }

// bindJSONOf is bindJSON; with loneSurrogates, a body that holds an
// escaped surrogate alone is read too, for a body stored nowhere that
// carries an event, which the intake keeps as it came (a template's dry
// run).
func bindJSONOf(c *gin.Context, v any, loneSurrogates bool) bool {
	body, ok := readBody(c)
	if !ok {
		return false
	}
	body = bytes.TrimSpace(wire.TrimBOM(body))
	if len(body) == 0 || string(body) == "null" {
		abort(c, errEmptyBody, "the request body is empty; a JSON object is expected")
		return false
	}
	if body[0] != '{' {
		abort(c, errBodyFormat, "the request body must be a JSON object")
		return false
	}
	if i := wire.NotText(body); i >= 0 && !(loneSurrogates && body[i] == '\\') {
		if body[i] == '\\' {
			abort(c, errBodyFormat, fmt.Sprintf("the request body holds %s (at byte %d), half of a surrogate pair alone: no character", body[i:i+6], i))
		} else {
			abort(c, errBodyFormat, fmt.Sprintf("the request body is not UTF-8 (at byte %d)", i))
		}
		return false
	}
	err := json.Unmarshal(body, v)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var field *dispatcher.Error // a field's own decoding refused its value
	switch {
	case err == nil:
		if err := wire.CheckKeys(body, v); err != nil {
			fail(c, err)
			return false
		}
		return true
	case errors.As(err, &field):
		fail(c, field)
	case errors.As(err, &syntax):
		abort(c, errBodyFormat, fmt.Sprintf("the request body is not valid JSON: %v (at byte %d)", syntax, syntax.Offset))
	case errors.As(err, &typ) && typ.Field != "":
		abort(c, errFieldFormat, wire.TypeErrorIn(body, typ))
	default:
		abort(c, errBodyFormat, "the request body is not valid JSON: "+err.Error())
	}
	return false
}
