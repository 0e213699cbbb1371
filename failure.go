package dispatcher

// Failure types: the Temporal application-error types that activities and
// workflows fail with. They double as the "error class" that a dispatch
// records per failed action and that support staff filter on, so there are
// few of them and each says what to do next: fix the configuration (the
// permanent ones) or look at the dependency (the temporary ones).
const (
	// FailureTemplate: a mail template or a templated value of an action
	// does not render against the event (syntax, missing variable).
	FailureTemplate = "TemplateError"
	// FailureRecipient: a mail recipient does not resolve to an address.
	FailureRecipient = "InvalidRecipient"
	// FailureNotFound: the action names a template or function that does
	// not exist (any more).
	FailureNotFound = "ConfigNotFound"
	// FailureSMTPPermanent: the mail server refused the mail with a 5xx.
	FailureSMTPPermanent = "SMTPPermanent"
	// FailureSMTPTemporary: the mail server answered 4xx or could not be
	// reached; retried.
	FailureSMTPTemporary = "SMTPTemporary"
	// FailureHTTPPermanent: the task function answered 4xx (other than
	// 408, 425 and 429).
	FailureHTTPPermanent = "HTTPPermanent"
	// FailureHTTPTemporary: the task function answered 5xx, 408, 425 or 429,
	// or could not be reached; retried.
	FailureHTTPTemporary = "HTTPTemporary"
	// FailureOutboundRefused: the outbound policy refused the call: the
	// function's URL is, resolves or redirects to an address or a scheme
	// not allowed, or its task queue is not one functions may run on.
	// Fix the function, or allow the target (DISPATCHER_OUTBOUND_ALLOW,
	// DISPATCHER_FUNCTION_TASK_QUEUES).
	FailureOutboundRefused = "OutboundRefused"
	// FailureStore: the configuration database could not be read; retried.
	FailureStore = "StoreUnavailable"
	// FailureTask: a task function run as a Temporal child workflow failed.
	FailureTask = "TaskFailed"
	// FailureTimeout: an attempt (or the action as a whole) ran out of time.
	FailureTimeout = "Timeout"
	// FailureSlotMissed: a gated call began too late for its permit and
	// was not made: too long after its slot under the function's rate
	// limit (a busy worker; made late, calls bunch, and the function
	// would receive more than its rate), or too late to end before the
	// permit's lease expires (its gate then takes the lease back, and a
	// call still running would break MaxConcurrency). The dispatch asks
	// its gate for another permit, which costs no attempt; the third miss
	// in a row of one attempt counts as a failed attempt (a worker clock
	// ahead of Temporal's would miss every slot). Likewise a first
	// attempt that waited so long for a slot of its worker that it no
	// longer had its whole time: the dispatch makes it as a regular
	// activity, at no attempt's cost.
	FailureSlotMissed = "SlotMissed"
	// FailureOrderingOverflow: the event's ordering key already held as
	// many waiting events as its Sequence can carry (a key blocked, or a
	// burst behind a slow dispatch), or its Sequence was canceled before
	// the event's turn, so its actions were not run. The dispatch keeps
	// the event: replay it to run them, out of the key's order.
	FailureOrderingOverflow = "OrderingOverflow"
	// FailureHistoryFull: the action was not attempted: its attempt's
	// input (the event, the action's data) would have taken its
	// dispatch's history past the most a run keeps (DispatchHistoryBudget),
	// near the size at which Temporal ends a run, with every action not
	// made yet. A dispatch of many actions of a large event whose calls
	// retry or outlast a first attempt. Replay it: each run makes as many
	// as fit.
	FailureHistoryFull = "HistoryFull"
	// FailureCanceled: the dispatch was canceled before the action finished.
	FailureCanceled = "Canceled"
	// FailureSuperseded: an action of a run reset from the Temporal Web
	// UI or CLI, from a run that a replay has superseded since, was not
	// made: that replay may have made it under its own Idempotency-Key or
	// Message-ID, which the reset run does not know, so the receiver could
	// not tell the two apart. Reset the latest run instead, or replay it.
	FailureSuperseded = "Superseded"
	// FailureUnexpected: an error none of the other types describe (a
	// bug, a panic); look at the worker's logs.
	FailureUnexpected = "Unexpected"
	// FailureDispatch: the dispatch as a whole, when one or more of its
	// actions failed for good; its details hold every action's outcome.
	FailureDispatch = "DispatchFailed"
)

// FailureClasses returns the error classes an action or a dispatch ends
// with: those an executions filter may name.
func FailureClasses() []string {
	return []string{
		FailureTemplate, FailureRecipient, FailureNotFound, FailureSMTPPermanent, FailureSMTPTemporary,
		FailureHTTPPermanent, FailureHTTPTemporary, FailureOutboundRefused, FailureStore, FailureTask,
		FailureTimeout, FailureSlotMissed, FailureOrderingOverflow, FailureHistoryFull, FailureCanceled, FailureSuperseded,
		FailureUnexpected, FailureTerminated,
	}
}

// PermanentFailures returns the failure types that retrying cannot fix; a
// workflow passes them as NonRetryableErrorTypes so that an error that was
// not marked non-retryable where it was raised still fails fast.
func PermanentFailures() []string {
	return []string{
		FailureTemplate,
		FailureRecipient,
		FailureNotFound,
		FailureSMTPPermanent,
		FailureHTTPPermanent,
		FailureOutboundRefused,
	}
}
