package api

import (
	"net/http"

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
	records, total, err := s.store.FindAuditRecords(c.Request.Context(), q)
	if err != nil {
		fail(c, err)
		return
	}
	var page wire.Page
	page.Page.Total, page.Page.Offset, page.Page.Limit = total, q.Offset, q.Limit
	page.Data = make([]any, len(records))
	for i, r := range records {
		page.Data[i] = project(wire.FromAuditRecord(r), q.Select)
	}
	c.JSON(http.StatusOK, page)
}
