package api

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
)

// health answers liveness: the process serves HTTP.
func (s *Server) health(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// ready answers 200 only when every dependency answers, 503 otherwise,
// naming each check's result.
func (s *Server) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	names := make([]string, 0, len(s.checks))
	for name := range s.checks {
		names = append(names, name)
	}
	slices.Sort(names)
	results := gin.H{}
	status := http.StatusOK
	for _, name := range names {
		if err := s.checks[name](ctx); err != nil {
			results[name] = err.Error()
			status = http.StatusServiceUnavailable
			continue
		}
		results[name] = "ok"
	}
	state := "ready"
	if status != http.StatusOK {
		state = "not ready"
	}
	c.JSON(status, gin.H{"status": state, "checks": results})
}
