package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// codecCORS lets the browsers of the configured Temporal Web UIs call the
// codec endpoint: it answers their preflight requests and marks the
// answers to them readable. Other origins get no CORS headers, so their
// browsers keep the answers from their pages. The access token travels in
// the Authorization header, never in a cookie.
func codecCORS(origins []string) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Add("Vary", "Origin")
		if o := strings.ToLower(c.GetHeader("Origin")); o != "" && slices.Contains(origins, o) {
			h.Set("Access-Control-Allow-Origin", o)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			// What the Web UI sends: the user's token (with
			// codec.passAccessToken), the namespace of the payloads, and
			// after an OIDC sign-in the user's ID token, which the codec
			// does not read. Before, without Authorization-Extras, the
			// browser blocked every decode of a signed-in user.
			h.Set("Access-Control-Allow-Headers", "Authorization, Authorization-Extras, Content-Type, X-Namespace")
			h.Set("Access-Control-Max-Age", "600")
		}
		if c.Request.Method == http.MethodOptions {
			c.AbortWithStatus(http.StatusOK)
		}
	}
}

// apiCORS lets the pages of the configured origins (an admin tool's web
// app, the Extra Horizon SDK in a browser) call the API with a token or an
// API key: it answers their preflight requests, which carry no token, and
// marks every answer to them readable, errors included, so that the page
// sees a 401 or a 400 and its reason rather than a network error. Other
// origins get no CORS headers and their preflights the 405 of any unknown
// method, so their browsers keep the answers from their pages. The token
// travels in the Authorization header, never in a cookie; credentials are
// allowed, since the SDK's proxy client sends every request with them
// (withCredentials), and no cookie, nor any other credential the browser
// sends by itself, is read. The codec endpoint has its own (codecCORS).
func apiCORS(origins []string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, "/codec/") {
			return
		}
		h := c.Writer.Header()
		h.Add("Vary", "Origin")
		o := c.GetHeader("Origin")
		if !slices.Contains(origins, strings.ToLower(o)) {
			return
		}
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Credentials", "true")
		if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE")
			// Whatever headers the page sends (Authorization, Content-Type,
			// Idempotency-Key, the SDK's X-User-Agent): the origin is trusted.
			if rh := c.GetHeader("Access-Control-Request-Headers"); rh != "" {
				h.Set("Access-Control-Allow-Headers", rh)
			}
			h.Set("Access-Control-Max-Age", "600")
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", "ETag, Retry-After, WWW-Authenticate, X-Request-Id")
	}
}
