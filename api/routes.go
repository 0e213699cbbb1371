package api

import (
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// routes maps the whole HTTP surface. Every route but the health checks,
// the metrics and the OpenAPI document requires a token with the named
// permission.
func (s *Server) routes(r *gin.Engine, metrics prometheus.Gatherer) {
	r.GET("/health", s.health)
	r.GET("/healthz", s.health)
	r.GET("/readyz", s.ready)
	r.GET("/openapi.json", serveOpenAPI)
	r.GET("/metrics", metricsGuard(s.cfg.MetricsToken, s.cfg.Auth.Disabled), serveMetrics(metrics))
	// The console: public files; what it shows comes from the routes
	// below, with the user's token.
	r.GET("/console", serveConsole(s.console))
	r.GET("/console/*path", serveConsole(s.console))

	// Every authenticated route counts against the request limits but
	// the intake, which counts events once it has read them.
	authenticate := s.auth.authenticate()
	auth := then(authenticate, limitRequests(s.requests))
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
	d.POST("/:dispatcherId/batch", auth, require(PermUpdateDispatchers), validID("dispatcherId"), body, s.batchDispatcher)
	d.POST("/:dispatcherId/actions", auth, require(PermUpdateDispatchers), validID("dispatcherId"), body, s.createAction)
	d.PUT("/:dispatcherId/actions/:actionId", auth, require(PermUpdateDispatchers), validID("dispatcherId", "actionId"), body, s.updateAction)
	d.DELETE("/:dispatcherId/actions/:actionId", auth, require(PermUpdateDispatchers), validID("dispatcherId", "actionId"), s.deleteAction)

	intake := []gin.HandlerFunc{authenticate, require(PermCreateEvents)}
	if n := s.cfg.Limits.IntakeInFlight; n > 0 {
		intake = append(intake, newInFlight(n).limit())
	}
	intake = append(intake, limitBody(s.cfg.MaxEventBytes), s.receiveEvents)
	r.POST("/events/v1", intake...)
	r.POST("/events/v1/", intake...)

	tpl, t := s.templates(), r.Group("/templates/v1")
	for _, root := range []string{"", "/"} {
		t.GET(root, auth, require(PermViewTemplates), tpl.listAll)
		t.POST(root, auth, require(PermCreateTemplates), body, tpl.post)
	}
	t.GET("/:id", auth, require(PermViewTemplates), validID("id"), tpl.get)
	t.PUT("/:id", auth, require(PermUpdateTemplates), validID("id"), body, tpl.put)
	t.DELETE("/:id", auth, require(PermDeleteTemplates), validID("id"), tpl.remove)
	t.POST("/:id/render", auth, require(PermViewTemplates), validID("id"), body, s.renderTemplate)

	fns, f := s.functions(), r.Group("/functions/v1")
	for _, root := range []string{"", "/"} {
		f.GET(root, auth, require(PermViewFunctions), fns.listAll)
		f.POST(root, auth, require(PermCreateFunctions), body, fns.post)
	}
	f.GET("/:id", auth, require(PermViewFunctions), validID("id"), s.getFunction) // with its flow control's state
	f.PUT("/:id", auth, require(PermUpdateFunctions), validID("id"), body, fns.put)
	f.DELETE("/:id", auth, require(PermDeleteFunctions), validID("id"), fns.remove)

	k := r.Group("/apikeys/v1")
	for _, root := range []string{"", "/"} {
		k.GET(root, auth, require(PermViewAPIKeys), s.listAPIKeys)
		k.POST(root, auth, require(PermCreateAPIKeys), body, s.createAPIKey)
	}
	k.DELETE("/:id", auth, require(PermDeleteAPIKeys), validID("id"), s.revokeAPIKey)

	// Who the caller is and what it may do: any valid token or key.
	r.GET("/auth/v1/me", auth, s.me)

	r.GET("/audit/v1", auth, require(PermViewAudit), s.listAudit)
	r.GET("/audit/v1/", auth, require(PermViewAudit), s.listAudit)

	x := r.Group("/executions/v1")
	for _, root := range []string{"", "/"} {
		x.GET(root, auth, require(PermViewExecutions), validQuery(listParams...), s.listExecutions)
	}
	x.GET("/failures", auth, require(PermViewExecutions), validQuery(failureParams...), s.executionFailures)
	x.POST("/replays", auth, require(PermReplayExecutions), body, s.bulkReplay)
	x.GET("/replays", auth, require(PermViewExecutions), validQuery("limit"), s.listBulkReplays)
	x.GET("/replays/:id", auth, require(PermViewExecutions), validBulkReplayID, validQuery(), s.getBulkReplay)
	x.POST("/replays/:id/cancel", auth, require(PermReplayExecutions), validBulkReplayID, body, noFields, s.bulkReplayOfOwnType("cancel"), s.cancelBulkReplay)
	x.POST("/replays/:id/pause", auth, require(PermReplayExecutions), validBulkReplayID, body, noFields, s.bulkReplayOfOwnType("pause"), s.pauseBulkReplay(true))
	x.POST("/replays/:id/resume", auth, require(PermReplayExecutions), validBulkReplayID, body, noFields, s.bulkReplayOfOwnType("resume"), s.pauseBulkReplay(false))
	x.GET("/:workflowId", auth, require(PermViewExecutions), validWorkflowID, validQuery("runId"), s.getExecution)
	x.GET("/:workflowId/history", auth, require(PermViewExecutions),
		requireToo("a run's history holds its event and configuration", historyPermissions...), validWorkflowID, validQuery(historyParams...), s.executionHistory)
	x.POST("/:workflowId/replay", auth, require(PermReplayExecutions), validWorkflowID, body, s.dispatchOfOwnType("replay"), s.replayExecution)
	x.POST("/:workflowId/cancel", auth, require(PermCancelExecutions), validWorkflowID, body, noFields, s.dispatchOfOwnType("cancel"), s.cancelExecution)
	x.POST("/:workflowId/release", auth, require(PermReplayExecutions), validWorkflowID, body, noFields, s.dispatchOfOwnType("release"), s.releaseExecution)

	// The codec server of the Temporal Web UI; browsers ask first
	// (OPTIONS, without a token).
	cors, codecBody := codecCORS(s.cfg.CodecOrigins), limitBody(codecBodyBytes)
	r.OPTIONS("/codec/decode", cors)
	r.OPTIONS("/codec/encode", cors)
	r.POST("/codec/decode", cors, auth, require(PermDecodePayloads), operatorsOnly, codecBody, s.codec)
	r.POST("/codec/encode", cors, auth, require(PermEncodePayloads), operatorsOnly, codecBody, s.codec)
}
