package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
)

// AuthConfig says how the API verifies access tokens. Secret and JWKSURL may
// both be set: HS256 tokens are then checked against the secret and RS256 or
// ES256 tokens against the key set, so an operator can mint tokens with
// `dispatcher token` next to those of an identity provider.
type AuthConfig struct {
	// Disabled lets every request in as "anonymous" with every permission,
	// but one presenting an API key, which is checked and acts as the key.
	// It has to be asked for, so a forgotten secret never opens the API.
	Disabled bool
	// Secret verifies HS256 tokens; at least minSecretLen bytes.
	Secret []byte
	// JWKSURL is an identity provider's JSON Web Key Set, for RS256 and
	// ES256 tokens. It is refreshed in the background and whenever a token
	// names a key id the set does not hold yet.
	JWKSURL string
	// Issuer and Audience, when set, must equal the token's iss and be one
	// of its aud; a token without the claim is refused.
	Issuer, Audience string
	// JWKSRequireTenant refuses a token verified against the key set
	// without a tenant claim: an identity provider that leaves the claim
	// out for a user of no organisation would have them act in the
	// implicit tenant, whose operators decode every tenant's payloads.
	// HS256 tokens (the operators', of `dispatcher token`) may go without.
	JWKSRequireTenant bool
	// Now is the clock that exp and nbf are checked against; nil means
	// time.Now.
	Now func() time.Time
}

// minSecretLen is the shortest HS256 secret accepted: RFC 7518 §3.2 asks for
// a key as long as the hash (256 bits), because anyone holding one token can
// guess a shorter secret offline and then mint tokens of their own.
const minSecretLen = 32

// principal is who made a request and what they may do. Permissions is
// shared between requests and must not be changed.
type principal struct {
	Subject string
	// Tenant scopes everything the principal sees and changes; "" is the
	// implicit tenant of a deployment whose tokens carry no tenant claim.
	Tenant      string
	Permissions map[string]bool
	// EventTypes, when not nil, are the only event types the principal
	// may send: an API key's restriction (dispatcher.APIKey.EventTypes).
	EventTypes []string
	// APIKey is true when the principal is an API key, not a token.
	APIKey bool
	// Name is an API key's name, "" for a token.
	Name string
	// Expires is when an API key principal stops working; zero: never.
	Expires time.Time
}

// principalKey is the gin context key under which authenticate stores the
// principal; a type of its own so no other package can collide with it.
type principalKey struct{}

// tokenClaims is the payload of an access token: the registered claims plus
// the Extra Horizon style permission list.
type tokenClaims struct {
	jwt.RegisteredClaims
	Permissions []string `json:"permissions"`
	Tenant      string   `json:"tenant,omitempty"`
}

// readClaims are the claims the dispatcher reads, as a verified token
// must name them, and readParams the header parameters.
var (
	readClaims = []string{"sub", "tenant", "permissions", "exp", "nbf", "iat", "iss", "aud"}
	readParams = []string{"alg", "kid", "typ", "crit"}
)

// strictClaims refuses a token whose header or payload names a parameter
// or claim twice (the JSON decoder keeps the last: {"tenant":"acme",
// "tenant":"evil"} acted for evil, {"alg":"none","alg":"HS256"} was taken)
// or names one the dispatcher reads in another case ("Tenant", which the
// decoder matches too), or gives a time that is not a number (RFC 7519
// §2: "exp":"1796…" was taken): an identity provider that lets users set
// claims of their own, or a gateway that reads the first of two, must not
// make the dispatcher read another tenant or permissions than they do.
func strictClaims(raw string) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return errors.New("access token is malformed")
	}
	if err := strictObject(parts[0], "header", "header parameter", readParams); err != nil {
		return err
	}
	return strictObject(parts[1], "payload", "claim", readClaims)
}

