package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// How often the key set is fetched: in the background at least hourly and
// at most every five minutes (as its Cache-Control says), and on a token
// with an unknown key id at most every ten seconds. Anyone can send a
// token with a forged kid: the wait keeps them from making us hammer the
// identity provider, and is short, for a forged kid sent just before the
// provider rotates its keys keeps the new key out until the wait is over.
const (
	jwksMaxInterval    = time.Hour
	jwksMinInterval    = 5 * time.Minute
	jwksUnknownKeyWait = 10 * time.Second
)

// keySet verifies RS256 and ES256 tokens against a JWK set fetched from a
// URL and refreshed in the background. Each refresh replaces the whole
// set, so a key the provider removes stops verifying tokens.
type keySet struct {
	cache *jwk.Cache
	url   string
	now   func() time.Time

	mu          sync.Mutex
	lastRefresh time.Time
}

// newKeySet starts fetching the key set at url until ctx ends. An
// unreachable provider is not fatal: it may come up after us.
func newKeySet(ctx context.Context, url string) (*keySet, error) {
	u, err := neturl.Parse(url)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", url)
	}
	if !keysFrom(u) {
		return nil, fmt.Errorf("%q: the keys must be fetched over https (plain http only from a loopback address), or anyone between the dispatcher and the provider could sign tokens", url)
	}
	cache, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		return nil, err
	}
	// The client per key set: jwx gives a key set registered without one
	// its own, whatever the cache's.
	err = cache.Register(ctx, url, jwk.WithHTTPClient(jwksClient), jwk.WithWaitReady(false),
		jwk.WithMaxInterval(jwksMaxInterval), jwk.WithMinInterval(jwksMinInterval))
	if err != nil {
		return nil, err
	}
	return &keySet{cache: cache, url: url, now: time.Now}, nil
}

// keysFrom reports whether a key set may be fetched from u: whoever can
// answer the fetch signs tokens, and on plain http that is anyone on the
// way to the provider.
func keysFrom(u *neturl.URL) bool {
	return u.Scheme == "https" || u.Scheme == "http" && loopback(u.Host)
}

// jwksClient fetches key sets, following redirects only where the URL
// itself could point (keysFrom), within a bounded time.
var jwksClient = &http.Client{
	Timeout: 30 * time.Second,
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !keysFrom(req.URL) {
			return fmt.Errorf("the key set redirects to %s, not over https", req.URL.Redacted())
		}
		if len(via) >= 10 {
			return errors.New("the key set redirects more than 10 times")
		}
		return nil
	},
}

var errUnknownKey = errors.New("unknown key id")

// key returns the public key that verifies t: the key set's key with t's
// kid, of the type t's algorithm needs.
func (k *keySet) key(ctx context.Context, t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errUnknownKey
	}
	key, ok := k.lookup(ctx, kid)
	if !ok && k.mayRefresh() {
		if _, err := k.cache.Refresh(ctx, k.url); err == nil {
			key, ok = k.lookup(ctx, kid)
		}
	}
	if !ok {
		return nil, errUnknownKey
	}
	if alg, ok := key.Algorithm(); ok && alg.String() != t.Method.Alg() {
		return nil, fmt.Errorf("key %s is for %s, not %s", kid, alg, t.Method.Alg())
	}
	var raw any
	if err := jwk.Export(key, &raw); err != nil {
		return nil, err
	}
	switch pub := raw.(type) {
	case *rsa.PublicKey:
		if t.Method.Alg() == jwt.SigningMethodRS256.Alg() {
			return pub, nil
		}
	case *ecdsa.PublicKey:
		if t.Method.Alg() == jwt.SigningMethodES256.Alg() {
			return pub, nil
		}
	}
	return nil, fmt.Errorf("key %s does not fit %s", kid, t.Method.Alg())
}

// lookup returns the key set's first key with kid that may verify
// signatures: one whose use is "enc" (RFC 7517 §4.2), or whose key_ops
// leave out "verify" (§4.3), is the provider's for something else.
func (k *keySet) lookup(ctx context.Context, kid string) (jwk.Key, bool) {
	set, err := k.cache.Lookup(ctx, k.url)
	if err != nil {
		return nil, false
	}
	for i := range set.Len() {
		key, _ := set.Key(i)
		id, _ := key.KeyID()
		use, hasUse := key.KeyUsage()
		ops, hasOps := key.KeyOps()
		if id == kid && (!hasUse || use == string(jwk.ForSignature)) && (!hasOps || slices.Contains(ops, jwk.KeyOpVerify)) {
			return key, true
		}
	}
	return nil, false
}

// mayRefresh reports whether an unknown kid may trigger a fetch now.
func (k *keySet) mayRefresh() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if !k.lastRefresh.IsZero() && now.Sub(k.lastRefresh) < jwksUnknownKeyWait {
		return false
	}
	k.lastRefresh = now
	return true
}
