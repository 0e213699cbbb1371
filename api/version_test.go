package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// TestIfMatch checks the lost-update guard of the configuration: an ETag
// on every read and write of a dispatcher, a template or a function, and
// If-Match making a change apply only to the version the client read.
func TestIfMatch(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	tmpl := hs.seed()
	for _, tc := range []struct {
		what, path, create, change string
	}{
		{"dispatcher", "/dispatchers/v1", `{"name":"d","eventType":"e"}`, `{"description":"changed"}`},
		{"template", "/templates/v1", `{"name":"t","subject":"s","text":"x"}`, `{"subject":"changed"}`},
		{"function", "/functions/v1", `{"name":"f","url":"http://127.0.0.1:9/f"}`, `{"timeoutSeconds":7}`},
	} {
		t.Run(tc.what, func(t *testing.T) {
			// send answers want and returns the response's ETag.
			send := func(want int, method, path, body string, headers ...string) (string, map[string]any) {
				t.Helper()
				rec := hs.send(hs.token, method, path, body, headers...)
				out := hs.decode(rec, method, path)
				if rec.Code != want {
					t.Fatalf("%s %s %v = %d %v, want %d", method, path, headers, rec.Code, out, want)
				}
				return rec.Header().Get("ETag"), out
			}
			created, body := send(200, "POST", tc.path, tc.create)
			id := body["id"].(string)
			if want := `"` + strconv.FormatInt(int64(body["updateTimestamp"].(float64)), 10) + `"`; created != want {
				t.Fatalf("ETag of the created %s = %s, want its updateTimestamp %s", tc.what, created, want)
			}
			one := tc.path + "/" + id
			if got, _ := send(200, "GET", one, ""); got != created {
				t.Fatalf("GET: ETag %s, want %s", got, created)
			}

			for _, stale := range []string{`"1"`, "W/" + created, created + "x", "garbage", "", " "} {
				_, refused := send(412, "PUT", one, tc.change, "If-Match", stale)
				wantError(t, 412, refused, 412, 412, "If-Match")
			}
			// The tag without its quotes: the answer says how it is written.
			_, refused := send(412, "PUT", one, tc.change, "If-Match", strings.Trim(created, `"`))
			wantError(t, 412, refused, 412, 412, "an entity tag is quoted, as the ETag header gives it: "+created)
			// The tag made weak: the answer says to drop W/.
			_, refused = send(412, "PUT", one, tc.change, "If-Match", "W/"+created)
			wantError(t, 412, refused, 412, 412, "a weak tag never matches; send "+created+", without W/")
			if got, _ := send(200, "GET", one, ""); got != created {
				t.Fatalf("a refused change moved the ETag: %s, want %s", got, created)
			}
			// One of a list matches; headers given twice are one list.
			changed, _ := send(200, "PUT", one, tc.change, "If-Match", `"1", `+created)
			if changed == "" || changed == created {
				t.Fatalf("ETag after a change = %q, want a new one (was %s)", changed, created)
			}
			if got, _ := send(200, "GET", one, ""); got != changed {
				t.Fatalf("GET after the change: ETag %s, want %s", got, changed)
			}
			send(412, "PUT", one, tc.change, "If-Match", created)
			again, _ := send(200, "PUT", one, tc.change, "If-Match", `"1"`, "If-Match", changed)
			star, _ := send(200, "PUT", one, tc.change, "If-Match", "*")
			plain, _ := send(200, "PUT", one, tc.change) // an Extra Horizon client
			if again == changed || star == again || plain == star {
				t.Fatalf("ETags %s, %s, %s, %s: want a new one for each change", changed, again, star, plain)
			}

			send(412, "DELETE", one, "", "If-Match", again)
			send(200, "GET", one, "")
			send(200, "DELETE", one, "", "If-Match", plain)
			send(404, "PUT", one, tc.change, "If-Match", plain)
		})
	}

	t.Run("actions change their dispatcher's version", func(t *testing.T) {
		created := hs.send(hs.token, "POST", "/dispatchers/v1", fmt.Sprintf(`{"name":"with-actions","eventType":"e","actions":[{"type":"mail","name":"m","recipients":{"to":["a@example.com"]},"templateId":%q}]}`, tmpl))
		body := hs.decode(created, "POST", "/dispatchers/v1")
		id, v0 := body["id"].(string), created.Header().Get("ETag")
		actions := "/dispatchers/v1/" + id + "/actions"
		check := func(rec *http.Response, want int) string {
			t.Helper()
			if rec.StatusCode != want {
				t.Fatalf("status %d, want %d", rec.StatusCode, want)
			}
			return rec.Header.Get("ETag")
		}
		send := func(method, path, body, ifMatch string) *http.Response {
			return hs.send(hs.token, method, path, body, "If-Match", ifMatch).Result()
		}
		v1 := check(send("POST", actions, `{"type":"task","name":"t","functionName":"erase"}`, v0), 200)
		if got := hs.send(hs.token, "GET", "/dispatchers/v1/"+id, "").Header().Get("ETag"); v1 == v0 || got != v1 {
			t.Fatalf("after adding an action: ETag %s, GET %s; was %s", v1, got, v0)
		}
		actionID := body["actions"].([]any)[0].(map[string]any)["id"].(string)
		check(send("PUT", actions+"/"+actionID, `{"name":"renamed"}`, v0), 412)
		check(send("POST", actions, `{"type":"task","name":"u","functionName":"erase"}`, v0), 412)
		v2 := check(send("PUT", actions+"/"+actionID, `{"name":"renamed"}`, v1), 200)
		check(send("DELETE", actions+"/"+actionID, "", v1), 412)
		check(send("PUT", "/dispatchers/v1/"+id, `{"description":"x"}`, v1), 412)
		v3 := check(send("DELETE", actions+"/"+actionID, "", v2), 200)
		if v3 == v2 || v2 == v1 {
			t.Fatalf("ETags %s, %s, %s: want a new one for each change", v1, v2, v3)
		}
		check(send("DELETE", "/dispatchers/v1/"+id, "", v3), 200)
	})
}
