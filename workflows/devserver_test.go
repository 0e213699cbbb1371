package workflows_test

import (
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// startDevServer starts a real Temporal dev server with the dispatch search
// attributes registered (skipped without the CLI binary, failed on CI).
func startDevServer(t *testing.T) client.Client {
	t.Helper()
	var args []string
	for name, typ := range workflows.SearchAttributes() {
		args = append(args, "--search-attribute", name+"="+typ.String())
	}
	return testenv.Temporal(t, args...).Client()
}
