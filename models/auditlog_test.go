package models_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
	"gorm.io/gorm"
)

// auditStores runs fn against an empty store, and its database, on
// PostgreSQL and on SQLite.
func auditStores(t *testing.T, fn func(t *testing.T, s *models.Store, db *gorm.DB)) {
	t.Helper()
	for name, url := range map[string]func(testing.TB) string{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			db, err := models.Open(url(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if sqlDB, err := db.DB(); err == nil {
					sqlDB.Close()
				}
			})
			if _, err := models.Migrate(context.Background(), db); err != nil {
				t.Fatal(err)
			}
			fn(t, models.NewStore(db, tick()), db)
		})
	}
}

// caller is a context acting for subject of tenant, from 10.1.2.3 with a
// request id of its own.
func auditCtx(subject, tenant, requestID string) context.Context {
	return dispatcher.WithCaller(context.Background(), dispatcher.Caller{
		Subject: subject, Tenant: tenant, ClientAddr: "10.1.2.3", RequestID: requestID})
}

// auditTrailOf returns the whole audit trail of ctx's tenant, newest first.
func auditTrailOf(t *testing.T, ctx context.Context, s *models.Store) []dispatcher.AuditRecord {
	t.Helper()
	var all []dispatcher.AuditRecord
	for offset := 0; ; offset += dispatcher.MaxLimit {
		page, total, err := s.FindAuditRecords(ctx, dispatcher.Query{Limit: dispatcher.MaxLimit, Offset: offset})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(all) >= total {
			return all
		}
	}
}

// auditDoc decodes an audit document.
func auditDoc(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	if raw == nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("audit document %s: %v", raw, err)
	}
	return m
}

