package workflows

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dispatcherhq/dispatcher/activities"
)

// Register registers the Dispatch and BulkReplay workflows and the
// activities with a worker under the names in names.go. a may be nil in
// tests that mock every activity.
func Register(w worker.Registry, a *activities.Activities) {
	w.RegisterWorkflowWithOptions(Dispatch, workflow.RegisterOptions{Name: WorkflowDispatch})
	w.RegisterWorkflowWithOptions(BulkReplay, workflow.RegisterOptions{Name: WorkflowBulkReplay})
	w.RegisterActivityWithOptions(a.CountExecutions, activity.RegisterOptions{Name: ActivityCountExecutions})
	w.RegisterActivityWithOptions(a.ListExecutions, activity.RegisterOptions{Name: ActivityListExecutions})
	w.RegisterActivityWithOptions(a.ReplayExecution, activity.RegisterOptions{Name: ActivityReplayExecution})
	w.RegisterActivityWithOptions(a.ReplayOutcomes, activity.RegisterOptions{Name: ActivityReplayOutcomes})
	w.RegisterActivityWithOptions(a.LoadConfig, activity.RegisterOptions{Name: ActivityLoadConfig})
	w.RegisterActivityWithOptions(a.SendMail, activity.RegisterOptions{Name: ActivitySendMail})
	w.RegisterActivityWithOptions(a.CallFunction, activity.RegisterOptions{Name: ActivityCallFunction})
	// The first attempts are the same methods under their own names. They
	// are wrapped because the SDK keys registrations by function name too:
	// registering a.SendMail twice would make "SendMail" resolve to
	// whichever name came last.
	w.RegisterActivityWithOptions(func(ctx context.Context, in activities.MailInput) (activities.MailResult, error) {
		return a.SendMail(ctx, in)
	}, activity.RegisterOptions{Name: LocalSendMail})
	w.RegisterActivityWithOptions(func(ctx context.Context, in activities.TaskInput) (activities.TaskResult, error) {
		return a.CallFunction(ctx, in)
	}, activity.RegisterOptions{Name: LocalCallFunction})
}
