package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/prometheus/client_golang/prometheus"
)

// authNow is the clock of every authenticator in these tests, so expiry
// cases need no waiting.
var authNow = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef") // exactly minSecretLen
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
)

// authCase is one request against the tiny engine of newAuthEngine.
type authCase struct {
	name    string
	header  string    // the Authorization header; empty sends none
	perm    string    // the permission the route requires; PermViewDispatchers when empty
	want    wireError // the refusal expected; the zero value means 200
	reason  string    // on refusal, a part of the message, when the reason matters
	subject string    // on 200, the principal's subject; "alice" when empty
}

// newAuthEngine returns an engine with one route, GET /x, guarded by
// authenticate and require(perm), that answers with the principal it saw.
func newAuthEngine(t *testing.T, a *authenticator, perm string) *gin.Engine {
	t.Helper()
	gin.SetMode(gin.TestMode)
	e := gin.New()
	e.GET("/x", a.authenticate(), require(perm), func(c *gin.Context) {
		p := principalOf(c)
		var perms []string
		for name, ok := range p.Permissions {
			if ok {
				perms = append(perms, name)
			}
		}
		slices.Sort(perms)
		c.JSON(http.StatusOK, gin.H{"subject": p.Subject, "permissions": perms})
	})
	return e
}

// seen is what the route of newAuthEngine answers.
type seen struct {
	Subject     string   `json:"subject"`
	Permissions []string `json:"permissions"`
}

// get sends GET /x with the given Authorization header (none when empty).
func get(t *testing.T, h http.Handler, header string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Host = "localhost"
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// runAuthCases runs cases against a and checks status, code, name, that the
// message never quotes the token, and on success the subject.
func runAuthCases(t *testing.T, a *authenticator, cases []authCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			perm := tc.perm
			if perm == "" {
				perm = PermViewDispatchers
			}
			rec := get(t, newAuthEngine(t, a, perm), tc.header)
			if tc.want == (wireError{}) {
				if rec.Code != http.StatusOK {
					t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
				}
				var got seen
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatalf("decode %s: %v", rec.Body, err)
				}
				want := tc.subject
				if want == "" {
					want = "alice"
				}
				if got.Subject != want {
					t.Errorf("subject = %q, want %q", got.Subject, want)
				}
				return
			}
			assertRefused(t, rec, tc.want)
			if !strings.Contains(rec.Body.String(), tc.reason) {
				t.Errorf("body %s lacks %q", rec.Body, tc.reason)
			}
			if _, token, _ := strings.Cut(tc.header, " "); len(token) > 8 && strings.Contains(rec.Body.String(), token) {
				t.Errorf("body %s echoes the token", rec.Body)
			}
		})
	}
}

// assertRefused checks that rec holds the wire error want with a message.
func assertRefused(t *testing.T, rec *httptest.ResponseRecorder, want wireError) {
	t.Helper()
	if rec.Code != want.Status {
		t.Errorf("status = %d, want %d", rec.Code, want.Status)
	}
	var body wire.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	if body.Code != want.Code || body.Name != want.Name {
		t.Errorf("body = %+v, want code %d name %s", body, want.Code, want.Name)
	}
	if body.Message == "" {
		t.Error("empty message")
	}
}

// claims returns valid claims for "alice" with VIEW_DISPATCHERS, changed by
// the given functions.
func claims(change ...func(*tokenClaims)) *tokenClaims {
	c := &tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   "alice",
			IssuedAt:  jwt.NewNumericDate(authNow.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(authNow.Add(time.Hour)),
		},
		Permissions: []string{PermViewDispatchers},
	}
	for _, f := range change {
		f(c)
	}
	return c
}

// bearer signs c with method and key, naming kid when set, and returns the
// Authorization header carrying it.
func bearer(t *testing.T, method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	header := map[string]any{}
	if kid != "" {
		header["kid"] = kid
	}
	return bearerWith(t, method, key, header, c)
}

// bearerWith is bearer with the given header parameters besides alg and typ.
func bearerWith(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	maps.Copy(tok.Header, header)
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return "Bearer " + s
}

// mustAuthenticator builds an authenticator on the test clock or fails.
func mustAuthenticator(t *testing.T, cfg AuthConfig) *authenticator {
	t.Helper()
	cfg.Now = func() time.Time { return authNow }
	a, err := newAuthenticator(t.Context(), cfg)
	if err != nil {
		t.Fatalf("newAuthenticator: %v", err)
	}
	return a
}