func auditVerified(t *testing.T, s *models.Store) dispatcher.AuditVerification {
	t.Helper()
	v, err := s.VerifyAudit(context.Background(), models.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Break != nil {
		t.Fatalf("the audit trail is broken: %+v", *v.Break)
	}
	return v
}

// TestAuditRecordsEveryChange: every mutation of the store leaves one
// record, with its caller, and the documents before and after.
func TestAuditRecordsEveryChange(t *testing.T) {
	auditStores(t, func(t *testing.T, s *models.Store, _ *gorm.DB) {
		ctx := auditCtx("ann", "", "req-1")
		tmpl := dispatcher.Template{Name: "welcome", Subject: "Hi", Text: "Welcome"}
		auditMust(t, s.CreateTemplate(ctx, &tmpl))
		fn := dispatcher.Function{Name: "erase", URL: "http://127.0.0.1:9/erase"}
		auditMust(t, s.CreateFunction(ctx, &fn))
		d := dispatcher.Dispatcher{Name: "gdpr", EventType: "user_deleted", Tags: []string{"t1"},
			Actions: []dispatcher.Action{{Type: dispatcher.ActionMail, Name: "mail", TemplateID: tmpl.ID, Recipients: dispatcher.Recipients{To: []string{"a@example.com"}}}}}
		auditMust(t, s.CreateDispatcher(ctx, &d))
		desc := "erase PII"
		auditMust(t, errOf(s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{Description: &desc}, time.Time{})))
		task := dispatcher.Action{Type: dispatcher.ActionTask, Name: "task", FunctionName: "erase", Data: json.RawMessage(`{"k":1}`)}
		auditMust(t, errOf(s.CreateAction(ctx, d.ID, &task, time.Time{})))
		data := json.RawMessage(`{"k":2}`)
		auditMust(t, errOf(s.UpdateAction(ctx, d.ID, task.ID, dispatcher.ActionUpdate{Data: &data}, time.Time{})))
		auditMust(t, errOf(s.DeleteAction(ctx, d.ID, task.ID, time.Time{})))
		subject := "Hello"
		auditMust(t, errOf(s.UpdateTemplate(ctx, tmpl.ID, dispatcher.TemplateUpdate{Subject: &subject}, time.Time{})))
		url := "http://127.0.0.1:9/v2"
		auditMust(t, errOf(s.UpdateFunction(ctx, fn.ID, dispatcher.FunctionUpdate{URL: &url}, time.Time{})))
		auditMust(t, s.DeleteDispatcher(ctx, d.ID, time.Time{}))
		auditMust(t, s.DeleteTemplate(ctx, tmpl.ID, time.Time{}))
		auditMust(t, s.DeleteFunction(ctx, fn.ID, time.Time{}))

		want := []struct {
			action, target string
			before, after  map[string]any // fields the documents must have
		}{
			{dispatcher.AuditTemplateCreate, tmpl.ID, nil, map[string]any{"name": "welcome", "subject": "Hi"}},
			{dispatcher.AuditFunctionCreate, fn.ID, nil, map[string]any{"name": "erase", "url": "http://127.0.0.1:9/erase", "hasSecret": false}},
			{dispatcher.AuditDispatcherCreate, d.ID, nil, map[string]any{"name": "gdpr", "eventType": "user_deleted"}},
			{dispatcher.AuditDispatcherUpdate, d.ID, map[string]any{"description": nil, "name": "gdpr"}, map[string]any{"description": "erase PII", "name": "gdpr"}},
			{dispatcher.AuditActionCreate, task.ID, nil, map[string]any{"dispatcherId": d.ID, "name": "task", "functionName": "erase"}},
			{dispatcher.AuditActionUpdate, task.ID, map[string]any{"dispatcherId": d.ID, "data": map[string]any{"k": 1.0}},
				map[string]any{"dispatcherId": d.ID, "data": map[string]any{"k": 2.0}}},
			{dispatcher.AuditActionDelete, task.ID, map[string]any{"dispatcherId": d.ID, "data": map[string]any{"k": 2.0}}, nil},
			{dispatcher.AuditTemplateUpdate, tmpl.ID, map[string]any{"subject": "Hi"}, map[string]any{"subject": "Hello"}},
			{dispatcher.AuditFunctionUpdate, fn.ID, map[string]any{"url": "http://127.0.0.1:9/erase"}, map[string]any{"url": "http://127.0.0.1:9/v2"}},
			{dispatcher.AuditDispatcherDelete, d.ID, map[string]any{"name": "gdpr", "description": "erase PII"}, nil},
			{dispatcher.AuditTemplateDelete, tmpl.ID, map[string]any{"subject": "Hello"}, nil},
			{dispatcher.AuditFunctionDelete, fn.ID, map[string]any{"url": "http://127.0.0.1:9/v2"}, nil},
		}
		got := auditTrailOf(t, ctx, s)
		if len(got) != len(want) {
			t.Fatalf("%d records, want %d: %s", len(got), len(want), auditActions(got))
		}
		for i, w := range want {
			r := got[len(got)-1-i] // newest first
			if r.Seq != int64(i+1) || r.Action != w.action || r.Target != w.target || r.Actor != "ann" || r.Tenant != "" ||
				r.ClientAddr != "10.1.2.3" || r.RequestID != "req-1" || r.At.IsZero() || len(r.Hash) != 64 {
				t.Errorf("record %d = %+v, want %s of %s by ann", i+1, r, w.action, w.target)
			}
			for name, pair := range map[string]struct {
				fields map[string]any
				raw    json.RawMessage
			}{"before": {w.before, r.Before}, "after": {w.after, r.After}} {
				got := auditDoc(t, pair.raw)
				if (got == nil) != (pair.fields == nil) {
					t.Errorf("%s %s: %s is %s", w.action, w.target, name, pair.raw)
					continue
				}
				for k, v := range pair.fields {
					if fmt.Sprint(got[k]) != fmt.Sprint(v) {
						t.Errorf("%s %s: %s.%s = %v, want %v (%s)", w.action, w.target, name, k, got[k], v, pair.raw)
					}
				}
			}
		}
		// A dispatcher's creation and deletion carry its actions; its
		// updates, which never change them, do not.
		if a := auditDoc(t, got[len(got)-3].After)["actions"].([]any); len(a) != 1 {
			t.Errorf("dispatcher.create: actions %v", a)
		}
		if _, ok := auditDoc(t, got[len(got)-4].After)["actions"]; ok {
			t.Errorf("dispatcher.update shows actions: %s", got[len(got)-4].After)
		}
		if got[0].PrevHash != got[1].Hash || got[len(got)-1].PrevHash != dispatcher.GenesisHash {
			t.Errorf("the records are not chained: %+v", got[:2])
		}
		auditVerified(t, s)
	})
}

func auditMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func auditActions(rs []dispatcher.AuditRecord) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%d:%s", r.Seq, r.Action))
	}
	return strings.Join(out, " ")
}

// TestAuditRedactsSecrets: a function's secret and header values never
// reach the audit trail; that they were set, and changed, does.
func TestAuditRedactsSecrets(t *testing.T) {
	auditStores(t, func(t *testing.T, s *models.Store, _ *gorm.DB) {
		ctx := auditCtx("ann", "", "")
		fn := dispatcher.Function{Name: "erase", URL: "http://127.0.0.1:9/", Secret: "first-secret-value",
			Headers: map[string]string{"X-Api-Key": "first-header-value", "X-Team": "team-value"}}
		auditMust(t, s.CreateFunction(ctx, &fn))
		secret, headers := "second-secret-value", map[string]string{"X-Api-Key": "second-header-value", "X-Team": "team-value"}
		auditMust(t, errOf(s.UpdateFunction(ctx, fn.ID, dispatcher.FunctionUpdate{Secret: &secret, Headers: &headers}, time.Time{})))
		auditMust(t, s.DeleteFunction(ctx, fn.ID, time.Time{}))
		got := auditTrailOf(t, ctx, s)
		if len(got) != 3 {
			t.Fatalf("records: %s", auditActions(got))
		}
		for _, r := range got {
			for _, v := range []string{"first-secret-value", "first-header-value", "second-secret-value", "second-header-value", "team-value"} {
				if strings.Contains(string(r.Before)+string(r.After), v) {
					t.Errorf("%s: the audit trail holds the secret %q: before %s after %s", r.Action, v, r.Before, r.After)
				}
			}
		}
		created, updated := auditDoc(t, got[2].After), auditDoc(t, got[1].After)
		if created["secret"] != "REDACTED" || fmt.Sprint(created["headers"]) != "map[X-Api-Key:REDACTED X-Team:REDACTED]" {
			t.Errorf("created: %s", got[2].After)
		}
		if updated["secret"] != "REDACTED (changed)" || fmt.Sprint(updated["headers"]) != "map[X-Api-Key:REDACTED (changed) X-Team:REDACTED]" {
			t.Errorf("updated: %s", got[1].After)
		}
		if auditDoc(t, got[0].Before)["secret"] != "REDACTED" {
			t.Errorf("deleted: %s", got[0].Before)
		}
	})
}

// TestAuditSharesTheTransaction: a change that fails leaves no record,
// and a record that cannot be written fails its change.
func TestAuditSharesTheTransaction(t *testing.T) {
	auditStores(t, func(t *testing.T, s *models.Store, db *gorm.DB) {
		ctx := auditCtx("ann", "", "")
		tmpl := dispatcher.Template{Name: "welcome", Subject: "Hi", Text: "Hello"}
		auditMust(t, s.CreateTemplate(ctx, &tmpl))
		for name, change := range map[string]func() error{
			"taken name": func() error {
				return s.CreateTemplate(ctx, &dispatcher.Template{Name: "welcome", Subject: "Hi", Text: "Hello"})
			},
			"invalid":    func() error { return s.CreateDispatcher(ctx, &dispatcher.Dispatcher{Name: "x"}) },
			"unknown id": func() error { return s.DeleteDispatcher(ctx, "0123456789abcdef01234567", time.Time{}) },
			"in use": func() error {
				d := dispatcher.Dispatcher{Name: "d", EventType: "e", Actions: []dispatcher.Action{{Type: dispatcher.ActionMail,
					TemplateID: tmpl.ID, Recipients: dispatcher.Recipients{To: []string{"a@example.com"}}}}}
				auditMust(t, s.CreateDispatcher(ctx, &d))
				return s.DeleteTemplate(ctx, tmpl.ID, time.Time{})
			},
		} {
			before := len(auditTrailOf(t, ctx, s))
			if err := change(); err == nil {
				t.Fatalf("%s: the change succeeded", name)
			}
			after := auditTrailOf(t, ctx, s)
			if name == "in use" {
				before++ // the dispatcher it made to use the template
			}
			if len(after) != before {
				t.Errorf("%s: a failed change left a record: %s", name, auditActions(after))
			}
		}

		// The trail's table gone, nothing can change.
		version, err := s.ConfigVersion(context.Background())
		auditMust(t, err)
		auditMust(t, db.Exec("DROP TABLE audit_log").Error)
		if err := s.CreateTemplate(ctx, &dispatcher.Template{Name: "other", Subject: "Hi", Text: "Hello"}); err == nil {
			t.Fatal("a template was created without its audit record")
		}
		ts, err := s.TemplateNames(ctx)
		auditMust(t, err)
		if len(ts) != 1 {
			t.Errorf("templates %+v: the change stayed without its record", ts)
		}
		if now, err := s.ConfigVersion(context.Background()); err != nil || now != version {
			t.Errorf("configuration version %d → %d (%v): the change was committed", version, now, err)
		}
	})
}

