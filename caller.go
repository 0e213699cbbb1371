package dispatcher

import "context"

// Caller is whom an operation acts for: the store scopes what it reads
// and changes to the caller's tenant, and the audit trail records the
// rest. The API puts the authenticated caller in each request's context;
// the worker puts the dispatch's tenant in its activities'.
type Caller struct {
	// Subject is the token's sub, "apikey:<id>" for an API key, or
	// CallerService for the dispatcher's own work.
	Subject string
	// Tenant scopes everything; "" is the implicit tenant of a deployment
	// whose tokens carry no tenant claim.
	Tenant     string
	ClientAddr string
	RequestID  string
}

// CallerService is the subject of what the dispatcher does by itself.
const CallerService = "dispatcher"

type callerKey struct{}

// WithCaller returns ctx acting for c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf returns whom ctx acts for: the zero Caller, the implicit
// tenant, when nobody was put there.
func CallerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}
