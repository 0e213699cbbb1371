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
	// PermViewEventContent shows what producers sent: the content of the
	// events that executions ran for. Events carry personal data (whom to
	// mail, which user was deleted), which VIEW_EXECUTIONS alone, enough
	// to find and replay failures, does not show.
	PermViewEventContent = "VIEW_EVENT_CONTENT"

	// PermDecodePayloads lets the Temporal Web UI decrypt the payloads of
	// histories through /codec/decode: everything a run read and wrote,
	// events and configuration included. PermEncodePayloads encrypts
	// (the UI's signals and starts).
	PermDecodePayloads = "DECODE_PAYLOADS"
	PermEncodePayloads = "ENCODE_PAYLOADS"

	// PermViewAudit reads the audit trail: who changed what, when, from
	// where.
	PermViewAudit = "VIEW_AUDIT"

	PermViewAPIKeys   = "VIEW_APIKEYS"
	PermCreateAPIKeys = "CREATE_APIKEYS"
	PermDeleteAPIKeys = "DELETE_APIKEYS"
)

// ConfigPermissions change the configuration, which every event type
// shares (a dispatcher moved to a type, a function or a template its
// dispatchers use): an API key held to event types holds none of them.
func ConfigPermissions() []string {
	return []string{
		PermCreateDispatchers, PermUpdateDispatchers, PermDeleteDispatchers,
		PermCreateTemplates, PermUpdateTemplates, PermDeleteTemplates,
		PermCreateFunctions, PermUpdateFunctions, PermDeleteFunctions,
	}
}

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
		PermViewExecutions, PermReplayExecutions, PermCancelExecutions, PermViewEventContent,
		PermViewAPIKeys, PermCreateAPIKeys, PermDeleteAPIKeys,
		PermDecodePayloads, PermEncodePayloads,
		PermViewAudit,
	}
	slices.Sort(all)
	return all
}