// TestAuditExecutions: replays and cancels are recorded with their
// claim in the execution audit, once; bulk replays when they start.
func TestAuditExecutions(t *testing.T) {
	auditStores(t, func(t *testing.T, s *models.Store, _ *gorm.DB) {
		ctx := auditCtx("ann", "", "req-9")
		replay := dispatcher.AuditEntry{WorkflowID: "dispatch-a", Operation: dispatcher.AuditReplay, Ref: "r1", RunID: "run-1",
			Actor: "ann", Actions: []string{"x"}, Config: dispatcher.ReplayConfigOriginal}
		for range 2 { // a retried claim is recorded once
			if _, err := s.RecordAudit(ctx, replay); err != nil {
				t.Fatal(err)
			}
		}
		// A bulk replay's activity has no caller: its actor is the entry's.
		bulk := "bulk-replay-0123456789abcdef01234567"
		_, err := s.RecordAudit(context.Background(), dispatcher.AuditEntry{WorkflowID: "dispatch-b", Operation: dispatcher.AuditReplay,
			Ref: "r2", RunID: "run-2", Actor: "bob", BulkReplayID: bulk})
		auditMust(t, err)
		auditMust(t, s.RecordBulkReplay(ctx, bulk, dispatcher.BulkReplayRequest{Filter: dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed, EventType: "e"},
			Config: dispatcher.ReplayConfigOriginal, Rate: 10, Actor: "ann"}))
		_, err = s.RecordAudit(ctx, dispatcher.AuditEntry{WorkflowID: "dispatch-a", Operation: dispatcher.AuditCancel, Ref: "c1", RunID: "run-3", Actor: "ann"})
		auditMust(t, err)
		_, err = s.RecordAudit(ctx, dispatcher.AuditEntry{WorkflowID: bulk, Operation: dispatcher.AuditCancel, Ref: "c2", Actor: "ann"})
		auditMust(t, err)

		got := auditTrailOf(t, ctx, s)
		want := []struct{ action, target, actor, after string }{
			{dispatcher.AuditBulkReplayCancel, bulk, "ann", `{}`},
			{dispatcher.AuditExecutionCancel, "dispatch-a", "ann", `{"runId":"run-3"}`},
			{dispatcher.AuditBulkReplayStart, bulk, "ann", `{"filter":{"eventType":"e","status":"failed"},"config":"original","rate":10}`},
			{dispatcher.AuditExecutionReplay, "dispatch-b", "bob", `{"runId":"run-2","replayId":"r2","bulkReplayId":"` + bulk + `"}`},
			{dispatcher.AuditExecutionReplay, "dispatch-a", "ann", `{"runId":"run-1","replayId":"r1","actions":["x"],"config":"original"}`},
		}
		if len(got) != len(want) {
			t.Fatalf("records: %s", auditActions(got))
		}
		for i, w := range want {
			if r := got[i]; r.Action != w.action || r.Target != w.target || r.Actor != w.actor || string(r.After) != w.after || r.Before != nil {
				t.Errorf("record %d = %s of %s by %s, after %s; want %+v", r.Seq, r.Action, r.Target, r.Actor, r.After, w)
			}
		}
		auditVerified(t, s)
	})
}

