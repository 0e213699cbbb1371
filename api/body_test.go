package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/wire"
)

// TestOversizeBodyAnswered413 is a client that writes its whole oversize
// body before it reads the answer, as Python's urllib and HTTP/1.1 clients
// without Expect: 100-continue do. It must read the 413, not a reset
// connection, and the connection must serve the next request.
func TestOversizeBodyAnswered413(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	srv := httptest.NewServer(hs.h)
	t.Cleanup(srv.Close)

	big := bytes.Repeat([]byte("x"), 2<<20) // far past the limits and what the server discards itself (256 KiB)
	for _, tt := range []struct {
		name, path string
		chunked    bool
		mention    string
	}{
		{"event with Content-Length", "/events/v1", false, "the limit is 2048 bytes"},
		{"event chunked", "/events/v1", true, "exceeds the limit of 2048 bytes"},
		{"admin body with Content-Length", "/dispatchers/v1", false, "the limit is 4096 bytes"},
		{"admin body chunked", "/dispatchers/v1", true, "exceeds the limit of 4096 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// A small send buffer, so that the body cannot hide in the
			// kernel: the write returns only once the server has read it.
			if err := conn.(*net.TCPConn).SetWriteBuffer(32 << 10); err != nil {
				t.Fatal(err)
			}
			if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
				t.Fatal(err)
			}
			var req bytes.Buffer
			fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n", tt.path, hs.token)
			if tt.chunked {
				fmt.Fprintf(&req, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big)
			} else {
				fmt.Fprintf(&req, "Content-Length: %d\r\n\r\n%s", len(big), big)
			}
			if _, err := conn.Write(req.Bytes()); err != nil {
				t.Fatalf("writing the whole request: %v (the server closed the connection on the unread body)", err)
			}
			r := bufio.NewReader(conn)
			res, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			var body wire.Error
			err = json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusRequestEntityTooLarge || body.Code != errBodyTooLarge.Code || !strings.Contains(body.Message, tt.mention) {
				t.Fatalf("answer = %d %+v (%v), want 413 code 24 mentioning %q", res.StatusCode, body, err, tt.mention)
			}

			// The body was read to its end: the connection serves on.
			fmt.Fprintf(conn, "GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
			res, err = http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("the next request on the connection: %v", err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("the next request on the connection = %d, want 200", res.StatusCode)
			}
		})
	}
}

// TestBodyNotUTF8 refuses a body with a byte that is not UTF-8, or an
// escaped surrogate that is not half of a pair, in any field of any
// request: encoding/json decodes both to U+FFFD, which was stored in the
// client's place ("u8\xff" became "u8�", "a\xff@b.co" an address of
// another). A pair, an escaped backslash before "u" and U+FFFD itself
// are text.
func TestBodyNotUTF8(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	tmpl := hs.seed()
	id := hs.must(200, "POST", "/dispatchers/v1", `{"name":"d","eventType":"e"}`)["id"].(string)
	for _, tt := range []struct{ method, path, body, mention string }{
		{"POST", "/dispatchers/v1", "{\"eventType\":\"u8\xff\"}", "not UTF-8 (at byte 16)"},
		{"POST", "/dispatchers/v1", "{\"eventType\":\"e\",\"name\":\"\xc3\"}", "not UTF-8"},
		{"POST", "/dispatchers/v1", "{\"eventType\":\"e\",\"description\":\"\xed\xa0\x80\"}", "not UTF-8"}, // a surrogate, UTF-8 encoded
		{"PUT", "/dispatchers/v1/" + id, "{\"tags\":[\"\xff\"]}", "not UTF-8"},
		{"POST", "/dispatchers/v1/" + id + "/actions", "{\"type\":\"mail\",\"templateId\":\"" + tmpl + "\",\"recipients\":{\"to\":[\"a\xff@b.co\"]}}", "not UTF-8"},
		{"POST", "/dispatchers/v1/" + id + "/actions", "{\"type\":\"task\",\"functionName\":\"erase\",\"data\":{\"k\":\"\xff\"}}", "not UTF-8"},
		{"POST", "/dispatchers/v1", `{"eventType":"\ud800"}`, `\ud800 (at byte 14)`},
		{"POST", "/dispatchers/v1", `{"eventType":"\uDC00x"}`, `\uDC00`},
		{"POST", "/dispatchers/v1", `{"eventType":"\ud83d\u0041"}`, `\ud83d`},
		{"POST", "/dispatchers/v1", `{"eventType":"e","name":"\ud800`, `\ud800`},
		{"POST", "/dispatchers/v1/" + id + "/actions", `{"type":"task","functionName":"erase","data":{"k":"\ud800"}}`, `\ud800`},
		{"POST", "/templates/v1", `{"name":"t\udfff","subject":"s","text":"t"}`, `\udfff`},
		{"POST", "/functions/v1", "{\"name\":\"f\xff\",\"url\":\"http://127.0.0.1:9/f\"}", "not UTF-8"},
		{"POST", "/apikeys/v1", "{\"name\":\"k\xff\",\"permissions\":[\"VIEW_DISPATCHERS\"]}", "not UTF-8"},
	} {
		code, body := hs.do(tt.method, tt.path, tt.body)
		wantError(t, code, body, 400, 22, tt.mention)
	}
	if n := len(hs.must(200, "GET", "/dispatchers/v1", "")["data"].([]any)); n != 1 {
		t.Errorf("%d dispatchers after the refusals, want the first alone", n)
	}
	got := hs.must(200, "POST", "/dispatchers/v1", `{"eventType":"\ud83d\ude00\\ud800\uFFFD�"}`)
	if got["eventType"] != "😀\\ud800��" {
		t.Errorf("eventType = %q", got["eventType"])
	}
}
