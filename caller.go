package dispatcher

import (
	"context"
	"regexp"
	"strings"
	"unicode"

	"github.com/mtibben/confusables"
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
// case, with spaces or invisible characters put in, or with characters
// that look like theirs (Unicode's confusables, UTS #39: Cyrillic "а"
// for "a", Lisu "ꓲ" or "l" for "I", fullwidth forms): the audit trail
// would show a person's changes as a key's or the dispatcher's own.
func PosesAsReserved(sub string) bool {
	var b strings.Builder
	for _, r := range norm.NFKC.String(sub) {
		if !invisible(r) {
			b.WriteRune(r)
		}
	}
	s := confusables.Skeleton(b.String())
	for _, k := range reservedSubjects.keys {
		if strings.HasPrefix(s, k) {
			return true
		}
	}
	return reservedSubjects.names[s]
}

// HasBidiControls reports whether s holds characters that reorder the
// text around them (U+202E): "\u202Erehctapsid" shows as "dispatcher".
func HasBidiControls(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) })
}

// invisible reports whether r shows as nothing, or as a space: spaces,
// format and unassigned characters, combining marks, the characters
// Unicode says to ignore (Hangul fillers, variation selectors), the
// blank Braille pattern.
func invisible(r rune) bool {
	return unicode.IsSpace(r) || !unicode.IsGraphic(r) || unicode.Is(unicode.Mn, r) ||
		unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || unicode.Is(unicode.Variation_Selector, r) || r == '\u2800'
}

// reservedSubjects holds the skeletons of the reserved subjects in every case:
// those of "apikey:" (a prefix) and of CallerService. Confusables are
// case-sensitive ("I" reads as "l", "i" does not), so each spelling of
// each letter's case is one.
var reservedSubjects = struct {
	keys  []string
	names map[string]bool
}{keys: skeletons(APIKeySubject("")), names: map[string]bool{}}

func init() {
	for _, s := range skeletons(CallerService) {
		reservedSubjects.names[s] = true
	}
}

// skeletons returns the confusable skeletons of every spelling of the
// ASCII word w in upper and lower case.
func skeletons(w string) []string {
	spellings := []string{""}
	for _, c := range w {
		var next []string
		for _, p := range spellings {
			next = append(next, p+string(unicode.ToLower(c)))
			if unicode.ToUpper(c) != unicode.ToLower(c) {
				next = append(next, p+string(unicode.ToUpper(c)))
			}
		}
		spellings = next
	}
	out := make([]string, len(spellings))
	for i, p := range spellings {
		out[i] = confusables.Skeleton(p)
	}
	return out
}