func TestAuthHS256(t *testing.T) {
	a := mustAuthenticator(t, AuthConfig{Secret: testSecret})
	rsaKey := rsaKey(t)
	valid := bearer(t, jwt.SigningMethodHS256, testSecret, "", claims())
	withSubject := func(sub string) string {
		return bearer(t, jwt.SigningMethodHS256, testSecret, "", claims(func(c *tokenClaims) { c.Subject = sub }))
	}
	runAuthCases(t, a, []authCase{
		{name: "valid", header: valid},
		{name: "scheme is case-insensitive", header: "bearer" + strings.TrimPrefix(valid, "Bearer")},
		{name: "missing header", want: errNotAuthenticated},
		{name: "basic scheme", header: "Basic YWxpY2U6c2VjcmV0", want: errNotAuthenticated},
		{name: "bearer without token", header: "Bearer   ", want: errNotAuthenticated},
		{name: "token without scheme", header: strings.TrimPrefix(valid, "Bearer "), want: errNotAuthenticated},
		{name: "garbage", header: "Bearer not-a-token-at-all", want: errTokenUnknown},
		{name: "three garbage parts", header: "Bearer aaaa.bbbb.cccc", want: errTokenUnknown},
		{name: "wrong secret", header: bearer(t, jwt.SigningMethodHS256, otherSecret, "", claims()), want: errTokenUnknown},
		{name: "tampered payload", header: tamper(t, valid), want: errTokenUnknown},
		{name: "expired", header: bearer(t, jwt.SigningMethodHS256, testSecret, "", claims(func(c *tokenClaims) {
			c.ExpiresAt = jwt.NewNumericDate(authNow.Add(-time.Second))
		})), want: errTokenExpired},
		{name: "expired and wrong secret", header: bearer(t, jwt.SigningMethodHS256, otherSecret, "", claims(func(c *tokenClaims) {
			c.ExpiresAt = jwt.NewNumericDate(authNow.Add(-time.Hour))
		})), want: errTokenUnknown},
		{name: "not valid yet", header: bearer(t, jwt.SigningMethodHS256, testSecret, "", claims(func(c *tokenClaims) {
			c.NotBefore = jwt.NewNumericDate(authNow.Add(time.Minute))
		})), want: errTokenUnknown},
		{name: "no exp", header: bearer(t, jwt.SigningMethodHS256, testSecret, "", claims(func(c *tokenClaims) {
			c.ExpiresAt = nil
		})), want: errTokenUnknown},
		{name: "alg none", header: bearer(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims()), want: errTokenUnknown},
		{name: "HS512", header: bearer(t, jwt.SigningMethodHS512, testSecret, "", claims()), want: errTokenUnknown},
		{name: "RS256 when only a secret is set", header: bearer(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims()), want: errTokenUnknown, reason: "algorithm"},
		{name: "permissions not an array", header: bearer(t, jwt.SigningMethodHS256, testSecret, "", jwt.MapClaims{
			"sub": "alice", "exp": authNow.Add(time.Hour).Unix(), "permissions": PermViewDispatchers,
		}), want: errTokenUnknown},
		{name: "permissions not strings", header: bearer(t, jwt.SigningMethodHS256, testSecret, "", jwt.MapClaims{
			"sub": "alice", "exp": authNow.Add(time.Hour).Unix(), "permissions": []int{1},
		}), want: errTokenUnknown},
		{name: "lacking permission", header: valid, perm: PermCreateDispatchers, want: errNoPermission},
		{name: "no permissions claim", header: bearer(t, jwt.SigningMethodHS256, testSecret, "", claims(func(c *tokenClaims) {
			c.Permissions = nil
		})), want: errNoPermission},
		{name: "no subject", header: withSubject(""), want: errTokenUnknown, reason: "access token must carry a subject (the sub claim)"},
		{name: "blank subject", header: withSubject("  "), want: errTokenUnknown, reason: "sub claim"},
		// Before, it acted as the key: its audit records said so, and the
		// keys it made were revoked with the key's.
		{name: "an API key's subject", header: withSubject("apikey:6b11668218a8f2bde2075b31"), want: errTokenUnknown, reason: "which names API keys"},
		{name: "an API key's subject in capitals", header: withSubject("APIKEY:6b11668218a8f2bde2075b31"), want: errTokenUnknown, reason: "which names API keys"},
		// Before, the audit trail recorded its changes as the
		// dispatcher's own work (a bulk replay's replays).
		{name: "the dispatcher's own subject", header: withSubject(" Dispatcher"), want: errTokenUnknown, reason: "which names the dispatcher itself"},
		// Before, letters of other scripts and invisible characters got
		// through: the audit trail showed "аpikey:…" as a key's actor.
		{name: "an API key's subject with a Cyrillic a", header: withSubject("\u0430pikey:6b11668218a8f2bde2075b31"), want: errTokenUnknown, reason: "which names API keys"},
		{name: "an API key's subject with a zero-width space", header: withSubject("apikey\u200b:6b11668218a8f2bde2075b31"), want: errTokenUnknown, reason: "which names API keys"},
		{name: "an API key's subject in fullwidth letters", header: withSubject("ＡＰＩＫＥＹ：6b11668218a8f2bde2075b31"), want: errTokenUnknown, reason: "which names API keys"},
		{name: "the dispatcher's own subject reversed by a bidirectional control", header: withSubject("\u202erehctapsid"), want: errTokenUnknown, reason: "nor hold bidirectional controls"},
		{name: "a subject in another script", header: withSubject("ユーザー:7"), subject: "ユーザー:7"},
		{name: "a subject that only holds apikey:", header: withSubject("user-apikey:1"), subject: "user-apikey:1"},
		{name: "the dispatcher's own subject in Greek and Cyrillic", header: withSubject("di\u0455\u0440at\u0441her"), want: errTokenUnknown, reason: "which names the dispatcher itself"},
		// RFC 7515 §4.1.11: an extension the token says is critical, and
		// the dispatcher does not know, makes the token invalid.
		{name: "a critical extension", header: bearerWith(t, jwt.SigningMethodHS256, testSecret, map[string]any{"crit": []string{"x-bound"}, "x-bound": "device-7"}, claims()),
			want: errTokenUnknown, reason: "critical header parameters (crit)"},
		// Claims are read as named, once: before, the JSON decoder took
		// "Tenant" for tenant and the last of two tenants.
		{name: "a claim named twice", header: rawBearer(t, `{"sub":"alice","exp":%d,"tenant":"acme","tenant":"evil"}`),
			want: errTokenUnknown, reason: `twice`},
		{name: "a claim in another case", header: rawBearer(t, `{"sub":"alice","exp":%d,"Permissions":["VIEW_DISPATCHERS"]}`),
			want: errTokenUnknown, reason: `Permissions\": claim names are case-sensitive`},
		{name: "a claim folding to one", header: rawBearer(t, `{"ſub":"alice","sub":"bob","exp":%d}`),
			want: errTokenUnknown, reason: "case-sensitive"},
		{name: "claims of its own", header: rawBearer(t, `{"sub":"alice","exp":%d,"permissions":["VIEW_DISPATCHERS"],"Email":"a@example.com","nested":{"tenant":1,"tenant":2}}`)},
		// So is the header, and times are numbers: before, both were taken.
		{name: "a header parameter named twice", header: rawToken(t, `{"alg":"none","alg":"HS256"}`, `{"sub":"alice","exp":%d}`),
			want: errTokenUnknown, reason: `header parameter \"alg\" twice`},
		{name: "a header parameter in another case", header: rawToken(t, `{"alg":"HS256","KID":"x"}`, `{"sub":"alice","exp":%d}`),
			want: errTokenUnknown, reason: "case-sensitive"},
		{name: "exp as a string", header: rawToken(t, `{"alg":"HS256"}`, `{"sub":"alice","exp":"%d"}`),
			want: errTokenUnknown, reason: `claim \"exp\" must be a number of seconds since 1970 (RFC 7519), not a string`},
		// Before, nbf past int64's seconds let the token in at once, and
		// exp there said it had expired.
		{name: "nbf past the year 9999", header: rawBearer(t, `{"sub":"alice","exp":%d,"nbf":1e30,"permissions":["VIEW_DISPATCHERS"]}`),
			want: errTokenUnknown, reason: `claim \"nbf\" is out of range`},
		{name: "exp past the year 9999", header: rawBearer(t, `{"sub":"alice","exp":1e30,"x":%d}`),
			want: errTokenUnknown, reason: `claim \"exp\" is out of range`},
		{name: "iat as a string", header: rawBearer(t, `{"sub":"alice","exp":%d,"iat":"1700000000"}`),
			want: errTokenUnknown, reason: `claim \"iat\" must be a number`},
		// Before, taken for no tenant: the implicit tenant's, and the
		// operator's codec, for an identity provider's user of none.
		{name: "an empty tenant", header: rawBearer(t, `{"sub":"alice","exp":%d,"tenant":"","permissions":["VIEW_DISPATCHERS"]}`),
			want: errTokenUnknown, reason: `tenant claim is empty`},
		{name: "a null tenant", header: rawBearer(t, `{"sub":"alice","exp":%d,"tenant":null,"permissions":["VIEW_DISPATCHERS"]}`),
			want: errTokenUnknown, reason: `tenant claim is empty`},
	})
}

