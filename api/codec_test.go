package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/encryption"
)

const codecUI = "https://temporal-ui.example.com"

// codecServer is the API with the real payload codec of keys (nil: no
// codec at all).
func codecServer(t *testing.T, keys *encryption.KeyRing) http.Handler {
	t.Helper()
	deps := Deps{Registry: prometheus.NewRegistry()}
	if keys != nil {
		deps.Codec = converter.NewPayloadCodecHTTPHandler(dispatch.NewPayloadCodec(keys))
	}
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048,
		CodecOrigins: []string{codecUI}}, deps)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func codecKeys(t *testing.T, id string) *encryption.KeyRing {
	t.Helper()
	k, err := encryption.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := encryption.ParseKeyRing(k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tokenWith(t *testing.T, perms ...string) string {
	t.Helper()
	tok, err := SignToken([]byte(harnessSecret), TokenClaims{Subject: "ui-user", Permissions: perms, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// payloadsJSON is the codec protocol's body for payloads.
func payloadsJSON(t *testing.T, ps ...*commonpb.Payload) string {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func codecCall(h http.Handler, method, path, token, origin, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = "localhost"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestCodecEndpoint(t *testing.T) {
	keys := codecKeys(t, "k1")
	h := codecServer(t, keys)
	encrypted, err := dispatch.DataConverter(keys).ToPayload(map[string]string{"name": "Ann"})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"name": "Ann"})
	if err != nil {
		t.Fatal(err)
	}
	decoder, encoder := tokenWith(t, PermDecodePayloads), tokenWith(t, PermEncodePayloads)

	// Decoding for a token with the permission: the payload the
	// dispatcher encrypted, and one it did not, as they were.
	rec := codecCall(h, "POST", "/codec/decode", decoder, codecUI, payloadsJSON(t, encrypted, plain))
	if rec.Code != http.StatusOK {
		t.Fatalf("decode: %d %s", rec.Code, rec.Body)
	}
	var out commonpb.Payloads
	if err := protojson.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("decode answered %s: %v", rec.Body, err)
	}
	for i, p := range out.GetPayloads() {
		if string(p.GetMetadata()["encoding"]) != "json/plain" || string(p.GetData()) != `{"name":"Ann"}` {
			t.Errorf("payload %d decoded to %q %q", i, p.GetMetadata(), p.GetData())
		}
	}
	if len(out.GetPayloads()) != 2 {
		t.Errorf("decode answered %d payloads, want 2", len(out.GetPayloads()))
	}
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != codecUI {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, codecUI)
	}

	// Encoding, then decoding what it gave.
	rec = codecCall(h, "POST", "/codec/encode", encoder, "", payloadsJSON(t, plain))
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "QW5u") { // base64 of "Ann"
		t.Fatalf("encode: %d %s", rec.Code, rec.Body)
	}
	if err := protojson.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	var back map[string]string
	if err := dispatch.DataConverter(keys).FromPayload(out.GetPayloads()[0], &back); err != nil || back["name"] != "Ann" {
		t.Errorf("what encode gave decodes to %v, %v", back, err)
	}

	// Refusals.
	for _, tt := range []struct {
		name, path, token string
		status, code      int
	}{
		{"no token", "/codec/decode", "", http.StatusUnauthorized, 104},
		{"a bad token", "/codec/decode", "not-a-token", http.StatusUnauthorized, 117},
		{"no permission", "/codec/decode", tokenWith(t, PermViewExecutions), http.StatusForbidden, 10},
		{"encode only", "/codec/decode", encoder, http.StatusForbidden, 10},
		{"decode only", "/codec/encode", decoder, http.StatusForbidden, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := codecCall(h, "POST", tt.path, tt.token, codecUI, payloadsJSON(t, encrypted))
			var body struct{ Code int }
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tt.status || body.Code != tt.code {
				t.Fatalf("%d %s, want %d code %d", rec.Code, rec.Body, tt.status, tt.code)
			}
			if strings.Contains(rec.Body.String(), "Ann") || strings.Contains(rec.Body.String(), "json/plain") {
				t.Errorf("a refusal shows the payload: %s", rec.Body)
			}
			// The browser may read the refusal, to say why.
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != codecUI {
				t.Errorf("Access-Control-Allow-Origin = %q on a refusal", got)
			}
		})
	}

	// A payload under a key the ring lacks: 400 naming the key.
	other, err := dispatch.DataConverter(codecKeys(t, "k0")).ToPayload("x")
	if err != nil {
		t.Fatal(err)
	}
	// Both in the error envelope of every route, not the codec handler's
	// plain text.
	refused := func(body string) (code int, message string) {
		rec := codecCall(h, "POST", "/codec/decode", decoder, "", body)
		var e struct {
			Code    int
			Message string
		}
		if rec.Code != http.StatusBadRequest || json.Unmarshal(rec.Body.Bytes(), &e) != nil {
			t.Errorf("%s: %d %s, want a 400 in the error envelope", body, rec.Code, rec.Body)
		}
		return e.Code, e.Message
	}
	if code, msg := refused(payloadsJSON(t, other)); code != 22 || !strings.Contains(msg, `encrypted with key "k0"`) {
		t.Errorf("a payload under an unknown key: code %d, %q", code, msg)
	}
	if code, msg := refused(`{"payloads": 7}`); code != 22 || !strings.HasPrefix(msg, "payloads: ") {
		t.Errorf("a malformed body: code %d, %q", code, msg)
	}

	// A body past the limit, sent chunked (no Content-Length to refuse it
	// by at once): 413 like any route's. Before, the codec's plain-text 400.
	req := httptest.NewRequest("POST", "/codec/decode", io.MultiReader(strings.NewReader(`{"payloads":[`), strings.NewReader(strings.Repeat(" ", codecBodyBytes))))
	req.Host, req.ContentLength = "localhost", -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+decoder)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var refusal struct{ Code int }
	if err := json.Unmarshal(rec.Body.Bytes(), &refusal); rec.Code != http.StatusRequestEntityTooLarge || err != nil || refusal.Code != 24 {
		t.Errorf("a body past the limit: %d %.200s", rec.Code, rec.Body)
	}

	// Without a codec, the routes say so.
	rec = codecCall(codecServer(t, nil), "POST", "/codec/decode", decoder, "", payloadsJSON(t, plain))
	if rec.Code != http.StatusNotFound {
		t.Errorf("no codec: %d %s", rec.Code, rec.Body)
	}
}

