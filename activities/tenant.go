package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"github.com/dispatcherhq/dispatcher"
)

// Acting returns ctx acting for the tenant of the workflow the activity
// runs for, which its workflow ID names (dispatcher.TenantOf): the store
// then reads that tenant's configuration only. Outside an activity it
// returns ctx.
func Acting(ctx context.Context) context.Context {
	if !activity.IsActivity(ctx) {
		return ctx
	}
	return dispatcher.WithCaller(ctx, dispatcher.Caller{
		Subject: dispatcher.CallerService,
		Tenant:  dispatcher.TenantOf(activity.GetInfo(ctx).WorkflowExecution.ID),
	})
}