// rawBearer signs the payload claims (with %d for exp, an hour away) as
// written, which the jwt package would not write: names twice, in
// another case.
func rawBearer(t *testing.T, claims string) string {
	t.Helper()
	return rawToken(t, `{"alg":"HS256","typ":"JWT"}`, claims)
}

// rawToken is rawBearer with the header as written too.
func rawToken(t *testing.T, header, claims string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	signing := enc([]byte(header)) + "." + enc(fmt.Appendf(nil, claims, authNow.Add(time.Hour).Unix()))
	sig, err := jwt.SigningMethodHS256.Sign(signing, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + signing + "." + enc(sig)
}

func TestAuthMessages(t *testing.T) {
	a := mustAuthenticator(t, AuthConfig{Secret: testSecret})
	for _, tc := range []struct {
		name, header, perm, want string
	}{
		{"missing header", "", PermViewDispatchers, "missing bearer token in the Authorization header"},
		// There is one, of another form: before, "missing".
		{"not a bearer token", "garbage", PermViewDispatchers, `the Authorization header must be "Bearer <token>"`},
		{"Basic", "Basic YWxpY2U6cHc=", PermViewDispatchers, `the Authorization header must be "Bearer <token>"`},
		{"Bearer without a token", "Bearer ", PermViewDispatchers, `the Authorization header must be "Bearer <token>"`},
		{"lacking permission", bearer(t, jwt.SigningMethodHS256, testSecret, "", claims()), PermCreateDispatchers,
			"permission CREATE_DISPATCHERS is required"},
		{"expired", bearer(t, jwt.SigningMethodHS256, testSecret, "", claims(func(c *tokenClaims) {
			c.ExpiresAt = jwt.NewNumericDate(authNow.Add(-time.Second))
		})), PermViewDispatchers, "access token has expired"},
		{"alg none", bearer(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims()), PermViewDispatchers,
			"algorithm is not accepted (accepted: HS256)"},
		{"wrong secret", bearer(t, jwt.SigningMethodHS256, otherSecret, "", claims()), PermViewDispatchers,
			"signature is invalid"},
		{"bad permissions", bearer(t, jwt.SigningMethodHS256, testSecret, "", jwt.MapClaims{
			"sub": "alice", "exp": authNow.Add(time.Hour).Unix(), "permissions": "x",
		}), PermViewDispatchers, `claim "permissions" has the wrong type`},
		{"no exp", bearer(t, jwt.SigningMethodHS256, testSecret, "", claims(func(c *tokenClaims) { c.ExpiresAt = nil })),
			PermViewDispatchers, "must carry the claims exp"},
	} {
		rec := get(t, newAuthEngine(t, a, tc.perm), tc.header)
		var body wire.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: decode %s: %v", tc.name, rec.Body, err)
		}
		if !strings.Contains(body.Message, tc.want) {
			t.Errorf("%s: message %q lacks %q", tc.name, body.Message, tc.want)
		}
	}
}