func TestCodecCORS(t *testing.T) {
	h := codecServer(t, codecKeys(t, "k1"))
	for _, tt := range []struct {
		origin string
		allow  bool
	}{
		{codecUI, true},
		{"HTTPS://Temporal-UI.example.com", true},
		{"https://evil.example.com", false},
		{"https://temporal-ui.example.com.evil.example", false},
		{"", false},
	} {
		for _, path := range []string{"/codec/decode", "/codec/encode"} {
			req := httptest.NewRequest(http.MethodOptions, path, nil)
			req.Host = "localhost"
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			req.Header.Set("Access-Control-Request-Method", "POST")
			// As the Web UI 2.42 asks after an OIDC sign-in.
			req.Header.Set("Access-Control-Request-Headers", "authorization,authorization-extras,content-type,x-namespace")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			allowed := rec.Header().Get("Access-Control-Allow-Origin")
			if rec.Code != http.StatusOK || (allowed != "") != tt.allow {
				t.Errorf("preflight of %s from %q: %d, Allow-Origin %q; want allowed %v", path, tt.origin, rec.Code, allowed, tt.allow)
			}
			if tt.allow {
				headers := strings.Split(strings.ToLower(rec.Header().Get("Access-Control-Allow-Headers")), ", ")
				for _, want := range []string{"authorization", "authorization-extras", "content-type", "x-namespace"} {
					if !slices.Contains(headers, want) {
						t.Errorf("Access-Control-Allow-Headers %q lacks %s", headers, want)
					}
				}
				if rec.Header().Get("Access-Control-Allow-Origin") != strings.ToLower(tt.origin) {
					t.Errorf("Allow-Origin %q, want the origin", allowed)
				}
			}
			if !strings.Contains(rec.Header().Get("Vary"), "Origin") {
				t.Errorf("no Vary: Origin")
			}
		}
	}
}