// strictObject checks one segment of a token (see strictClaims).
func strictObject(segment, part, what string, read []string) error {
	malformed := errors.New("access token's " + part + " is malformed")
	data, err := jwt.NewParser().DecodeSegment(segment)
	if err != nil {
		return malformed
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if _, err := dec.Token(); err != nil { // {
		return malformed
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		if err != nil || !ok {
			return malformed
		}
		if seen[name] {
			return fmt.Errorf("access token names the %s %q twice", what, name)
		}
		seen[name] = true
		for _, c := range read {
			if name != c && strings.EqualFold(name, c) {
				return fmt.Errorf("access token has a %s %q: %s names are case-sensitive (%q)", what, name, what, c)
			}
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return malformed
		}
		if part == "payload" && name == "tenant" && (string(v) == `""` || string(v) == "null") {
			// Not the same as none, the implicit tenant's: an identity
			// provider's user of no organisation would act as the operator.
			return errors.New("access token's tenant claim is empty: name a tenant, or leave the claim out for the implicit tenant")
		}
		if part == "payload" && (name == "exp" || name == "nbf" || name == "iat") {
			if !isNumber(v) {
				return fmt.Errorf("access token's claim %q must be a number of seconds since 1970 (RFC 7519), not %s", name, jsonKind(v))
			}
			// The jwt package converts a time past int64's seconds to the
			// earliest one: "nbf":1e30 let the token in at once.
			if t, err := strconv.ParseFloat(string(v), 64); err != nil || math.Abs(t) > maxNumericDate {
				return fmt.Errorf("access token's claim %q is out of range: seconds since 1970, within 9999 years of it", name)
			}
		}
	}
	return nil
}

// maxNumericDate is 9999-12-31T23:59:59Z, the last time a claim may name.
const maxNumericDate = 253402300799

// isNumber reports whether v is a JSON number.
func isNumber(v json.RawMessage) bool {
	return len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9')
}

// jsonKind names the kind of JSON value v is.
func jsonKind(v json.RawMessage) string {
	switch {
	case len(v) == 0:
		return "nothing"
	case v[0] == '"':
		return "a string"
	case v[0] == '{':
		return "an object"
	case v[0] == '[':
		return "an array"
	case v[0] == 'n':
		return "null"
	}
	return "true or false"
}

// authenticator verifies access tokens and turns them into principals.
type authenticator struct {
	disabled bool
	secret   []byte   // nil when HS256 is not accepted
	jwks     *keySet  // nil when RS256 and ES256 are not accepted
	methods  []string // the algorithms accepted, for the parser and error messages
	required []string // the claims a token must carry, for error messages
	parser   *jwt.Parser
	keys     keyLookup        // nil: API keys are refused
	now      func() time.Time // nil means time.Now; for API keys' expiry
	// jwksTenant: a token of the key set must carry a tenant.
	jwksTenant bool
}

// Check reports what makes cfg unusable, without fetching anything: a
// process checks it before it opens its database or dials Temporal.
func (cfg AuthConfig) Check() error {
	switch {
	case cfg.Disabled:
		return nil
	case len(cfg.Secret) == 0 && cfg.JWKSURL == "":
		return errors.New("no way to verify access tokens: set DISPATCHER_JWT_SECRET or DISPATCHER_JWKS_URL, or disable auth explicitly with DISPATCHER_AUTH_DISABLED=true")
	case cfg.JWKSRequireTenant && cfg.JWKSURL == "":
		return errors.New("DISPATCHER_JWKS_REQUIRE_TENANT is set, but DISPATCHER_JWKS_URL is not: it applies to the identity provider's tokens")
	}
	if err := checkJWKSClaims(cfg); err != nil {
		return err
	}
	if len(cfg.Secret) > 0 {
		if err := CheckSecret(cfg.Secret); err != nil {
			return fmt.Errorf("DISPATCHER_JWT_SECRET: %w", err)
		}
	}
	return nil
}

// newAuthenticator checks cfg and, when a JWKS URL is set, fetches the key set
// and keeps refreshing it until ctx ends. An unreachable key set is logged,
// not fatal: the provider may come up after us, and an unknown key id
// triggers a new fetch.
func newAuthenticator(ctx context.Context, cfg AuthConfig) (*authenticator, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Disabled {
		return &authenticator{disabled: true, now: cfg.Now}, nil
	}
	a := &authenticator{required: []string{"exp"}, now: cfg.Now, jwksTenant: cfg.JWKSRequireTenant}
	if len(cfg.Secret) > 0 {
		a.secret = slices.Clone(cfg.Secret)
		a.methods = append(a.methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		k, err := newKeySet(ctx, cfg.JWKSURL)
		if err != nil {
			return nil, fmt.Errorf("DISPATCHER_JWKS_URL: %w", err)
		}
		a.jwks = k
		a.methods = append(a.methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	// Only the configured algorithms: this keeps out "none", and an HS256
	// token can never be checked against a public key from the key set.
	// A token without exp would be valid forever, so exp is required.
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(a.methods),
		jwt.WithTimeFunc(now),
		jwt.WithExpirationRequired(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
		a.required = append(a.required, "iss")
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
		a.required = append(a.required, "aud")
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// checkJWKSClaims requires an issuer and an audience when tokens come from
// an identity provider: it signs tokens for every application it serves
// with the same keys, and only iss and aud tell those meant for the
// dispatcher apart from those of another service.
func checkJWKSClaims(cfg AuthConfig) error {
	if cfg.JWKSURL == "" {
		return nil
	}
	var missing []string
	if cfg.Issuer == "" {
		missing = append(missing, "DISPATCHER_JWT_ISSUER")
	}
	if cfg.Audience == "" {
		missing = append(missing, "DISPATCHER_JWT_AUDIENCE")
	}
	if len(missing) > 0 {
		return fmt.Errorf("DISPATCHER_JWKS_URL is set, so %s must be set too: the identity provider's keys sign tokens for other services as well, and only iss and aud tell the dispatcher's apart",
			strings.Join(missing, " and "))
	}
	return nil
}

// CheckSecret refuses HS256 secrets too short to resist offline guessing.
// It never includes the secret in its error.
func CheckSecret(secret []byte) error {
	if len(secret) < minSecretLen {
		return fmt.Errorf("the HS256 secret is %d bytes, it must be at least %d (256 bits) so that it cannot be guessed from a token", len(secret), minSecretLen)
	}
	return nil
}

// authenticate returns the middleware that turns the request's bearer token
// (a JWT, or an API key: authenticateKey) into a principal, or answers 401
// with code 104, 117 (also for a token without a subject) or 118. It never
// logs or echoes the token.
func (a *authenticator) authenticate() gin.HandlerFunc {
	if a.disabled {
		everyone := principal{Subject: "anonymous", Permissions: make(map[string]bool)}
		for _, p := range Permissions() {
			everyone.Permissions[p] = true
		}
		return func(c *gin.Context) {
			if refuseAuthorizations(c) {
				return
			}
			// A key the dispatcher issued is still checked (see
			// authenticateKey): a producer then acts as it will in
			// production, and a revoked key never works.
			if raw, ok := bearerToken(c.GetHeader("Authorization")); ok && dispatcher.IsAPIKey(raw) {
				a.authenticateKey(c, raw)
				return
			}
			setPrincipal(c, everyone)
		}
	}
	return func(c *gin.Context) {
		if refuseAuthorizations(c) {
			return
		}
		header := c.GetHeader("Authorization")
		raw, ok := bearerToken(header)
		switch {
		case !ok && strings.TrimSpace(header) == "":
			abort(c, errNotAuthenticated, "missing bearer token in the Authorization header")
			return
		case !ok:
			abort(c, errNotAuthenticated, "the Authorization header must be \"Bearer <token>\" (a JWT or an API key)")
			return
		}
		if dispatcher.IsAPIKey(raw) {
			a.authenticateKey(c, raw)
			return
		}
		var claims tokenClaims
		tok, err := a.parser.ParseWithClaims(raw, &claims, a.keyFunc(c.Request.Context()))
		if err != nil {
			w, why := a.refusal(tok, err)
			abort(c, w, why)
			return
		}
		if _, ok := tok.Header["crit"]; ok {
			// RFC 7515 §4.1.11: the token is invalid to a recipient that
			// does not understand its critical extensions, and the
			// dispatcher understands none (nor may crit be empty).
			abort(c, errTokenUnknown, "access token has critical header parameters (crit), which the dispatcher does not understand")
			return
		}
		if err := strictClaims(tok.Raw); err != nil {
			abort(c, errTokenUnknown, err.Error())
			return
		}
		if strings.TrimSpace(claims.Subject) == "" {
			// Audit entries and rate limits are keyed by it: a token
			// without one would act as nobody in particular.
			abort(c, errTokenUnknown, "access token must carry a subject (the sub claim)")
			return
		}
		if dispatcher.HasBidiControls(claims.Subject) || dispatcher.PosesAsReserved(claims.Subject) {
			// An API key's subject, or the dispatcher's own, however
			// spelt: the audit trail would record a person's changes as
			// the key's or as the dispatcher's own work.
			abort(c, errTokenUnknown, "access token's subject "+reservedSubject)
			return
		}
		if !dispatcher.ValidTenant(claims.Tenant) {
			// It goes into workflow IDs: a tenant that could hold a ':'
			// could reach into another's.
			abort(c, errTokenUnknown, "access token's tenant claim must be 1 to 64 letters, digits, '_' or '-'")
			return
		}
		if a.jwksTenant && claims.Tenant == "" && tok.Method.Alg() != jwt.SigningMethodHS256.Alg() {
			abort(c, errTokenUnknown, "access token carries no tenant claim, which this deployment requires of its identity provider's tokens (DISPATCHER_JWKS_REQUIRE_TENANT)")
			return
		}
		p := principal{Subject: claims.Subject, Tenant: claims.Tenant, Permissions: make(map[string]bool, len(claims.Permissions))}
		for _, perm := range claims.Permissions {
			p.Permissions[perm] = true
		}
		setPrincipal(c, p)
	}
}

// setPrincipal makes p the request's principal, and its caller
// (dispatcher.Caller) in the request's context, which the store scopes
// to and the audit trail records.
func setPrincipal(c *gin.Context, p principal) {
	c.Set(principalKey{}, p)
	id, _ := c.Get(requestIDKey{})
	rid, _ := id.(string)
	c.Request = c.Request.WithContext(dispatcher.WithCaller(c.Request.Context(), dispatcher.Caller{
		Subject: p.Subject, Tenant: p.Tenant, ClientAddr: c.RemoteIP(), RequestID: rid,
	}))
}

// refuseAuthorizations refuses a request with more than one Authorization
// header, and says whether it did: a proxy in front may read another of
// them than the dispatcher.
func refuseAuthorizations(c *gin.Context) bool {
	if len(c.Request.Header.Values("Authorization")) > 1 {
		abort(c, errNotAuthenticated, "more than one Authorization header: send one")
		return true
	}
	return false
}

// bearerToken extracts the token from an Authorization header. The scheme is
// case-insensitive (RFC 7235 §2.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// keyFunc picks the verification key by the token's algorithm, so that an
// HS256 token only ever meets the secret and an RS256 or ES256 token only the
// key set. ctx is the request's: a key-set fetch for an unknown key id stops
// when the client goes away.
func (a *authenticator) keyFunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		switch alg := t.Method.Alg(); {
		case alg == jwt.SigningMethodHS256.Alg() && a.secret != nil:
			return a.secret, nil
		case (alg == jwt.SigningMethodRS256.Alg() || alg == jwt.SigningMethodES256.Alg()) && a.jwks != nil:
			return a.jwks.key(ctx, t)
		default:
			// The parser's method list already refuses these; this is the
			// second lock on the same door.
			return nil, fmt.Errorf("no verification key for algorithm %s", alg)
		}
	}
}

// refusal maps a parse error to its wire error and a short reason safe to
// show the client: fixed texts only, never the error's own text, which may
// quote parts of the token.
func (a *authenticator) refusal(tok *jwt.Token, err error) (wireError, string) {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		// Only reached once the signature holds: the parser checks claims
		// last. An exp past int64's seconds reads as long expired.
		if err := strictClaims(tok.Raw); err != nil {
			return errTokenUnknown, err.Error()
		}
		return errTokenExpired, "access token has expired"
	case errors.As(err, &typeErr):
		return errTokenUnknown, fmt.Sprintf("access token claim %q has the wrong type", typeErr.Field)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errTokenUnknown, "access token is malformed"
	case tok == nil || tok.Method == nil || !slices.Contains(a.methods, tok.Method.Alg()):
		return errTokenUnknown, "access token signing algorithm is not accepted (accepted: " + strings.Join(a.methods, ", ") + ")"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return errTokenUnknown, "access token is signed by an unknown key"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errTokenUnknown, "access token signature is invalid"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errTokenUnknown, "access token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errTokenUnknown, "access token has the wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errTokenUnknown, "access token has the wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errTokenUnknown, "access token must carry the claims " + strings.Join(a.required, ", ")
	default:
		return errTokenUnknown, "access token is invalid"
	}
}

// require returns the middleware that lets a request through only when its
// principal holds perm, and otherwise answers 403 code 10 naming perm.
// Without authenticate before it there is no principal, and the request is
// refused.
func require(perm string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !principalOf(c).Permissions[perm] {
			abort(c, errNoPermission, "permission "+perm+" is required")
		}
	}
}

// principalOf returns the principal authenticate stored, or the zero
// principal (no subject, no permissions) when there is none.
func principalOf(c *gin.Context) principal {
	v, _ := c.Get(principalKey{})
	p, _ := v.(principal)
	return p
}

// localOnly guards an API without authentication, which only a loopback
// address serves (the serve command sees to that): a web page its user
// visits could still send it requests (a form's POST needs no preflight),
// or reach it under a name of its own that resolves to 127.0.0.1 (DNS
// rebinding). So it answers only requests addressed to a loopback name or
// address, and none from a page of another origin than its own and the
// trusted ones (the Temporal Web UIs of the codec).
func localOnly(trusted []string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !loopback(c.Request.Host) {
			abort(c, errNoPermission, "authentication is disabled: the API answers only requests to localhost or a loopback address, not to "+strconv.Quote(c.Request.Host))
			return
		}
		o := c.GetHeader("Origin")
		if u, err := url.Parse(o); o == "" || err == nil && u.Host == c.Request.Host || slices.Contains(trusted, strings.ToLower(o)) {
			return
		}
		abort(c, errNoPermission, "authentication is disabled: the API answers no request from a page of another origin ("+strconv.Quote(o)+")")
	}
}

// TokenClaims is what SignToken puts in a token. Issuer and Audience are only
// needed when the server checks them (AuthConfig.Issuer and Audience).
type TokenClaims struct {
	Subject     string        // who the token speaks for; shows up in audit logs
	Permissions []string      // each one of Permissions()
	TTL         time.Duration // how long the token is valid from now
	Issuer      string        // iss; optional
	Audience    string        // aud; optional
	Tenant      string        // tenant; empty for the implicit tenant
}

// reservedSubject says why a subject is refused (PosesAsReserved,
// HasBidiControls).
const reservedSubject = "must not read as apikey:…, which names API keys, nor as " + dispatcher.CallerService +
	", which names the dispatcher itself, nor hold bidirectional controls (U+202E), which show it other than it is"

// SignToken mints an HS256 access token with sub, iat, exp (now+TTL),
// permissions and, when set, iss, aud and tenant. It is what `dispatcher token` prints.
// It refuses short secrets, an empty subject, a non-positive TTL and unknown
// permission names, so a typo fails here and not at the first request.
func SignToken(secret []byte, tc TokenClaims, now time.Time) (string, error) {
	if err := CheckSecret(secret); err != nil {
		return "", err
	}
	switch {
	case strings.TrimSpace(tc.Subject) == "":
		return "", errors.New("a token needs a subject")
	case dispatcher.HasBidiControls(tc.Subject) || dispatcher.PosesAsReserved(tc.Subject):
		// Refused when used: a typo fails here.
		return "", fmt.Errorf("subject %q: %s", tc.Subject, reservedSubject)
	}
	if tc.TTL <= 0 {
		return "", fmt.Errorf("a token's lifetime must be positive, not %s", tc.TTL)
	}
	if !dispatcher.ValidTenant(tc.Tenant) {
		return "", fmt.Errorf("tenant %q: a tenant is 1 to 64 letters, digits, '_' or '-'", tc.Tenant)
	}
	known := Permissions()
	for _, p := range tc.Permissions {
		if !slices.Contains(known, p) {
			return "", fmt.Errorf("unknown permission %q; known ones are %s", p, strings.Join(known, ", "))
		}
	}
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   tc.Subject,
			Issuer:    tc.Issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(tc.TTL)),
		},
		Permissions: tc.Permissions,
		Tenant:      tc.Tenant,
	}
	if claims.Permissions == nil {
		claims.Permissions = []string{} // "permissions": [] rather than null
	}
	if tc.Audience != "" {
		claims.Audience = jwt.ClaimStrings{tc.Audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