func TestAuthIssuerAudience(t *testing.T) {
	a := mustAuthenticator(t, AuthConfig{Secret: testSecret, Issuer: "https://id.example.com", Audience: "dispatchers"})
	with := func(iss string, aud ...string) string {
		return bearer(t, jwt.SigningMethodHS256, testSecret, "", claims(func(c *tokenClaims) {
			c.Issuer, c.Audience = iss, aud
		}))
	}
	runAuthCases(t, a, []authCase{
		{name: "both right", header: with("https://id.example.com", "dispatchers")},
		{name: "one of several audiences", header: with("https://id.example.com", "mail", "dispatchers")},
		{name: "wrong issuer", header: with("https://evil.example.com", "dispatchers"), want: errTokenUnknown, reason: "issuer"},
		{name: "wrong audience", header: with("https://id.example.com", "billing"), want: errTokenUnknown, reason: "audience"},
		{name: "no issuer", header: with("", "dispatchers"), want: errTokenUnknown, reason: "exp, iss, aud"},
		{name: "no audience", header: with("https://id.example.com"), want: errTokenUnknown, reason: "exp, iss, aud"},
	})
}

func TestAuthJWKS(t *testing.T) {
	rsaKey, otherRSA, ecKey := rsaKey(t), rsaKey(t), ecKey(t)
	url := serveJWKS(t, map[string]any{"rsa-1": &rsaKey.PublicKey, "ec-1": &ecKey.PublicKey})
	pubPEM := publicPEM(t, &rsaKey.PublicKey)

	// The identity provider's tokens name it and the dispatcher.
	const iss, aud = "https://id.example.com", "dispatchers"
	claims := func(change ...func(*tokenClaims)) *tokenClaims {
		return claims(append([]func(*tokenClaims){func(c *tokenClaims) {
			c.Issuer, c.Audience = iss, jwt.ClaimStrings{aud}
		}}, change...)...)
	}

	t.Run("JWKS only", func(t *testing.T) {
		a := mustAuthenticator(t, AuthConfig{JWKSURL: url, Issuer: iss, Audience: aud})
		runAuthCases(t, a, []authCase{
			{name: "RS256", header: bearer(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims())},
			{name: "ES256", header: bearer(t, jwt.SigningMethodES256, ecKey, "ec-1", claims())},
			{name: "RS256 by an unknown key", header: bearer(t, jwt.SigningMethodRS256, otherRSA, "rsa-2", claims()),
				want: errTokenUnknown, reason: "unknown key"},
			{name: "RS256 by another key under a known kid", header: bearer(t, jwt.SigningMethodRS256, otherRSA, "rsa-1", claims()),
				want: errTokenUnknown, reason: "signature is invalid"},
			{name: "RS256 without kid", header: bearer(t, jwt.SigningMethodRS256, rsaKey, "", claims()),
				want: errTokenUnknown, reason: "unknown key"},
			{name: "ES256 under an RSA kid", header: bearer(t, jwt.SigningMethodES256, ecKey, "rsa-1", claims()),
				want: errTokenUnknown, reason: "unknown key"},
			{name: "expired RS256", header: bearer(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims(func(c *tokenClaims) {
				c.ExpiresAt = jwt.NewNumericDate(authNow.Add(-time.Minute))
			})), want: errTokenExpired},
			// The classic confusion attack: HMAC keyed with the public key.
			{name: "HS256 keyed with the public key", header: bearer(t, jwt.SigningMethodHS256, pubPEM, "rsa-1", claims()),
				want: errTokenUnknown, reason: "algorithm is not accepted (accepted: RS256, ES256)"},
			{name: "lacking permission", header: bearer(t, jwt.SigningMethodES256, ecKey, "ec-1", claims()),
				perm: PermDeleteDispatchers, want: errNoPermission},
			{name: "meant for another service", header: bearer(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims(func(c *tokenClaims) {
				c.Audience = jwt.ClaimStrings{"billing"}
			})), want: errTokenUnknown, reason: "wrong audience"},
			{name: "without subject", header: bearer(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims(func(c *tokenClaims) {
				c.Subject = ""
			})), want: errTokenUnknown, reason: "sub claim"},
			{name: "a critical extension", header: bearerWith(t, jwt.SigningMethodES256, ecKey, map[string]any{"kid": "ec-1", "crit": []string{"x-bound"}, "x-bound": "device-7"}, claims()),
				want: errTokenUnknown, reason: "critical header parameters (crit)"},
		})
	})

	t.Run("secret and JWKS", func(t *testing.T) {
		a := mustAuthenticator(t, AuthConfig{Secret: testSecret, JWKSURL: url, Issuer: iss, Audience: aud})
		runAuthCases(t, a, []authCase{
			{name: "HS256", header: bearer(t, jwt.SigningMethodHS256, testSecret, "", claims())},
			{name: "RS256", header: bearer(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims())},
			{name: "ES256", header: bearer(t, jwt.SigningMethodES256, ecKey, "ec-1", claims())},
			// Checked against the secret, never against the key set.
			{name: "HS256 keyed with the public key", header: bearer(t, jwt.SigningMethodHS256, pubPEM, "rsa-1", claims()),
				want: errTokenUnknown, reason: "signature is invalid"},
			{name: "alg none", header: bearer(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", claims()),
				want: errTokenUnknown, reason: "algorithm is not accepted"},
		})
	})

	// An identity provider that leaves the claim out for a user of no
	// organisation: with the setting, refused rather than taken for the
	// implicit tenant, the operators'. Before, nothing could require it.
	t.Run("JWKS tokens must carry a tenant", func(t *testing.T) {
		a := mustAuthenticator(t, AuthConfig{Secret: testSecret, JWKSURL: url, Issuer: iss, Audience: aud, JWKSRequireTenant: true})
		acme := func(c *tokenClaims) { c.Tenant = "acme" }
		runAuthCases(t, a, []authCase{
			{name: "RS256 of a tenant", header: bearer(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims(acme))},
			{name: "RS256 without a tenant", header: bearer(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims()),
				want: errTokenUnknown, reason: "carries no tenant claim, which this deployment requires of its identity provider's tokens (DISPATCHER_JWKS_REQUIRE_TENANT)"},
			{name: "ES256 without a tenant", header: bearer(t, jwt.SigningMethodES256, ecKey, "ec-1", claims()),
				want: errTokenUnknown, reason: "DISPATCHER_JWKS_REQUIRE_TENANT"},
			// The operators', minted with `dispatcher token`.
			{name: "HS256 without a tenant", header: bearer(t, jwt.SigningMethodHS256, testSecret, "", claims())},
		})
	})
}

func TestAuthDisabled(t *testing.T) {
	a := mustAuthenticator(t, AuthConfig{Disabled: true, Secret: testSecret})
	for _, header := range []string{"", "Bearer garbage", bearer(t, jwt.SigningMethodHS256, otherSecret, "", claims())} {
		rec := get(t, newAuthEngine(t, a, PermCancelExecutions), header)
		if rec.Code != http.StatusOK {
			t.Fatalf("header %q: status = %d, want 200; body %s", header, rec.Code, rec.Body)
		}
		var got seen
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Subject != "anonymous" || !slices.Equal(got.Permissions, Permissions()) {
			t.Errorf("principal = %+v, want anonymous with every permission", got)
		}
	}
}

func TestAuthRequireWithoutAuthenticate(t *testing.T) {
	gin.SetMode(gin.TestMode)
	e := gin.New()
	e.GET("/x", require(PermViewDispatchers), func(c *gin.Context) { c.Status(http.StatusOK) })
	assertRefused(t, get(t, e, ""), errNoPermission)
}

func TestAuthConstructorErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  AuthConfig
		want string
	}{
		{"nothing configured", AuthConfig{}, "DISPATCHER_AUTH_DISABLED=true"},
		{"only issuer", AuthConfig{Issuer: "https://id.example.com"}, "DISPATCHER_JWT_SECRET or DISPATCHER_JWKS_URL"},
		{"short secret", AuthConfig{Secret: []byte("hunter2-is-not-a-good-secret")}, "at least 32"},
		{"one byte short", AuthConfig{Secret: testSecret[:31]}, "at least 32"},
		{"bad JWKS URL", AuthConfig{JWKSURL: "not a url", Issuer: "https://id.example.com", Audience: "dispatchers"}, "DISPATCHER_JWKS_URL"},
		// Whoever answers a plain http fetch signs tokens.
		{"JWKS over plain http", AuthConfig{JWKSURL: "http://id.example.com/jwks", Issuer: "https://id.example.com", Audience: "dispatchers"}, "must be fetched over https"},
		{"JWKS without issuer or audience", AuthConfig{JWKSURL: "https://id.example.com/jwks"},
			"DISPATCHER_JWKS_URL is set, so DISPATCHER_JWT_ISSUER and DISPATCHER_JWT_AUDIENCE must be set too"},
		{"JWKS without audience", AuthConfig{JWKSURL: "https://id.example.com/jwks", Issuer: "https://id.example.com"},
			"so DISPATCHER_JWT_AUDIENCE must be set too"},
		{"tenant required without JWKS", AuthConfig{Secret: testSecret, JWKSRequireTenant: true}, "DISPATCHER_JWKS_REQUIRE_TENANT is set, but DISPATCHER_JWKS_URL is not"},
		{"JWKS and secret without issuer", AuthConfig{Secret: testSecret, JWKSURL: "https://id.example.com/jwks", Audience: "dispatchers"},
			"so DISPATCHER_JWT_ISSUER must be set too"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := newAuthenticator(t.Context(), tc.cfg)
			if err == nil {
				t.Fatalf("got %+v, want an error", a)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if len(tc.cfg.Secret) > 0 && strings.Contains(err.Error(), string(tc.cfg.Secret)) {
				t.Errorf("error %q quotes the secret", err)
			}
		})
	}
}

