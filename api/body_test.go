package api

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/gin-gonic/gin"
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
	got := hs.must(200, "POST", "/dispatchers/v1", `{"eventType":"e","description":"\ud83d\ude00\\ud800\uFFFD�"}`)
	if got["description"] != "😀\\ud800��" {
		t.Errorf("description = %q", got["description"])
	}
}

// TestBodyCodings reads a gzip-compressed body as its content, held to
// the same limit once unpacked, and refuses a coding it cannot read by
// name: both were read as bodies that are not JSON ("must be a JSON
// object"). A byte order mark before the JSON, which Windows tools write,
// is ignored (RFC 8259 §8.1), in the admin API and at the intake.
func TestBodyCodings(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	gz := func(s string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.String()
	}
	send := func(path, coding, body string) (int, wire.Error) {
		t.Helper()
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Host, req.RemoteAddr = "localhost", "127.0.0.1:40000"
		req.Header.Set("Authorization", "Bearer "+hs.token)
		req.Header.Set("Content-Type", "application/json")
		if coding != "" {
			req.Header.Set("Content-Encoding", coding)
		}
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		var e wire.Error
		json.Unmarshal(rec.Body.Bytes(), &e)
		return rec.Code, e
	}
	for _, tt := range []struct {
		name, path, coding, body string
		status, code             int
		mention                  string
	}{
		{"gzip", "/dispatchers/v1", "gzip", gz(`{"name":"zipped","eventType":"e"}`), 200, 0, ""},
		{"x-gzip", "/dispatchers/v1", "X-Gzip", gz(`{"name":"zipped2","eventType":"e"}`), 200, 0, ""},
		{"identity", "/dispatchers/v1", "identity", `{"name":"plain","eventType":"e"}`, 200, 0, ""},
		{"byte order mark", "/dispatchers/v1", "", "\xef\xbb\xbf" + `{"name":"bom","eventType":"e"}`, 200, 0, ""},
		{"event with a byte order mark", "/events/v1", "", "\xef\xbb\xbf" + `{"type":"e","content":{}}`, 202, 0, ""},
		{"gzip event", "/events/v1", "gzip", gz(`{"type":"e","content":{}}`), 202, 0, ""},
		{"gzip past the limit once unpacked", "/dispatchers/v1", "gzip", gz(`{"name":"` + strings.Repeat("x", 8000) + `","eventType":"e"}`), 413, 24, "exceeds the limit of 4096 bytes"},
		{"not gzip", "/dispatchers/v1", "gzip", `{"name":"d","eventType":"e"}`, 400, 22, "not gzip data"},
		{"brotli", "/dispatchers/v1", "br", `{"name":"d","eventType":"e"}`, 400, 22, `Content-Encoding "br" is not supported`},
		{"brotli event", "/events/v1", "br", `{"type":"e","content":{}}`, 400, 22, `Content-Encoding "br" is not supported`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, e := send(tt.path, tt.coding, tt.body)
			if status != tt.status || e.Code != tt.code || !strings.Contains(e.Message, tt.mention) {
				t.Fatalf("answer = %d %+v, want %d code %d mentioning %q", status, e, tt.status, tt.code, tt.mention)
			}
		})
	}
	var names []string
	for _, d := range hs.must(200, "GET", "/dispatchers/v1", "")["data"].([]any) {
		names = append(names, d.(map[string]any)["name"].(string))
	}
	if got := strings.Join(names, ","); got != "zipped,zipped2,plain,bom" {
		t.Errorf("dispatchers = %s, want those of the accepted bodies alone", got)
	}
}

// TestTrailingSlashes: the roots clients call with a trailing slash
// answer with and without it; any other path with one is unknown (404,
// with the API's error body), as any other path. Before, gin redirected
// it, before authentication, to the path without the slash (301; 307 for
// a POST).
func TestTrailingSlashes(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	for _, tt := range []struct {
		method, path, token string
		status              int
	}{
		{"GET", "/dispatchers/v1/", hs.token, 200},
		{"GET", "/templates/v1/", hs.token, 200},
		{"GET", "/dispatchers/v1/", "", 401},
		{"GET", "/executions/v1/", "", 401}, // before, 404: the one root without its slash
		{"GET", "/auth/v1/me/", "", 404},
		{"POST", "/executions/v1/replays/", "", 404},
		{"GET", "/auth/v1/me/", hs.token, 404},
		{"PUT", "/dispatchers/v1/0123456789abcdef01234567/", hs.token, 404},
		{"GET", "/dispatchers/v1//", hs.token, 404},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tt.method, tt.path, nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		hs.h.ServeHTTP(rec, req)
		if rec.Code != tt.status || rec.Header().Get("Location") != "" {
			t.Errorf("%s %s: %d (Location %q), want %d", tt.method, tt.path, rec.Code, rec.Header().Get("Location"), tt.status)
		}
		if tt.status == 404 && !strings.Contains(rec.Body.String(), "no route for "+tt.method+" "+tt.path) {
			t.Errorf("%s %s: %s, want the API's error body", tt.method, tt.path, rec.Body)
		}
	}
}

// TestHeadAnsweredAsGet answers HEAD as GET without the body, which gin
// answered 405: uptime monitors probe /health so. Authentication applies
// as to a GET.
func TestHeadAnsweredAsGet(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	srv := httptest.NewServer(hs.h)
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		path, token string
		status      int
	}{
		{"/health", "", 200},
		{"/dispatchers/v1", hs.token, 200},
		{"/dispatchers/v1", "", 401},
		{"/events/v1", hs.token, 405},
	} {
		req, _ := http.NewRequest("HEAD", srv.URL+tt.path, nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != tt.status || n != 0 {
			t.Errorf("HEAD %s = %d with %d body bytes, want %d and none", tt.path, res.StatusCode, n, tt.status)
		}
		if tt.status == 200 && res.ContentLength <= 0 {
			t.Errorf("HEAD %s: Content-Length %d, want the GET body's", tt.path, res.ContentLength)
		}
	}
	// Refused, and counted, as the HEAD it was, not as a GET.
	head := httptest.NewRecorder()
	hs.h.ServeHTTP(head, httptest.NewRequest("HEAD", "/events/v1", nil))
	if !strings.Contains(head.Body.String(), "method HEAD is not allowed") {
		t.Errorf("a HEAD's 405: %s", head.Body)
	}
	metrics := httptest.NewRequest("GET", "/metrics", nil)
	metrics.Header.Set("Authorization", "Bearer "+harnessMetricsToken)
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, metrics)
	if !strings.Contains(rec.Body.String(), `dispatcher_http_requests_total{code="200",method="HEAD",route="/health"} 1`) {
		t.Errorf("the HEAD of /health is not counted as one:\n%s", rec.Body)
	}
}

// A body that does not arrive within the server's read timeout is
// answered with why, without the addresses of the connection's ends.
// Before: "read tcp 127.0.0.1:8080->127.0.0.1:47854: i/o timeout".
func TestReadBodyTimeoutNamesNoAddress(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/", func(c *gin.Context) {
		if _, ok := readBody(c); ok {
			c.Status(http.StatusNoContent)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r, ReadTimeout: 300 * time.Millisecond}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Ten bytes of the fifty it announces, then nothing.
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"a\":1234"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "did not arrive within the server's read timeout") ||
		strings.Contains(string(body), "127.0.0.1") {
		t.Errorf("%d %s, want 400 saying the body came too slowly, naming no address", res.StatusCode, body)
	}
}
