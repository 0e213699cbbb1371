package api

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/gin-gonic/gin"
)

// keyLookup is what authentication needs of the store to accept API keys.
type keyLookup interface {
	// FindAPIKeyByHash returns the key with the hash, revoked and expired
	// ones included, or ENOTFOUND.
	FindAPIKeyByHash(ctx context.Context, hash string) (dispatcher.APIKey, error)
	// TouchAPIKey records a use of the key at at, at most once per
	// dispatcher.APIKeyUseResolution.
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
}

// authenticateKey turns an API key into its principal, or answers 401:
// code 117 for an unknown or revoked key, 118 for an expired one. Every
// request looks the key up: a revocation holds from the next request on,
// in every process, with no cache to invalidate.
func (a *authenticator) authenticateKey(c *gin.Context, key string) {
	if a.keys == nil {
		abort(c, errTokenUnknown, "API keys are not accepted by this server")
		return
	}
	ctx := c.Request.Context()
	now := time.Now()
	if a.now != nil {
		now = a.now()
	}
	k, err := a.keys.FindAPIKeyByHash(ctx, dispatcher.APIKeyHash(key))
	switch {
	case dispatcher.ErrorCode(err) == dispatcher.ENOTFOUND:
		abort(c, errTokenUnknown, "API key is unknown")
		return
	case err != nil:
		fail(c, err)
		return
	case !k.Revoked.IsZero():
		abort(c, errTokenUnknown, "API key has been revoked")
		return
	case k.Expired(now):
		abort(c, errTokenExpired, "API key has expired")
		return
	}
	if now.Sub(k.LastUsed) >= dispatcher.APIKeyUseResolution {
		// Not worth refusing the request over: the key is valid.
		if err := a.keys.TouchAPIKey(ctx, k.ID, now); err != nil {
			logger(ctx).WarnContext(ctx, "could not record an API key's use", "api_key", k.ID, "err", err)
		}
	}
	p := principal{Subject: dispatcher.APIKeySubject(k.ID), Tenant: k.Tenant, EventTypes: k.EventTypes, APIKey: true, Name: k.Name,
		Expires: k.Expires, Permissions: make(map[string]bool, len(k.Permissions))}
	for _, perm := range keyPermissions(k) {
		p.Permissions[perm] = true
	}
	setPrincipal(c, p)
}

// maySend refuses with 403 code 10, naming the event type, a request
// whose principal is an API key restricted to event types that do not
// include every one of events: a batch is accepted whole or not at all.
func maySend(c *gin.Context, events []dispatcher.Event) bool {
	for i, ev := range events {
		field := "type"
		if len(events) > 1 {
			field = fmt.Sprintf("[%d].type", i)
		}
		if !mayAct(c, "send", field, ev.Type) {
			return false
		}
	}
	return true
}

// mayAct refuses with 403 code 10, naming field and the type, a request
// to verb ("send", "replay", …) events of type typ ("" for every type)
// whose principal is an API key restricted to other types.
func mayAct(c *gin.Context, verb, field, typ string) bool {
	p := principalOf(c)
	if p.EventTypes == nil || typ != "" && slices.Contains(p.EventTypes, typ) {
		return true
	}
	which := fmt.Sprintf("of type %q", typ)
	if typ == "" {
		which = "of every type (name one)"
	}
	abort(c, errNoPermission, fmt.Sprintf("%s: this API key may not %s events %s; it may %s %s",
		field, verb, which, verb, strings.Join(p.EventTypes, ", ")))
	return false
}

// dispatchOfOwnType refuses, as mayAct does, to verb the dispatch in the
// path for an API key restricted to other event types than its event's:
// a replay sends its mails and calls its functions again, a cancel or a
// release changes what happens to them.
func (s *Server) dispatchOfOwnType(verb string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if principalOf(c).EventTypes == nil {
			return
		}
		d, err := s.executions.Get(c.Request.Context(), c.Param("workflowId"), "")
		if err != nil {
			fail(c, err)
			return
		}
		// A run that failed before it read its configuration has no type
		// among its search attributes: its event says it.
		mayAct(c, verb, "workflowId", cmp.Or(d.EventType, d.Event.Type))
	}
}