func TestAuthSignToken(t *testing.T) {
	a := mustAuthenticator(t, AuthConfig{Secret: testSecret, Issuer: "dispatcher", Audience: "dispatchers"})
	tok, err := SignToken(testSecret, TokenClaims{
		Subject:     "ops",
		Permissions: []string{PermCreateDispatchers, PermViewDispatchers},
		TTL:         time.Hour,
		Issuer:      "dispatcher",
		Audience:    "dispatchers",
	}, authNow.Add(-time.Minute))
	if err != nil {
		t.Fatalf("SignToken: %v", err)
	}
	rec := get(t, newAuthEngine(t, a, PermCreateDispatchers), "Bearer "+tok)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	var got seen
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if want := []string{PermCreateDispatchers, PermViewDispatchers}; got.Subject != "ops" || !slices.Equal(got.Permissions, want) {
		t.Errorf("principal = %+v, want ops with %v", got, want)
	}
	assertRefused(t, get(t, newAuthEngine(t, a, PermDeleteDispatchers), "Bearer "+tok), errNoPermission)

	// exp is exactly now+TTL: valid a second before, expired at it.
	for _, tc := range []struct {
		signedAt time.Time
		want     wireError
	}{
		{authNow.Add(-time.Hour + time.Second), wireError{}},
		{authNow.Add(-time.Hour), errTokenExpired},
	} {
		tok, err := SignToken(testSecret, TokenClaims{Subject: "ops", TTL: time.Hour, Issuer: "dispatcher", Audience: "dispatchers"}, tc.signedAt)
		if err != nil {
			t.Fatal(err)
		}
		rec := get(t, newAuthEngine(t, a, PermViewDispatchers), "Bearer "+tok)
		if tc.want == (wireError{}) {
			// Authenticated, but without permissions: the route refuses with 10.
			assertRefused(t, rec, errNoPermission)
		} else {
			assertRefused(t, rec, tc.want)
		}
	}
}

