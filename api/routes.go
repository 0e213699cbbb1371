package api

import "github.com/gin-gonic/gin"

// routes maps the whole HTTP surface. Every route but the health checks,
// the metrics and the OpenAPI document requires a token with the named
// permission.
func (s *Server) routes(r *gin.Engine) {
	r.GET("/health", s.health)
	r.GET("/healthz", s.health)
	r.GET("/readyz", s.ready)
	r.GET("/openapi.json", serveOpenAPI)

	auth := s.auth.authenticate()
	body := limitBody(s.cfg.MaxBodyBytes)
	d := r.Group("/dispatchers/v1")
	d.GET("/health", s.health)
	// Both with and without the trailing slash: a redirect would turn a
	// client's POST into a GET.
	for _, root := range []string{"", "/"} {
		d.GET(root, auth, require(PermViewDispatchers), s.listDispatchers)
		d.POST(root, auth, require(PermCreateDispatchers), body, s.createDispatcher)
	}
	d.GET("/:dispatcherId", auth, require(PermViewDispatchers), validID("dispatcherId"), s.getDispatcher)
	d.PUT("/:dispatcherId", auth, require(PermUpdateDispatchers), validID("dispatcherId"), body, s.updateDispatcher)
	d.DELETE("/:dispatcherId", auth, require(PermDeleteDispatchers), validID("dispatcherId"), s.deleteDispatcher)
	d.POST("/:dispatcherId/actions", auth, require(PermUpdateDispatchers), validID("dispatcherId"), body, s.createAction)
	d.PUT("/:dispatcherId/actions/:actionId", auth, require(PermUpdateDispatchers), validID("dispatcherId", "actionId"), body, s.updateAction)
	d.DELETE("/:dispatcherId/actions/:actionId", auth, require(PermUpdateDispatchers), validID("dispatcherId", "actionId"), s.deleteAction)
}