// TestAuditTenants: each tenant has a chain of its own, and sees only it.
func TestAuditTenants(t *testing.T) {
	auditStores(t, func(t *testing.T, s *models.Store, _ *gorm.DB) {
		a, b := auditCtx("ann", "acme", ""), auditCtx("bob", "globex", "")
		for i := range 3 {
			auditMust(t, s.CreateTemplate(a, &dispatcher.Template{Name: fmt.Sprint("a", i), Subject: "Hi", Text: "Hello"}))
		}
		auditMust(t, s.CreateTemplate(b, &dispatcher.Template{Name: "b", Subject: "Hi", Text: "Hello"}))
		if got := auditTrailOf(t, a, s); len(got) != 3 || got[0].Seq != 3 || got[0].Tenant != "acme" {
			t.Errorf("acme's trail: %+v", got)
		}
		if got := auditTrailOf(t, b, s); len(got) != 1 || got[0].Seq != 1 || got[0].Actor != "bob" {
			t.Errorf("globex's trail: %+v", got)
		}
		if got := auditTrailOf(t, auditCtx("eve", "", ""), s); len(got) != 0 {
			t.Errorf("the implicit tenant sees %s", auditActions(got))
		}
		v := auditVerified(t, s)
		if v.Chains != 2 || v.Records != 4 || v.Heads["acme"].Seq != 3 || v.Heads["globex"].Seq != 1 {
			t.Errorf("verification: %+v", v)
		}
		tenant := "globex"
		v, err := s.VerifyAudit(context.Background(), models.VerifyOptions{Tenant: &tenant})
		if err != nil || v.Break != nil || v.Chains != 1 || v.Records != 1 {
			t.Errorf("verification of globex: %+v, %v", v, err)
		}
	})
}

// TestAuditConcurrentAppends: changes and claims racing from many
// goroutines still make one unbroken chain per tenant.
func TestAuditConcurrentAppends(t *testing.T) {
	auditStores(t, func(t *testing.T, s *models.Store, _ *gorm.DB) {
		const workers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Go(func() {
				ctx := auditCtx(fmt.Sprint("w", w), []string{"", "acme"}[w%2], "")
				for i := range each {
					var err error
					if i%2 == 0 {
						err = s.CreateTemplate(ctx, &dispatcher.Template{Name: fmt.Sprintf("t-%d-%d", w, i), Subject: "Hi", Text: "Hello"})
					} else {
						_, err = s.RecordAudit(ctx, dispatcher.AuditEntry{WorkflowID: fmt.Sprint("dispatch-", w), Operation: dispatcher.AuditReplay,
							Ref: fmt.Sprint(i), RunID: "run"})
					}
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			auditMust(t, err)
		}
		v := auditVerified(t, s)
		if v.Records != workers*each || v.Heads[""].Seq != workers*each/2 || v.Heads["acme"].Seq != workers*each/2 {
			t.Errorf("verification: %+v", v)
		}
	})
}

// TestAuditVerifyFindsTampering: verify names the first record of a chain
// that was edited, deleted, inserted or moved, and says what differs.
func TestAuditVerifyFindsTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper []string // SQL, on a chain of 5 records
		seq    int64
		reason string
	}{
		{"edited actor", []string{"UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"}, 3, "was edited"},
		{"edited document", []string{`UPDATE audit_log SET after_json = '{"name":"t2","subject":"Bye"}' WHERE seq = 2`}, 2, "do not hash to its hash"},
		{"edited time", []string{"UPDATE audit_log SET at = at - 1000 WHERE seq = 4"}, 4, "was edited"},
		{"rehashed after an edit", []string{"UPDATE audit_log SET actor = 'mallory', hash = '%REHASH%' WHERE seq = 3"}, 4,
			"is not the hash"},
		{"deleted", []string{"DELETE FROM audit_log WHERE seq = 3"}, 3, "record 3 is missing (the next one is 4)"},
		{"two deleted", []string{"DELETE FROM audit_log WHERE seq IN (2, 3)"}, 2, "records 2 to 3 are missing"},
		{"deleted first", []string{"DELETE FROM audit_log WHERE seq = 1"}, 1, "record 1 is missing"},
		{"deleted last", []string{"DELETE FROM audit_log WHERE seq = 5"}, 5, "its records end at 4"},
		{"reordered", []string{
			"UPDATE audit_log SET seq = -1 WHERE seq = 2",
			"UPDATE audit_log SET seq = 2 WHERE seq = 3",
			"UPDATE audit_log SET seq = 3 WHERE seq = -1",
		}, 2, "prev_hash"},
		{"moved to another tenant", []string{"UPDATE audit_log SET tenant = 'other', seq = 1 WHERE seq = 5"}, 5, "the last ones were deleted"},
		{"head deleted", []string{"DELETE FROM audit_chain"}, 1, "no head"},
		{"appended behind its back", []string{
			"INSERT INTO audit_log (tenant, seq, id, at, actor, action, target, prev_hash, hash) " +
				"SELECT tenant, 6, '0123456789abcdef01234567', at, actor, action, target, hash, hash FROM audit_log WHERE seq = 5",
		}, 6, "beyond the chain's head"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auditStores(t, func(t *testing.T, s *models.Store, db *gorm.DB) {
				ctx := auditCtx("ann", "", "")
				for i := range 5 {
					auditMust(t, s.CreateTemplate(ctx, &dispatcher.Template{Name: fmt.Sprint("t", i), Subject: "Hi", Text: "Hello"}))
				}
				auditVerified(t, s)
				for _, q := range tc.tamper {
					if strings.Contains(q, "%REHASH%") {
						q = strings.ReplaceAll(q, "%REHASH%", auditRehash(t, ctx, s, 3, "mallory"))
					}
					auditMust(t, db.Exec(q).Error)
				}
				v, err := s.VerifyAudit(context.Background(), models.VerifyOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if v.Break == nil || v.Break.Seq != tc.seq || !strings.Contains(v.Break.Reason, tc.reason) {
					t.Fatalf("verification: break %+v, want one at record %d saying %q", v.Break, tc.seq, tc.reason)
				}
				// The records before the break were checked (before, those
				// of the batch it was found in were not counted).
				if v.Records != tc.seq-1 {
					t.Errorf("verification checked %d records before the break at %d, want %d", v.Records, tc.seq, tc.seq-1)
				}
			})
		})
	}
}