func TestAuthSignTokenErrors(t *testing.T) {
	ok := TokenClaims{Subject: "ops", Permissions: []string{PermViewDispatchers}, TTL: time.Hour}
	for _, tc := range []struct {
		name   string
		secret []byte
		change func(*TokenClaims)
		want   string
	}{
		{"short secret", testSecret[:16], func(*TokenClaims) {}, "at least 32"},
		{"no subject", testSecret, func(c *TokenClaims) { c.Subject = "" }, "subject"},
		// Refused when used: before, minted all the same.
		{"the dispatcher's own subject", testSecret, func(c *TokenClaims) { c.Subject = "Dispatcher" }, "which names the dispatcher itself"},
		{"an API key's subject", testSecret, func(c *TokenClaims) { c.Subject = "apikey:6b11668218a8f2bde2075b31" }, "which names API keys"},
		{"zero TTL", testSecret, func(c *TokenClaims) { c.TTL = 0 }, "lifetime"},
		{"unknown permission", testSecret, func(c *TokenClaims) { c.Permissions = []string{"CREATE_DISPATCHER"} }, `"CREATE_DISPATCHER"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			tok, err := SignToken(tc.secret, c, authNow)
			if err == nil {
				t.Fatalf("got token %q, want an error", tok)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestAuthPermissions(t *testing.T) {
	got := Permissions()
	if len(got) != 23 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("Permissions() = %v, want 23 distinct sorted names", got)
	}
	got[0] = "changed"
	if Permissions()[0] == "changed" {
		t.Error("Permissions() shares its slice between calls")
	}
}

// tamper swaps a permission in a signed token's payload without re-signing.
func tamper(t *testing.T, header string) string {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(header, "Bearer "), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	payload = []byte(strings.Replace(string(payload), PermViewDispatchers, PermDeleteDispatchers, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return "Bearer " + strings.Join(parts, ".")
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publicPEM is the PEM form of pub, what an attacker would feed HMAC.
func publicPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// serveJWKS serves the public keys, by kid, as a JWK set and returns its URL.
func serveJWKS(t *testing.T, keys map[string]any) string {
	t.Helper()
	return newJWKSServer(t, keys).url
}

// jwksServer is an identity provider's key set, whose keys a test may
// rotate, and which counts its fetches.
type jwksServer struct {
	url     string
	body    atomic.Pointer[[]byte]
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, keys map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.rotate(t, keys)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(*s.body.Load())
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// rotate serves keys, signing keys by kid, from now on.
func (s *jwksServer) rotate(t *testing.T, keys map[string]any) {
	t.Helper()
	var set []jwk.Key
	for kid, pub := range keys {
		set = append(set, jwkOf(t, kid, pub, map[string]any{jwk.KeyUsageKey: "sig"}))
	}
	s.serve(t, set...)
}

// jwkOf is pub as a JWK with kid, the alg of its type, and fields.
func jwkOf(t *testing.T, kid string, pub any, fields map[string]any) jwk.Key {
	t.Helper()
	alg := jwa.RS256()
	if _, ok := pub.(*ecdsa.PublicKey); ok {
		alg = jwa.ES256()
	}
	key, err := jwk.Import(pub)
	if err != nil {
		t.Fatalf("JWK %s: %v", kid, err)
	}
	for name, v := range fields {
		if err := key.Set(name, v); err != nil {
			t.Fatalf("JWK %s: %s: %v", kid, name, err)
		}
	}
	if err := key.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	if err := key.Set(jwk.AlgorithmKey, alg); err != nil {
		t.Fatal(err)
	}
	return key
}

// serve serves keys, in their order, from now on.
func (s *jwksServer) serve(t *testing.T, keys ...jwk.Key) {
	t.Helper()
	set := jwk.NewSet()
	for _, key := range keys {
		if err := set.AddKey(key); err != nil {
			t.Fatal(err)
		}
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.body.Store(&body)
}

// A token under a kid the dispatcher does not know fetches the key set
// again, at most once every 10 s (jwksUnknownKeyWait), so that tokens with
// forged kids cannot make it hammer the provider. Forged kids cannot keep
// a rotated key out for long either: before, the wait was five minutes,
// and a forged kid sent just before a rotation had every token signed by
// the new key refused for that long.
func TestJWKSRotationAfterForgedKids(t *testing.T) {
	oldKey, newKey, forger := rsaKey(t), rsaKey(t), rsaKey(t)
	provider := newJWKSServer(t, map[string]any{"old": &oldKey.PublicKey})
	const iss, aud = "https://id.example.com", "dispatchers"
	claims := claims(func(c *tokenClaims) { c.Issuer, c.Audience = iss, jwt.ClaimStrings{aud} })
	var clock atomic.Pointer[time.Time]
	at := func(d time.Duration) { now := authNow.Add(d); clock.Store(&now) }
	at(0)
	a := mustAuthenticator(t, AuthConfig{JWKSURL: provider.url, Issuer: iss, Audience: aud})
	a.jwks.now = func() time.Time { return *clock.Load() }
	accepted := func(key *rsa.PrivateKey, kid string) bool {
		return get(t, newAuthEngine(t, a, PermViewDispatchers), bearer(t, jwt.SigningMethodRS256, key, kid, claims)).Code == http.StatusOK
	}
	// The first fetch is in the background: once it is in, only the
	// tokens below fetch the key set.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := a.jwks.lookup(t.Context(), "old"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the key set was not fetched within 10 s")
		}
	}
	if !accepted(oldKey, "old") {
		t.Fatal("a token of the old key was refused")
	}
	fetched := provider.fetches.Load()

	for i := range 50 {
		if accepted(forger, fmt.Sprint("forged-", i)) {
			t.Fatal("a forged token was accepted")
		}
	}
	if n := provider.fetches.Load() - fetched; n != 1 {
		t.Errorf("50 forged kids fetched the key set %d times, want once", n)
	}
	provider.rotate(t, map[string]any{"old": &oldKey.PublicKey, "new": &newKey.PublicKey})
	at(time.Second)
	if accepted(newKey, "new") {
		t.Error("the new key was known before the key set could be fetched again")
	}
	at(10 * time.Second)
	if !accepted(newKey, "new") {
		t.Error("a token of the new key was still refused 10 s after the forged kids")
	}
}

// A key the provider marks for encryption ("use": "enc", RFC 7517 §4.2),
// or for operations that leave out verify ("key_ops", §4.3), verifies no
// token; a signing key under the same kid still does. Before, whatever key
// had the token's kid verified it.
func TestJWKSKeysNotForSignatures(t *testing.T) {
	encKey, opsKey, sigKey := rsaKey(t), rsaKey(t), rsaKey(t)
	provider := newJWKSServer(t, nil)
	provider.serve(t,
		jwkOf(t, "enc-1", &encKey.PublicKey, map[string]any{jwk.KeyUsageKey: "enc"}),
		jwkOf(t, "ops-1", &opsKey.PublicKey, map[string]any{jwk.KeyOpsKey: []string{"encrypt", "wrapKey"}}),
		jwkOf(t, "shared", &encKey.PublicKey, map[string]any{jwk.KeyUsageKey: "enc"}),
		jwkOf(t, "shared", &sigKey.PublicKey, map[string]any{jwk.KeyUsageKey: "sig", jwk.KeyOpsKey: []string{"verify"}}))
	const iss, aud = "https://id.example.com", "dispatchers"
	a := mustAuthenticator(t, AuthConfig{JWKSURL: provider.url, Issuer: iss, Audience: aud})
	claims := claims(func(c *tokenClaims) { c.Issuer, c.Audience = iss, jwt.ClaimStrings{aud} })
	runAuthCases(t, a, []authCase{
		{name: "a key for encryption", header: bearer(t, jwt.SigningMethodRS256, encKey, "enc-1", claims), want: errTokenUnknown, reason: "unknown key"},
		{name: "a key whose operations leave out verify", header: bearer(t, jwt.SigningMethodRS256, opsKey, "ops-1", claims), want: errTokenUnknown, reason: "unknown key"},
		{name: "a signing key beside an encryption key of its kid", header: bearer(t, jwt.SigningMethodRS256, sigKey, "shared", claims)},
		{name: "the encryption key of that kid", header: bearer(t, jwt.SigningMethodRS256, encKey, "shared", claims), want: errTokenUnknown, reason: "signature is invalid"},
	})
}

// The key set's fetch follows a redirect only where its URL could point:
// before, an https URL that redirected to plain http was followed, and
// whoever answered that fetch signed tokens.
func TestJWKSRedirectsStayOnHTTPS(t *testing.T) {
	for target, ok := range map[string]bool{
		"https://id.example.com/keys":    true,
		"http://127.0.0.1:8080/keys":     true,
		"http://id.example.com/keys":     false,
		"http://10.0.0.7/keys":           false,
		"ftp://id.example.com/keys.json": false,
	} {
		req := httptest.NewRequest("GET", target, nil)
		via := []*http.Request{httptest.NewRequest("GET", "https://id.example.com/.well-known/jwks.json", nil)}
		if err := jwksClient.CheckRedirect(req, via); (err == nil) != ok {
			t.Errorf("redirect to %s: %v, want allowed %v", target, err, ok)
		}
	}
}

// countingTransport counts the requests it carries.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// The key set is fetched with jwksClient, whose redirect policy and
// timeout hold: before, jwx gave the key set a client of its own.
func TestJWKSFetchedWithItsClient(t *testing.T) {
	counting := &countingTransport{}
	jwksClient.Transport = counting
	t.Cleanup(func() { jwksClient.Transport = nil })
	key := rsaKey(t)
	url := serveJWKS(t, map[string]any{"rsa-1": &key.PublicKey})
	const iss, aud = "https://id.example.com", "dispatchers"
	a := mustAuthenticator(t, AuthConfig{JWKSURL: url, Issuer: iss, Audience: aud})
	runAuthCases(t, a, []authCase{{name: "RS256", header: bearer(t, jwt.SigningMethodRS256, key, "rsa-1", claims(func(c *tokenClaims) {
		c.Issuer, c.Audience = iss, jwt.ClaimStrings{aud}
	}))}})
	if counting.n.Load() == 0 {
		t.Fatal("the key set was fetched with another client than jwksClient")
	}
}

// A request with two Authorization headers is refused: a proxy in front
// may read the other one than the dispatcher. Before, the first was used
// silently, and the second ignored.
func TestAuthTwoAuthorizationHeaders(t *testing.T) {
	a := mustAuthenticator(t, AuthConfig{Secret: testSecret})
	valid := bearer(t, jwt.SigningMethodHS256, testSecret, "", claims())
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Host = "localhost"
	req.Header.Add("Authorization", valid)
	req.Header.Add("Authorization", "Bearer something-else")
	rec := httptest.NewRecorder()
	newAuthEngine(t, a, PermViewDispatchers).ServeHTTP(rec, req)
	assertRefused(t, rec, errNotAuthenticated)
	if !strings.Contains(rec.Body.String(), "more than one Authorization header") {
		t.Errorf("body %s does not say why", rec.Body)
	}

	// /metrics too, which has a token of its own.
	const token = "metrics-token-0123456789"
	req = httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Add("Authorization", "Bearer "+token)
	req.Header.Add("Authorization", "Bearer something-else")
	rec = httptest.NewRecorder()
	NewOpsHandler(nil, prometheus.NewRegistry(), token, false, BuildInfo{}, nil).ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "more than one Authorization header") {
		t.Errorf("/metrics with two Authorization headers = %d %s", rec.Code, rec.Body)
	}
}
