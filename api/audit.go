package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/gin-gonic/gin"
)

// auditRQL is the schema of GET /audit/v1's queries.
var auditRQL = rqlSchema{fields: dispatcher.AuditQueryFields, selectable: wire.AuditSelectFields}

// listAudit answers GET /audit/v1?<rql>: the audit trail of the caller's
// tenant, newest first, paged like the dispatchers.
func (s *Server) listAudit(c *gin.Context) {
	q, err := auditRQL.parse(c.Request.URL.RawQuery)
	if err != nil {
		fail(c, err)
		return
	}
	may := principalOf(c).Permissions
	hashes := !slices.ContainsFunc(auditDocumentPermissions, func(p string) bool { return !may[p] })
	if q.Limit == 0 { // the count alone
		_, total, err := s.store.FindAuditRecords(c.Request.Context(), q)
		if err != nil {
			fail(c, err)
			return
		}
		p, _ := fillPage(total, q, nil)
		c.JSON(http.StatusOK, p)
		return
	}
	// Loaded a few at a time: a record may hold two documents of a MiB.
	// One written meanwhile moves the later ones down: those already
	// shown are left out.
	total, fetched, shown := 0, 0, map[string]bool{}
	page, err := fillPage(0, q, func(want int) ([]any, bool, error) {
		chunk := q
		chunk.Offset, chunk.Limit = q.Offset+fetched, min(want, loadChunk)
		records, t, err := s.store.FindAuditRecords(c.Request.Context(), chunk)
		total, fetched = t, fetched+len(records)
		var out []any
		for _, r := range records {
			if shown[r.ID] {
				continue
			}
			shown[r.ID] = true
			if !may[auditViewPermission(r.Action)] {
				r.Before, r.After = nil, nil // shown where the caller may read them
			}
			if !hashes {
				r.PrevHash, r.Hash = "", ""
			}
			out = append(out, wire.FromAuditRecord(r))
		}
		return out, len(records) < chunk.Limit, err
	})
	if err != nil {
		fail(c, err)
		return
	}
	page.Page.Total = total
	c.JSON(http.StatusOK, page)
}

// auditDocumentPermissions are the permissions that show audit records'
// documents (auditViewPermission). A record's hash and the next one's
// prevHash cover its documents: shown to a caller who may not read them,
// they would confirm a guess at a URL or a template offline, so only a
// caller who may read every document sees the hashes.
var auditDocumentPermissions = []string{PermViewDispatchers, PermViewTemplates, PermViewFunctions, PermViewAPIKeys, PermViewExecutions}

// auditViewPermission is the permission that shows what an audit record's
// documents hold (a function's URL, a template's body, an execution's
// replay options): VIEW_AUDIT shows who did what and when, not what the
// caller may not read elsewhere.
func auditViewPermission(action string) string {
	what, _, _ := strings.Cut(action, ".")
	switch what {
	case "dispatcher", "action":
		return PermViewDispatchers
	case "template":
		return PermViewTemplates
	case "function":
		return PermViewFunctions
	case "apikey":
		return PermViewAPIKeys
	default: // executions and bulk replays
		return PermViewExecutions
	}
}