// bulkReplayOfOwnType refuses, as mayAct does, to verb the bulk replay in
// the path for an API key restricted to other event types than its
// filter's.
func (s *Server) bulkReplayOfOwnType(verb string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if principalOf(c).EventTypes == nil {
			return
		}
		st, err := s.executions.BulkReplay(c.Request.Context(), c.Param("id"))
		if err != nil {
			fail(c, err)
			return
		}
		mayAct(c, verb+" a bulk replay of", "id", st.Request.Filter.EventType)
	}
}

// createAPIKey answers POST /apikeys/v1. The key is in this answer only.
// It acts in the creator's tenant, with permissions the creator holds
// and, when the creator is itself restricted to event types, within
// those (inheriting them when the request names none).
func (s *Server) createAPIKey(c *gin.Context) {
	var req wire.APIKeyRequest
	if !bindJSON(c, &req) {
		return
	}
	k, err := req.ToDomain()
	if err != nil {
		fail(c, err)
		return
	}
	creator := principalOf(c)
	if k.EventTypes == nil && creator.EventTypes != nil {
		k.EventTypes = creator.EventTypes
	}
	// A key that expires makes none that outlives it: revoking a key
	// revokes those it made, and expiring should not be weaker.
	if k.Expires.IsZero() {
		k.Expires = creator.Expires
	}
	if !creator.Expires.IsZero() && k.Expires.After(creator.Expires) {
		abort(c, errNoPermission, fmt.Sprintf("expiresAt: the key you use expires at %s, so a key you create must expire by then", creator.Expires.UTC().Format(time.RFC3339)))
		return
	}
	if ttl := s.cfg.APIKeyMaxTTL; ttl > 0 {
		// A deployment's bound: a stolen token, however short-lived,
		// makes no key that outlives it by more.
		by := s.now().Add(ttl)
		if k.Expires.IsZero() {
			k.Expires = by
		} else if k.Expires.After(by) {
			abort(c, errFieldFormat, fmt.Sprintf("expiresAt: keys here expire within %s of their creation (DISPATCHER_APIKEY_MAX_TTL), by %s",
				ttl, by.UTC().Format(time.RFC3339)))
			return
		}
	}
	key, hash := dispatcher.NewAPIKey()
	k.Hash = hash
	if err := k.Validate(s.now()); err != nil {
		fail(c, err)
		return
	}
	known := Permissions()
	for i, p := range req.Permissions {
		if !slices.Contains(known, p) {
			abort(c, errFieldFormat, fmt.Sprintf("permissions[%d]: unknown permission %q; known ones are %s", i, p, strings.Join(known, ", ")))
			return
		}
	}
	if req.EventTypes != nil && !slices.Contains(k.Permissions, PermCreateEvents) {
		// It would restrict nothing: the key sends no events.
		abort(c, errFieldFormat, fmt.Sprintf("eventTypes: limits the events a key sends, and this one may send none: add %s to its permissions, or leave eventTypes out", PermCreateEvents))
		return
	}
	if k.EventTypes != nil {
		// Held to its types, it could otherwise move another type's
		// dispatcher to one of them, or point a function that another
		// type's dispatchers call elsewhere, and send those calls.
		if perms := slices.DeleteFunc(slices.Clone(k.Permissions), func(p string) bool { return !slices.Contains(ConfigPermissions(), p) }); len(perms) > 0 {
			abort(c, errFieldFormat, fmt.Sprintf("permissions: a key held to event types (eventTypes) may not change the configuration, which every type shares: leave out %s, or eventTypes", strings.Join(perms, ", ")))
			return
		}
	}
	switch field, what := creator.beyond(k); field {
	case "permissions":
		abort(c, errNoPermission, fmt.Sprintf("permissions: you do not hold %s, so a key you create cannot either", what))
		return
	case "eventTypes":
		abort(c, errNoPermission, fmt.Sprintf("eventTypes: you may not send %s, so a key you create cannot either", what))
		return
	}
	if err := s.store.CreateAPIKey(c.Request.Context(), &k); err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, wire.FromAPIKey(k, key))
}

