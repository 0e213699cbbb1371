package dispatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dispatcherhq/dispatcher/workflows"
)

// SearchAttributes returns the custom search attributes of a dispatch by
// name and type, as a namespace must have them.
func SearchAttributes() map[string]enums.IndexedValueType {
	out := map[string]enums.IndexedValueType{}
	for _, k := range workflows.SearchAttributeKeys() {
		out[k.GetName()] = k.GetValueType()
	}
	return out
}

// RegisterSearchAttributes adds the dispatch search attributes that the
// namespace lacks: starting a dispatch sets them, and the Temporal Web UI
// filters dispatches by them.
func RegisterSearchAttributes(ctx context.Context, tc client.Client, namespace string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	have, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enums.IndexedValueType{}
	for name, typ := range SearchAttributes() {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = tc.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	})
	var invalid *serviceerror.InvalidArgument
	if errors.As(err, &invalid) {
		return fmt.Errorf("%w: namespace %q: %s; free slots of the types they need (%s), or give the dispatcher a namespace of its own",
			ErrSearchAttributesRefused, namespace, strings.TrimSuffix(invalid.Message, "."), slotsNeeded(missing))
	}
	if err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}

// ErrSearchAttributesRefused: the namespace refuses the dispatch search
// attributes for good (no slot left of a type they need, on SQL
// visibility): waiting will not change it. Before, the worker waited for
// it for ever, and the intake answered 503 as if a cache were late.
var ErrSearchAttributesRefused = errors.New("temporal refuses the dispatch search attributes")

// slotsNeeded says how many search attributes of each type missing holds.
func slotsNeeded(missing map[string]enums.IndexedValueType) string {
	n := map[string]int{}
	for _, typ := range missing {
		n[typ.String()]++
	}
	var out []string
	for _, typ := range slices.Sorted(maps.Keys(n)) {
		out = append(out, fmt.Sprintf("%d %s", n[typ], typ))
	}
	return strings.Join(out, ", ")
}

// SearchAttributesCheck returns a readiness check that passes once the
// Temporal frontend accepts every dispatch search attribute in a query. A
// server without system.forceSearchAttributesCacheRefreshOnRead (the
// deployments turn it off: it costs a database read per request) answers
// from a search-attribute cache up to a minute old, and refuses a start
// that sets one it does not know yet; the query is answered from the same
// cache. It is asked every second from a goroutine of its own until it
// passes, then every searchAttributesRecheck: a namespace made again (a
// dev server restarted on a new database) has lost them, and every start
// and dispatch failed, the process ready all along, until it restarted.
// Lost, or never registered (an API whose registration at start failed),
// they are registered again, at most once a minute (twice the recheck). The check only reads
// the answer, so calls of the unauthenticated /readyz cost Temporal
// nothing. The goroutine ends with ctx.
func SearchAttributesCheck(ctx context.Context, tc client.Client, namespace string) func(context.Context) error {
	var terms []string
	for name, typ := range SearchAttributes() {
		value := "''"
		switch typ {
		case enums.INDEXED_VALUE_TYPE_BOOL:
			value = "true"
		case enums.INDEXED_VALUE_TYPE_DATETIME:
			value = "'2000-01-01T00:00:00Z'"
		}
		terms = append(terms, name+" = "+value)
	}
	slices.Sort(terms)
	req := &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: strings.Join(terms, " AND ")}
	var last atomic.Pointer[error] // nil while they are usable
	notYet := errors.New("temporal does not accept the dispatch search attributes yet: not asked yet")
	last.Store(&notYet)
	go func() {
		var registered time.Time
		for {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := tc.CountWorkflow(qctx, req)
			cancel()
			wait := time.Second
			switch {
			case err == nil:
				last.Store(nil)
				wait = searchAttributesRecheck
			case attributesUnknown(err) && time.Since(registered) > 2*searchAttributesRecheck:
				registered = time.Now()
				if rerr := RegisterSearchAttributes(ctx, tc, namespace); rerr != nil {
					err = fmt.Errorf("%w; registering them: %w", err, rerr)
				}
				fallthrough
			default:
				err = fmt.Errorf("temporal does not accept the dispatch search attributes: %w", err)
				last.Store(&err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
	return func(context.Context) error {
		if err := last.Load(); err != nil {
			return *err
		}
		return nil
	}
}

// searchAttributesRecheck is how often SearchAttributesCheck asks again
// once the search attributes are usable.
var searchAttributesRecheck = 30 * time.Second

// NamespaceRetention returns how long the namespace keeps closed runs.
func NamespaceRetention(ctx context.Context, tc client.Client, namespace string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := tc.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return 0, temporalError(err, "describing the namespace")
	}
	return res.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(), nil
}
