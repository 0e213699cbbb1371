package dispatcher

import (
	"context"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

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

// tenantPattern is what a tenant may be called: it goes into workflow
// IDs, before a ':' that ids of the implicit tenant never hold.
var tenantPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidTenant reports whether t can name a tenant ("" is the implicit
// one, and valid).
func ValidTenant(t string) bool { return t == "" || tenantPattern.MatchString(t) }

// TenantWorkflowID is the workflow ID of a dispatch or bulk replay id of
// tenant: "<tenant>:<id>", or id itself for the implicit tenant, so a
// deployment without tenants keeps the ids it always had and no tenant
// can claim another's.
func TenantWorkflowID(tenant, id string) string {
	if tenant == "" {
		return id
	}
	return tenant + ":" + id
}

// TenantOf returns the tenant a workflow ID (TenantWorkflowID) belongs to.
func TenantOf(workflowID string) string {
	t, _, ok := strings.Cut(workflowID, ":")
	if !ok {
		return ""
	}
	return t
}

// validTenanted reports whether a workflow ID's tenant, when it names
// one, is a valid tenant name.
func validTenanted(workflowID string) bool {
	t, _, ok := strings.Cut(workflowID, ":")
	return !ok || tenantPattern.MatchString(t)
}

// untenanted returns the id of a workflow ID without its tenant.
func untenanted(workflowID string) string {
	if _, id, ok := strings.Cut(workflowID, ":"); ok {
		return id
	}
	return workflowID
}

// PosesAsReserved reports whether a token's subject reads as the
// subject of an API key ("apikey:<id>") or as CallerService, in any
// case, with spaces or invisible characters put in, or with letters of
// other scripts that look like theirs (Cyrillic "а" for "a", fullwidth
// forms): the audit trail would show a person's changes as a key's or
// the dispatcher's own.
func PosesAsReserved(sub string) bool {
	var b strings.Builder
	for _, r := range norm.NFKC.String(sub) {
		r = unicode.ToLower(r)
		switch {
		case unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Mn, r):
			continue
		case lookalikes[r] != 0:
			r = lookalikes[r]
		}
		b.WriteRune(r)
	}
	s := b.String()
	return strings.HasPrefix(s, APIKeySubject("")) || s == CallerService
}

// lookalikes maps letters and signs of other scripts to the ASCII ones
// of "apikey:" and "dispatcher" they pass for (Unicode's confusables,
// those lowercase; NFKC has folded fullwidth and mathematical forms).
var lookalikes = map[rune]rune{
	'а': 'a', 'α': 'a', 'ɑ': 'a',
	'р': 'p', 'ρ': 'p',
	'і': 'i', 'ι': 'i', 'ı': 'i', 'ӏ': 'i', 'ǀ': 'i',
	'к': 'k', 'κ': 'k', 'ĸ': 'k',
	'е': 'e', 'ҽ': 'e', 'ε': 'e',
	'у': 'y', 'ү': 'y', 'γ': 'y',
	'ԁ': 'd',
	'ѕ': 's',
	'т': 't', 'τ': 't',
	'с': 'c', 'ϲ': 'c',
	'һ': 'h', 'η': 'h',
	'г': 'r',
	'∶': ':', 'ː': ':', '꞉': ':', '׃': ':', '᛬': ':', '︓': ':',
}
