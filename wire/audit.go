package wire

import (
	"encoding/json"
	"maps"

	"github.com/dispatcherhq/dispatcher"
)

// AuditRecord is an entry of the audit trail in an answer of GET /audit/v1.
// Before and after are the documents the store recorded: the API's JSON of
// what changed, secrets redacted.
type AuditRecord struct {
	Seq        int64           `json:"seq"`
	ID         string          `json:"id"`
	Timestamp  int64           `json:"timestamp"`
	Actor      string          `json:"actor"`
	Action     string          `json:"action"`
	Target     string          `json:"target,omitempty"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	ClientAddr string          `json:"clientAddr,omitempty"`
	RequestID  string          `json:"requestId,omitempty"`
	PrevHash   string          `json:"prevHash,omitempty"` // to a caller who may read every record's documents
	Hash       string          `json:"hash,omitempty"`
}

// AuditSelectFields are the top-level keys of an audit record, which
// select(...) may keep.
var AuditSelectFields = []string{"action", "actor", "after", "before", "clientAddr", "hash", "id",
	"prevHash", "requestId", "seq", "target", "timestamp"}

// FromAuditRecord converts an audit record for an answer. The tenant is
// left out: a caller only ever sees its own.
func FromAuditRecord(r dispatcher.AuditRecord) AuditRecord {
	return AuditRecord{Seq: r.Seq, ID: r.ID, Timestamp: r.At.UnixMilli(), Actor: r.Actor, Action: r.Action, Target: r.Target,
		Before: r.Before, After: r.After, ClientAddr: r.ClientAddr, RequestID: r.RequestID, PrevHash: r.PrevHash, Hash: r.Hash}
}

// The documents below are what the audit trail records of things that
// have no answer of their own, or whose answer says too little.

// AuditAction is an action in the audit trail: its answer and the
// dispatcher it belongs to.
type AuditAction struct {
	DispatcherID string `json:"dispatcherId"`
	Action
}

// AuditActionOf converts an action of a dispatcher for the audit trail.
func AuditActionOf(dispatcherID string, a dispatcher.Action) AuditAction {
	return AuditAction{DispatcherID: dispatcherID, Action: FromAction(a)}
}

// AuditFunction is a function in the audit trail: its answer, and its
// secret and header values as dispatcher.Redacted, or "REDACTED
// (changed)" where an update changed them, so the trail shows that a
// secret was set or rotated and never what it is.
type AuditFunction struct {
	Function
	Secret  string            `json:"secret,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// redactedChanged stands for a secret value an update changed.
const redactedChanged = dispatcher.Redacted + " (changed)"

// AuditFunctionOf converts a function for the audit trail; before, when
// not nil, is the function before an update, to mark what it changed.
func AuditFunctionOf(f dispatcher.Function, before *dispatcher.Function) AuditFunction {
	out := AuditFunction{Function: FromFunction(f)}
	if f.Secret != "" {
		out.Secret = dispatcher.Redacted
		if before != nil && before.Secret != f.Secret {
			out.Secret = redactedChanged
		}
	}
	if len(f.Headers) > 0 {
		out.Headers = make(map[string]string, len(f.Headers))
		for k, v := range maps.All(f.Headers) {
			out.Headers[k] = dispatcher.Redacted
			if before == nil {
				continue
			}
			if old, ok := before.Headers[k]; !ok || old != v {
				out.Headers[k] = redactedChanged
			}
		}
	}
	return out
}

// AuditExecution is a replay or a cancel in the audit trail.
type AuditExecution struct {
	RunID        string   `json:"runId,omitempty"` // the run replayed or canceled
	ReplayID     string   `json:"replayId,omitempty"`
	Actions      []string `json:"actions,omitempty"`
	Config       string   `json:"config,omitempty"`
	BulkReplayID string   `json:"bulkReplayId,omitempty"`
}

// AuditExecutionOf converts an execution audit entry for the audit trail.
func AuditExecutionOf(e dispatcher.AuditEntry) AuditExecution {
	out := AuditExecution{RunID: e.RunID, Actions: e.Actions, Config: e.Config, BulkReplayID: e.BulkReplayID}
	if e.Operation == dispatcher.AuditReplay {
		out.ReplayID = e.Ref
	}
	return out
}

// AuditBulkReplay is the start of a bulk replay in the audit trail: what
// it was asked to replay.
type AuditBulkReplay struct {
	Filter  FilterResponse `json:"filter"`
	Actions []string       `json:"actions,omitempty"`
	Config  string         `json:"config"`
	Rate    float64        `json:"rate"`
}

// AuditBulkReplayOf converts a bulk replay request for the audit trail.
func AuditBulkReplayOf(r dispatcher.BulkReplayRequest) AuditBulkReplay {
	f := r.Filter
	return AuditBulkReplay{
		Filter: FilterResponse{EventType: f.EventType, EventID: f.EventID, DispatcherID: f.DispatcherID, ActionID: f.ActionID,
			Status: f.Status, ErrorClass: f.ErrorClass, From: optionalMillis(f.From), To: optionalMillis(f.To), SkipReason: f.SkipReason},
		Actions: r.Actions, Config: r.Config, Rate: r.Rate,
	}
}

// AuditDispatcher is a dispatcher in the audit trail: its answer, without
// its actions in the record of an update, which never changes them
// (actions have records of their own).
type AuditDispatcher struct {
	Dispatcher
	Actions []Action `json:"actions,omitempty"`
}

// AuditDispatcherOf converts a dispatcher for the audit trail, with its
// actions or without.
func AuditDispatcherOf(d dispatcher.Dispatcher, withActions bool) AuditDispatcher {
	out := AuditDispatcher{Dispatcher: FromDispatcher(d)}
	if withActions {
		out.Actions = out.Dispatcher.Actions
	}
	return out
}