// listAPIKeys answers GET /apikeys/v1?<rql>: the tenant's keys that are
// not revoked, never the keys themselves.
func (s *Server) listAPIKeys(c *gin.Context) {
	fields := func(k dispatcher.APIKey) map[string]string {
		return map[string]string{"id": k.ID, "name": k.Name, "createdBy": k.CreatedBy}
	}
	q, err := memoryRQL(fields, wire.APIKey{}).parse(c.Request.URL.RawQuery)
	if err != nil {
		fail(c, err)
		return
	}
	keys, err := s.store.FindAPIKeys(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	page, err := pageOf(keys, q, fields, func(k dispatcher.APIKey) any {
		k.Permissions = keyPermissions(k)
		return wire.FromAPIKey(k, "")
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

// revokeAPIKey answers DELETE /apikeys/v1/{id}: the key is refused from
// the next request on. A key of another tenant is unknown (404).
func (s *Server) revokeAPIKey(c *gin.Context) {
	if caller := principalOf(c); caller.APIKey && !s.mayRevoke(c, caller, c.Param("id")) {
		return
	}
	if err := s.store.RevokeAPIKey(c.Request.Context(), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.Affected{AffectedRecords: 1})
}

// mayRevoke refuses with 403, unless caller (an API key) could have made
// the key with id (beyond). The keys that key made go with it, and they
// are within it. Before, a key held to one event type could revoke every
// producer's key of its tenant. An unknown id is left to the store's 404.
func (s *Server) mayRevoke(c *gin.Context, caller principal, id string) bool {
	keys, err := s.store.FindAPIKeys(c.Request.Context())
	if err != nil {
		fail(c, err)
		return false
	}
	i := slices.IndexFunc(keys, func(k dispatcher.APIKey) bool { return k.ID == id })
	if i < 0 {
		return true
	}
	switch field, what := caller.beyond(keys[i]); field {
	case "permissions":
		abort(c, errNoPermission, fmt.Sprintf("id: API key %s holds %s, which the key you use does not, so it may not revoke it", id, what))
		return false
	case "eventTypes":
		abort(c, errNoPermission, fmt.Sprintf("id: API key %s may send %s, which the key you use may not, so it may not revoke it", id, what))
		return false
	}
	return true
}

// keyPermissions are the permissions k holds: those it was made with, but
// the configuration's when it is held to event types (ConfigPermissions),
// which a key made before they were refused together may still list.
func keyPermissions(k dispatcher.APIKey) []string {
	if k.EventTypes == nil {
		return k.Permissions
	}
	return slices.DeleteFunc(slices.Clone(k.Permissions), func(p string) bool { return slices.Contains(ConfigPermissions(), p) })
}

// beyond names the first thing k may do that p may not: a permission
// ("permissions"), or events of a type, or of every type ("eventTypes");
// "" when p could have made k.
func (p principal) beyond(k dispatcher.APIKey) (field, what string) {
	for _, perm := range keyPermissions(k) {
		if !p.Permissions[perm] {
			return "permissions", perm
		}
	}
	switch {
	case p.EventTypes == nil:
	case k.EventTypes == nil:
		return "eventTypes", "events of every type"
	default:
		for _, t := range k.EventTypes {
			if !slices.Contains(p.EventTypes, t) {
				return "eventTypes", fmt.Sprintf("events of type %q", t)
			}
		}
	}
	return "", ""
}
