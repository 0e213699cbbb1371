// Package api serves the HTTP surface of the dispatcher with gin: the
// Extra Horizon compatible dispatcher CRUD, event intake, templates,
// functions, health and metrics. It is the only package that imports gin,
// and the only one that maps domain errors to HTTP statuses.
package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/dispatcherhq/dispatcher"
	"github.com/gin-gonic/gin"
)

// Store is what the API needs of the configuration store. Methods return
// *dispatcher.Error values: ENOTFOUND, ECONFLICT, EINVALID, EREQUIRED,
// EQUERY; anything else is a 500.
type Store interface {
	FindDispatchers(ctx context.Context, q dispatcher.Query) ([]dispatcher.Dispatcher, int, error)
	FindDispatcher(ctx context.Context, id string) (dispatcher.Dispatcher, error)
	CreateDispatcher(ctx context.Context, d *dispatcher.Dispatcher) error
	UpdateDispatcher(ctx context.Context, id string, u dispatcher.DispatcherUpdate) error
	DeleteDispatcher(ctx context.Context, id string) error
	CreateAction(ctx context.Context, dispatcherID string, a *dispatcher.Action) error
	UpdateAction(ctx context.Context, dispatcherID, actionID string, u dispatcher.ActionUpdate) error
	DeleteAction(ctx context.Context, dispatcherID, actionID string) error
}

// Check reports whether a dependency answers; /readyz runs them all.
type Check func(ctx context.Context) error

// Config is the API's configuration.
type Config struct {
	Auth         AuthConfig
	MaxBodyBytes int64 // request bodies above it get 413
}

// Server holds the API's dependencies; its methods are the handlers.
type Server struct {
	cfg    Config
	store  Store
	auth   *authenticator
	checks map[string]Check
}

// NewServer returns the API's HTTP handler. ctx bounds background work
// (JWKS refresh). checks are the readiness checks, by name.
func NewServer(ctx context.Context, cfg Config, store Store, checks map[string]Check) (http.Handler, error) {
	auth, err := newAuthenticator(ctx, cfg.Auth)
	if err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes <= 0 {
		return nil, fmt.Errorf("max body bytes must be positive, got %d", cfg.MaxBodyBytes)
	}
	s := &Server{cfg: cfg, store: store, auth: auth, checks: checks}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.ContextWithFallback = true
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		abort(c, errResourceUnknown, "no route for "+c.Request.Method+" "+c.Request.URL.Path)
	})
	r.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, errorBody{Code: 16, Name: errResourceUnknown.Name, Message: "method " + c.Request.Method + " is not allowed on " + c.Request.URL.Path})
	})
	s.routes(r)
	return r, nil
}

// validID refuses a malformed id path parameter with 400 code 12 before
// any handler sees it.
func validID(params ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		for _, p := range params {
			if id := c.Param(p); !dispatcher.ValidID(id) {
				abort(c, errIDFormat, fmt.Sprintf("%s: %q is not a valid id (24 lowercase hexadecimal characters)", p, id))
				return
			}
		}
		c.Next()
	}
}
