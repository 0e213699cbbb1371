package api

import "slices"

// Permission names, as they appear in a token's "permissions" claim and in
// NO_PERMISSION_EXCEPTION messages. They are plain strings, not a named
// type, because they travel in JWTs minted by other services and must match
// the Extra Horizon names byte for byte.
const (
	PermViewDispatchers   = "VIEW_DISPATCHERS"
	PermCreateDispatchers = "CREATE_DISPATCHERS"
	PermUpdateDispatchers = "UPDATE_DISPATCHERS"
	PermDeleteDispatchers = "DELETE_DISPATCHERS"

	PermCreateEvents = "CREATE_EVENTS"

	PermViewTemplates   = "VIEW_TEMPLATES"
	PermCreateTemplates = "CREATE_TEMPLATES"
	PermUpdateTemplates = "UPDATE_TEMPLATES"
	PermDeleteTemplates = "DELETE_TEMPLATES"

	PermViewFunctions   = "VIEW_FUNCTIONS"
	PermCreateFunctions = "CREATE_FUNCTIONS"
	PermUpdateFunctions = "UPDATE_FUNCTIONS"
	PermDeleteFunctions = "DELETE_FUNCTIONS"

	PermViewExecutions   = "VIEW_EXECUTIONS"
	PermReplayExecutions = "REPLAY_EXECUTIONS"
	PermCancelExecutions = "CANCEL_EXECUTIONS"
)

// Permissions returns every permission the service checks, sorted. It is
// what `dispatcher token --admin` grants and what a principal holds when
// authentication is disabled. The slice is fresh on every call, so callers
// may change it.
func Permissions() []string {
	all := []string{
		PermViewDispatchers, PermCreateDispatchers, PermUpdateDispatchers, PermDeleteDispatchers,
		PermCreateEvents,
		PermViewTemplates, PermCreateTemplates, PermUpdateTemplates, PermDeleteTemplates,
		PermViewFunctions, PermCreateFunctions, PermUpdateFunctions, PermDeleteFunctions,
		PermViewExecutions, PermReplayExecutions, PermCancelExecutions,
	}
	slices.Sort(all)
	return all
}
