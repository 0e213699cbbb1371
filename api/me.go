package api

import (
	"net/http"
	"slices"

	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/gin-gonic/gin"
)

// me answers GET /auth/v1/me: the caller's subject, tenant and
// permissions. Any valid token or key may ask; it needs no permission,
// since it shows the caller only what the caller holds.
func (s *Server) me(c *gin.Context) {
	out := toMe(principalOf(c))
	out.RequestTimeoutMs = s.cfg.RequestTimeout.Milliseconds()
	c.JSON(http.StatusOK, out)
}

// toMe converts a principal for GET /auth/v1/me; its permissions sorted.
func toMe(p principal) wire.Me {
	out := wire.Me{Subject: p.Subject, Tenant: p.Tenant, Kind: "token", Permissions: []string{}, EventTypes: p.EventTypes}
	if p.APIKey {
		out.Kind, out.Name = "apikey", p.Name
	}
	for perm, ok := range p.Permissions {
		if ok {
			out.Permissions = append(out.Permissions, perm)
		}
	}
	slices.Sort(out.Permissions)
	return out
}
