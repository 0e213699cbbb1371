package dispatcher_test

import (
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher"
)

func TestValidIDs(t *testing.T) {
	for id, want := range map[string]bool{
		"dispatch-evt-1":                       true,
		dispatcher.WorkflowID("it's/odd"):      true,
		"dispatch-":                            false,
		"other-evt-1":                          false,
		"dispatch-a/b":                         false,
		"bulk-replay-0123456789abcdef01234567": false,
	} {
		if got := dispatcher.ValidWorkflowID(id); got != want {
			t.Errorf("ValidWorkflowID(%q) = %v, want %v", id, got, want)
		}
	}
	if !dispatcher.ValidBulkReplayID("bulk-replay-0123456789abcdef01234567") || dispatcher.ValidBulkReplayID("bulk-replay-xyz") {
		t.Error("ValidBulkReplayID accepts the wrong ids")
	}
}

func TestWorkflowID(t *testing.T) {
	long := strings.Repeat("x", 129)
	tests := []struct{ eventID, want string }{
		{"ev-1", "dispatch-ev-1"},
		{"5f2a0c3e9b1d4a0012345678", "dispatch-5f2a0c3e9b1d4a0012345678"},
		{"A.b_c~d", "dispatch-A.b_c~d"},
	}
	for _, tt := range tests {
		if got := dispatcher.WorkflowID(tt.eventID); got != tt.want {
			t.Errorf("WorkflowID(%q) = %q, want %q", tt.eventID, got, tt.want)
		}
	}
	for _, id := range []string{"a/b", "a b", "ü", long, "", "../x"} {
		got := dispatcher.WorkflowID(id)
		if !strings.HasPrefix(got, "dispatch.") || len(got) != len("dispatch.")+32 || strings.ContainsAny(got, "/ ?#%") {
			t.Errorf("WorkflowID(%q) = %q, want a path-safe hashed id", id, got)
		}
		if dispatcher.WorkflowID(id) != got {
			t.Errorf("WorkflowID(%q) is not deterministic", id)
		}
	}
	if dispatcher.WorkflowID("a/b") == dispatcher.WorkflowID("a b") {
		t.Error("different ids hash alike")
	}
}

func TestTenantWorkflowIDs(t *testing.T) {
	for _, tt := range []struct {
		tenant, id, want string
	}{
		{"", "dispatch-ev-1", "dispatch-ev-1"},
		{"acme", "dispatch-ev-1", "acme:dispatch-ev-1"},
		{"acme", "bulk-replay-0123456789abcdef01234567", "acme:bulk-replay-0123456789abcdef01234567"},
	} {
		got := dispatcher.TenantWorkflowID(tt.tenant, tt.id)
		if got != tt.want || dispatcher.TenantOf(got) != tt.tenant {
			t.Errorf("TenantWorkflowID(%q, %q) = %q (tenant %q), want %q", tt.tenant, tt.id, got, dispatcher.TenantOf(got), tt.want)
		}
	}
	for id, want := range map[string]bool{
		"dispatch-ev-1": true, "acme:dispatch-ev-1": true, "acme_2-x:dispatch.0123456789abcdef0123456789abcdef": true,
		":dispatch-ev-1": false, "a:b:dispatch-ev-1": false, "ac me:dispatch-ev-1": false, "acme:": false, "acme:other": false,
	} {
		if got := dispatcher.ValidWorkflowID(id); got != want {
			t.Errorf("ValidWorkflowID(%q) = %v, want %v", id, got, want)
		}
	}
	if !dispatcher.ValidBulkReplayID("acme:bulk-replay-0123456789abcdef01234567") || dispatcher.ValidBulkReplayID(":bulk-replay-0123456789abcdef01234567") {
		t.Error("ValidBulkReplayID does not take tenants as ValidWorkflowID does")
	}
}
