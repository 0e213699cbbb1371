package dispatcher

import (
	"encoding/json"
	"time"
)

// AuditRecord is one entry of the audit trail: who changed what, when and
// from where. Every change of the configuration is recorded in the
// transaction that makes it, every Temporal operation (replay, cancel,
// bulk replay) before it is asked for. Records are never changed: each
// tenant's form a hash chain, Hash covering the record's fields and
// PrevHash, the Hash of the record before it.
type AuditRecord struct {
	Seq    int64 // the record's place in its tenant's chain, from 1
	ID     string
	At     time.Time
	Tenant string
	// Actor is the caller's subject: a token's sub, "apikey:<id>", or
	// CallerService for what the dispatcher does by itself.
	Actor  string
	Action string // one of the Audit* actions, e.g. AuditDispatcherUpdate
	Target string // the id of what changed: a dispatcher, an action, a workflow ID...
	// Before and After are the API's JSON of the target, secrets
	// Redacted; nil for what did not exist before (a creation) or after
	// (a deletion), and for Temporal operations' Before.
	Before     json.RawMessage
	After      json.RawMessage
	ClientAddr string
	RequestID  string
	PrevHash   string // hex; GenesisHash for a chain's first record
	Hash       string // hex sha256
}

// Audit actions: "<what>.<verb>".
const (
	AuditDispatcherCreate = "dispatcher.create"
	AuditDispatcherUpdate = "dispatcher.update"
	AuditDispatcherDelete = "dispatcher.delete"
	AuditActionCreate     = "action.create"
	AuditActionUpdate     = "action.update"
	AuditActionDelete     = "action.delete"
	AuditTemplateCreate   = "template.create"
	AuditTemplateUpdate   = "template.update"
	AuditTemplateDelete   = "template.delete"
	AuditFunctionCreate   = "function.create"
	AuditFunctionUpdate   = "function.update"
	AuditFunctionDelete   = "function.delete"
	AuditExecutionReplay  = "execution.replay"
	AuditExecutionCancel  = "execution.cancel"
	AuditExecutionRelease = "execution.release"
	AuditBulkReplayStart  = "bulkreplay.start"
	AuditBulkReplayCancel = "bulkreplay.cancel"
	AuditBulkReplayPause  = "bulkreplay.pause"
	AuditBulkReplayResume = "bulkreplay.resume"
	AuditAPIKeyCreate     = "apikey.create"
	AuditAPIKeyDelete     = "apikey.delete"
)

// Redacted stands in the audit trail for a secret value: a function's
// secret and header values, an API key.
const Redacted = "REDACTED"

// GenesisHash is the PrevHash of the first record of a chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Action is the audit action of an execution audit entry: replays and
// cancels of dispatches, cancels of bulk replays.
func (e AuditEntry) Action() string {
	switch {
	case e.Operation == AuditReplay:
		return AuditExecutionReplay
	case e.Operation == AuditPause:
		return AuditBulkReplayPause
	case e.Operation == AuditResume:
		return AuditBulkReplayResume
	case e.Operation == AuditRelease:
		return AuditExecutionRelease
	case ValidBulkReplayID(e.WorkflowID):
		return AuditBulkReplayCancel
	default:
		return AuditExecutionCancel
	}
}

// AuditQueryFields are the audit record fields a query (GET /audit/v1)
// may filter and sort on, as the wire names them.
var AuditQueryFields = map[string]FieldKind{
	"id":         KindString,
	"seq":        KindNumber,
	"timestamp":  KindNumber,
	"actor":      KindString,
	"action":     KindString,
	"target":     KindString,
	"clientAddr": KindString,
	"requestId":  KindString,
}

// AuditBreak is the first place where a chain does not hold: a record
// edited, deleted, inserted or moved, or a head that does not match the
// last record.
type AuditBreak struct {
	Tenant string
	Seq    int64  // the record where the chain breaks
	Reason string // what differs, e.g. "its hash does not match its fields: a field was edited"
}

// AuditVerification is what a walk of the audit chains found.
type AuditVerification struct {
	Chains  int   // tenants' chains walked
	Records int64 // records checked
	// Heads are the seq and hash of each chain's last record, by tenant:
	// written down elsewhere, they let a later verification prove that
	// the chain was not rewritten from there.
	Heads map[string]AuditHead
	Break *AuditBreak // nil when every chain holds
}

// AuditHead is the end of a tenant's chain.
type AuditHead struct {
	Seq  int64
	Hash string
}
