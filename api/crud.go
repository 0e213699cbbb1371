package api

import (
	"context"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// collection serves the CRUD routes of a collection that a list filters,
// sorts and pages in memory (templates, functions): on the ids and names
// of all its items (names), then loading those of the page (load). T is
// the domain type, U its update, R the request body, which converts to an
// update.
type collection[T any, U interface {
	comparable
	Apply(*T) error
}, R interface{ Update() U }] struct {
	what   string // "template", for messages
	store  Store
	names  func(Store, context.Context) ([]T, error)
	load   func(s Store, ctx context.Context, ids []string) ([]T, error)
	find   func(s Store, ctx context.Context, id string) (T, error)
	create func(Store, context.Context, *T) error
	// update and delete apply to the item as it was last updated at
	// ifUpdated, unless it is zero; update returns when it is updated now.
	update  func(s Store, ctx context.Context, id string, u U, ifUpdated time.Time) (time.Time, error)
	delete  func(s Store, ctx context.Context, id string, ifUpdated time.Time) error
	updated func(T) time.Time         // its version: what its ETag says
	fields  func(T) map[string]string // what RQL filters and sorts on
	toWire  func(T) any
	// check, when not nil, vets an item as it is about to be saved,
	// beyond its own validation: against the server's configuration.
	// A change is checked on the item it leaves, which the store writes
	// only if the item has not changed since.
	check func(ctx context.Context, it T) error
	// checkOn says what check reads of an item: a change that leaves it
	// as it was checked is not checked again.
	checkOn func(T) string
}

// changeTries is how many times a change is tried when the item changes
// between its read and its write: each time another change was written,
// so that writers that race all get their turn (the request's deadline
// bounds the checks' look-ups).
const changeTries = 64

// listAll answers GET /<collection>/v1?<rql>.
func (col collection[T, U, R]) listAll(c *gin.Context) {
	q, err := memoryRQL(col.fields, col.toWire(*new(T))).parse(c.Request.URL.RawQuery)
	if err != nil {
		fail(c, err)
		return
	}
	names, err := col.names(col.store, c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	chosen, total, err := choose(names, q, col.fields)
	if err != nil {
		fail(c, err)
		return
	}
	ids := make([]string, len(chosen))
	for i, it := range chosen {
		ids[i] = col.fields(it)["id"]
	}
	// Loaded a few at a time: a template may be a MiB. One deleted
	// meanwhile is left out.
	p, err := fillPage(total, q, chunks(ids, loadChunk, func(ids []string) ([]any, error) {
		items, err := col.load(col.store, c.Request.Context(), ids)
		return wireOf(items, col.toWire), err
	}))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// get answers GET /<collection>/v1/{id}.
func (col collection[T, U, R]) get(c *gin.Context) {
	it, err := col.find(col.store, c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	setETag(c, col.updated(it))
	c.JSON(http.StatusOK, col.toWire(it))
}

// post answers POST /<collection>/v1.
func (col collection[T, U, R]) post(c *gin.Context) {
	var req R
	if !bindJSON(c, &req) {
		return
	}
	var it T
	if err := req.Update().Apply(&it); err != nil {
		fail(c, err)
		return
	}
	if col.check != nil {
		if err := col.check(c.Request.Context(), it); err != nil {
			fail(c, err)
			return
		}
	}
	if err := col.create(col.store, c.Request.Context(), &it); err != nil {
		fail(c, err)
		return
	}
	setETag(c, col.updated(it))
	c.JSON(http.StatusOK, col.toWire(it))
}

// put answers PUT /<collection>/v1/{id}.
func (col collection[T, U, R]) put(c *gin.Context) {
	var req R
	if !bindJSON(c, &req) {
		return
	}
	u := req.Update()
	if u == *new(U) {
		abort(c, errEmptyBody, "the body changes nothing (a null leaves its field as it is): give at least one field of the "+col.what)
		return
	}
	id := c.Param("id")
	ifUpdated, ok := ifMatch(c, col.what, id, col.version(id))
	if !ok {
		return
	}
	var at time.Time
	var err error
	if col.check != nil {
		at, err = col.checkedUpdate(c.Request.Context(), id, u, ifUpdated)
	} else {
		at, err = col.update(col.store, c.Request.Context(), id, u, ifUpdated)
	}
	if err != nil {
		fail(c, err)
		return
	}
	setETag(c, at)
	c.JSON(http.StatusOK, wire.Affected{AffectedRecords: 1})
}

// checkedUpdate checks the item as u leaves it, then has the store apply u
// to that item only: the store validates but knows no policy. When the
// item changes in between, it starts again, unless the change was made
// against a version (ifUpdated), which is then gone; it checks again only
// when what the check reads (checkOn) is not what it checked. Before, it
// tried three times: of 20 changes at once, a few gave up (409, "kept
// changing"), which Extra Horizon clients do not send again.
func (col collection[T, U, R]) checkedUpdate(ctx context.Context, id string, u U, ifUpdated time.Time) (time.Time, error) {
	checked, checkedOn := false, ""
	for try := 1; ; try++ {
		it, err := col.find(col.store, ctx, id)
		if err != nil {
			return time.Time{}, err
		}
		version := col.updated(it)
		if !ifUpdated.IsZero() && !version.Equal(ifUpdated) {
			return time.Time{}, dispatcher.Errorf(dispatcher.ECHANGED, "the %s with id %s changed since the version this change was made against: get it again and make the change on what it is now", col.what, id)
		}
		if err := u.Apply(&it); err != nil {
			return time.Time{}, err
		}
		if on := col.checkOn(it); !checked || on != checkedOn {
			if err := col.check(ctx, it); err != nil {
				return time.Time{}, err
			}
			checked, checkedOn = true, on
		}
		at, err := col.update(col.store, ctx, id, u, version)
		switch {
		case dispatcher.ErrorCode(err) != dispatcher.ECHANGED:
			return at, err
		case try == changeTries && ifUpdated.IsZero():
			return time.Time{}, dispatcher.Errorf(dispatcher.ESTATE, "the %s kept changing while this change was checked; send it again", col.what)
		}
		// Another change was written first: a wait of up to try ms, at
		// random, spreads the writers that race.
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(rand.N(time.Duration(try) * time.Millisecond)):
		}
	}
}

// version finds the version of the item with id, for ifMatch.
func (col collection[T, U, R]) version(id string) func(ctx context.Context) (time.Time, error) {
	return func(ctx context.Context) (time.Time, error) {
		it, err := col.find(col.store, ctx, id)
		return col.updated(it), err
	}
}

// remove answers DELETE /<collection>/v1/{id}.
func (col collection[T, U, R]) remove(c *gin.Context) {
	id := c.Param("id")
	ifUpdated, ok := ifMatch(c, col.what, id, col.version(id))
	if !ok {
		return
	}
	if err := col.delete(col.store, c.Request.Context(), id, ifUpdated); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.Affected{AffectedRecords: 1})
}

func (s *Server) templates() collection[dispatcher.Template, dispatcher.TemplateUpdate, wire.TemplateRequest] {
	return collection[dispatcher.Template, dispatcher.TemplateUpdate, wire.TemplateRequest]{
		what: "template", store: s.store, names: Store.TemplateNames, load: Store.FindTemplates, find: Store.FindTemplate,
		create: Store.CreateTemplate, update: Store.UpdateTemplate, delete: Store.DeleteTemplate,
		updated: func(t dispatcher.Template) time.Time { return t.Updated },
		fields:  func(t dispatcher.Template) map[string]string { return map[string]string{"id": t.ID, "name": t.Name} },
		toWire:  func(t dispatcher.Template) any { return wire.FromTemplate(t) },
	}
}

func (s *Server) functions() collection[dispatcher.Function, dispatcher.FunctionUpdate, wire.FunctionRequest] {
	return collection[dispatcher.Function, dispatcher.FunctionUpdate, wire.FunctionRequest]{
		what: "function", store: s.store, names: Store.FunctionNames, load: Store.FindFunctions, find: Store.FindFunction,
		create: Store.CreateFunction, update: Store.UpdateFunction, delete: Store.DeleteFunction,
		updated: func(f dispatcher.Function) time.Time { return f.Updated },
		fields:  func(f dispatcher.Function) map[string]string { return map[string]string{"id": f.ID, "name": f.Name} },
		toWire:  func(f dispatcher.Function) any { return wire.FromFunction(f) },
		check: func(ctx context.Context, f dispatcher.Function) error {
			return s.outbound.For(dispatcher.CallerOf(ctx).Tenant).CheckFunction(ctx, s.resolver, f)
		},
		checkOn: func(f dispatcher.Function) string { return f.Kind + "\x00" + f.URL + "\x00" + f.TaskQueue },
	}
}