// auditRehash computes, as an attacker who knows the documented encoding
// would, the hash record seq would have with actor: sha256 of prev_hash
// and every field as "<length>:<value>,".
func auditRehash(t *testing.T, ctx context.Context, s *models.Store, seq int64, actor string) string {
	t.Helper()
	for _, r := range auditTrailOf(t, ctx, s) {
		if r.Seq != seq {
			continue
		}
		h := sha256.New()
		h.Write([]byte(r.PrevHash))
		for _, f := range []string{r.Tenant, strconv.FormatInt(r.Seq, 10), r.ID, strconv.FormatInt(r.At.UnixMilli(), 10), actor, r.Action,
			r.Target, string(r.Before), string(r.After), r.ClientAddr, r.RequestID} {
			fmt.Fprintf(h, "%d:%s,", len(f), f)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	t.Fatalf("no record %d", seq)
	return ""
}

// TestAuditRehashMatches: the documented encoding is the one the store
// uses, so auditRehash above forges what it claims to.
func TestAuditRehashMatches(t *testing.T) {
	auditStores(t, func(t *testing.T, s *models.Store, _ *gorm.DB) {
		ctx := auditCtx("ann", "acme", "req")
		auditMust(t, s.CreateTemplate(ctx, &dispatcher.Template{Name: "t", Subject: "Hi", Text: "Hello"}))
		if r := auditTrailOf(t, ctx, s)[0]; auditRehash(t, ctx, s, 1, "ann") != r.Hash {
			t.Fatalf("the documented encoding does not give record 1's hash %s", r.Hash)
		}
	})
}

// TestAuditQuery: filters, sorts and pages of the trail.
func TestAuditQuery(t *testing.T) {
	auditStores(t, func(t *testing.T, s *models.Store, _ *gorm.DB) {
		ctx := auditCtx("ann", "", "")
		var ids []string
		for i := range 4 {
			tmpl := dispatcher.Template{Name: fmt.Sprint("t", i), Subject: "Hi", Text: "Hello"}
			auditMust(t, s.CreateTemplate(auditCtx([]string{"ann", "bob"}[i%2], "", ""), &tmpl))
			ids = append(ids, tmpl.ID)
		}
		auditMust(t, s.DeleteTemplate(ctx, ids[0], time.Time{}))
		all := auditTrailOf(t, ctx, s)
		for _, tc := range []struct {
			name  string
			q     dispatcher.Query
			seqs  string
			total int
		}{
			{"newest first", dispatcher.Query{Limit: 2}, "5 4", 5},
			{"second page", dispatcher.Query{Limit: 2, Offset: 2}, "3 2", 5},
			{"by action", dispatcher.Query{Limit: 10, Filter: &dispatcher.Cond{Op: dispatcher.OpEq, Field: "action", Values: []string{"template.delete"}}}, "5", 1},
			{"by actor", dispatcher.Query{Limit: 10, Filter: &dispatcher.Cond{Op: dispatcher.OpEq, Field: "actor", Values: []string{"bob"}}}, "4 2", 2},
			{"by target", dispatcher.Query{Limit: 10, Filter: &dispatcher.Cond{Op: dispatcher.OpEq, Field: "target", Values: []string{ids[0]}}}, "5 1", 2},
			{"since", dispatcher.Query{Limit: 10, Filter: &dispatcher.Cond{Op: dispatcher.OpGe, Field: "timestamp",
				Values: []string{fmt.Sprint(all[1].At.UnixMilli())}}}, "5 4", 2},
			{"or", dispatcher.Query{Limit: 10, Filter: &dispatcher.Cond{Op: dispatcher.OpOr, Args: []dispatcher.Cond{
				{Op: dispatcher.OpEq, Field: "seq", Values: []string{"1"}}, {Op: dispatcher.OpLike, Field: "action", Values: []string{"*.delete"}}}}}, "5 1", 2},
			{"oldest first", dispatcher.Query{Limit: 3, Sort: []dispatcher.Sort{{Field: "seq"}}}, "1 2 3", 5},
			{"by actor, newest first", dispatcher.Query{Limit: 10, Sort: []dispatcher.Sort{{Field: "actor", Desc: true}}}, "4 2 5 3 1", 5},
			{"count only", dispatcher.Query{Limit: 0}, "", 5},
		} {
			got, total, err := s.FindAuditRecords(ctx, tc.q)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var seqs []string
			for _, r := range got {
				seqs = append(seqs, fmt.Sprint(r.Seq))
			}
			if strings.Join(seqs, " ") != tc.seqs || total != tc.total {
				t.Errorf("%s: records %v of %d, want %s of %d", tc.name, seqs, total, tc.seqs, tc.total)
			}
		}
		_, _, err := s.FindAuditRecords(ctx, dispatcher.Query{Limit: 1, Filter: &dispatcher.Cond{Op: dispatcher.OpEq, Field: "eventType", Values: []string{"x"}}})
		if dispatcher.ErrorCode(err) != dispatcher.EQUERY {
			t.Errorf("a filter on an unknown field: %v, want EQUERY", err)
		}
	})
}

// TestAuditAPIKeys: API keys created and revoked are recorded, never
// with the key or its hash.
func TestAuditAPIKeys(t *testing.T) {
	auditStores(t, func(t *testing.T, s *models.Store, _ *gorm.DB) {
		ctx := auditCtx("ann", "acme", "req-k")
		secret, hash := dispatcher.NewAPIKey()
		k := dispatcher.APIKey{Name: "billing", Permissions: []string{"CREATE_EVENTS"}, Hash: hash}
		auditMust(t, s.CreateAPIKey(ctx, &k))
		auditMust(t, s.RevokeAPIKey(ctx, k.ID))
		if err := s.RevokeAPIKey(ctx, k.ID); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
			t.Fatalf("revoking again: %v", err)
		}
		got := auditTrailOf(t, ctx, s)
		if len(got) != 2 || got[1].Action != dispatcher.AuditAPIKeyCreate || got[0].Action != dispatcher.AuditAPIKeyDelete ||
			got[1].Target != k.ID || got[0].Target != k.ID || got[1].Actor != "ann" || got[0].After != nil {
			t.Fatalf("records: %+v", got)
		}
		for _, r := range got {
			if all := string(r.Before) + string(r.After); strings.Contains(all, secret) || strings.Contains(all, hash) {
				t.Errorf("%s holds the key or its hash: %s", r.Action, all)
			}
		}
		if auditDoc(t, got[0].Before)["name"] != "billing" {
			t.Errorf("revocation: before %s", got[0].Before)
		}
	})
}
