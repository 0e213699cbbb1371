package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/models"
)

func TestTemplates(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		tmpl := dispatcher.Template{Name: "bye", Subject: "Bye {{ .event.content.name }}", HTML: "<p>{{ .content.name }}</p>"}
		if err := s.CreateTemplate(ctx, &tmpl); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindTemplate(ctx, tmpl.ID)
		if err != nil || got.Subject != tmpl.Subject || got.HTML != tmpl.HTML {
			t.Fatalf("got %+v, %v", got, err)
		}
		dup := dispatcher.Template{Name: "bye", Subject: "x", Text: "y"}
		wantCode(t, s.CreateTemplate(ctx, &dup), dispatcher.ECONFLICT)
		broken := dispatcher.Template{Name: "broken", Subject: "ok", Text: "line one\n{{ .event.content.name "}
		err = s.CreateTemplate(ctx, &broken)
		wantCode(t, err, dispatcher.EINVALID)
		if !strings.Contains(err.Error(), "text") || !strings.Contains(err.Error(), "2") {
			t.Fatalf("syntax error %q should name the field and line 2", err)
		}
		subject := "New {{ .event.type }}"
		if err := errOf(s.UpdateTemplate(ctx, tmpl.ID, dispatcher.TemplateUpdate{Subject: &subject}, time.Time{})); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.FindTemplate(ctx, tmpl.ID); got.Subject != subject || !got.Updated.After(tmpl.Updated) {
			t.Fatalf("after update: %+v", got)
		}

		// In use: refused, naming the dispatcher by id only (its name is
		// for VIEW_DISPATCHERS, which deleting templates does not need);
		// free again once unused.
		a := dispatcher.Action{Type: dispatcher.ActionMail, TemplateID: tmpl.ID, Recipients: dispatcher.Recipients{To: []string{"a@example.com"}}}
		d := create(t, s, dispatcher.Dispatcher{Name: "farewell", EventType: "user_deleted", Actions: []dispatcher.Action{a}})
		err = s.DeleteTemplate(ctx, tmpl.ID, time.Time{})
		wantCode(t, err, dispatcher.EINUSE)
		if strings.Contains(err.Error(), "farewell") || !strings.Contains(err.Error(), d.ID) {
			t.Fatalf("in-use error %q should name the dispatcher by its id, not its name", err)
		}
		if err := s.DeleteDispatcher(ctx, d.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTemplate(ctx, tmpl.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteTemplate(ctx, tmpl.ID, time.Time{}), dispatcher.ENOTFOUND)
	})
}

func TestFunctions(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		f := dispatcher.Function{Name: "notify", URL: "https://example.com/hook", Secret: "s3cret", Headers: map[string]string{"X-Team": "a"}}
		if err := s.CreateFunction(ctx, &f); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindFunctionByName(ctx, "notify")
		if err != nil || got.Secret != "s3cret" || got.Timeout != dispatcher.DefaultFunctionTimeout || got.Headers["X-Team"] != "a" || got.Kind != dispatcher.FunctionHTTP {
			t.Fatalf("got %+v, %v", got, err)
		}
		for _, bad := range []dispatcher.Function{
			{Name: "x", URL: "ftp://example.com"},
			{Name: "x", URL: "http://example.com", Timeout: time.Hour},
			{Name: "x", Kind: "temporal"},
			{Name: "x", Kind: "lambda"},
		} {
			err := s.CreateFunction(ctx, &bad)
			if code := dispatcher.ErrorCode(err); code != dispatcher.EINVALID && code != dispatcher.EREQUIRED {
				t.Errorf("%+v: code %q (%v), want a validation error", bad, code, err)
			}
		}
		child := dispatcher.Function{Name: "erase-temporal", Kind: dispatcher.FunctionTemporal, TaskQueue: "pii"}
		if err := s.CreateFunction(ctx, &child); err != nil {
			t.Fatal(err)
		}

		task := dispatcher.Action{Type: dispatcher.ActionTask, FunctionName: "notify"}
		d := create(t, s, dispatcher.Dispatcher{EventType: "e", Actions: []dispatcher.Action{task}})
		rename := "renamed"
		wantCode(t, errOf(s.UpdateFunction(ctx, f.ID, dispatcher.FunctionUpdate{Name: &rename}, time.Time{})), dispatcher.EINUSE)
		url, secret, headers := "https://example.com/v2", "s3cret2", map[string]string{"X-Team": "b"}
		if err := errOf(s.UpdateFunction(ctx, f.ID, dispatcher.FunctionUpdate{URL: &url, Secret: &secret, Headers: &headers}, time.Time{})); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteFunction(ctx, f.ID, time.Time{}), dispatcher.EINUSE)

		missing := dispatcher.Action{Type: dispatcher.ActionTask, FunctionName: "nope"}
		err = errOf(s.CreateAction(ctx, d.ID, &missing, time.Time{}))
		wantCode(t, err, dispatcher.EINVALID)
		if !strings.Contains(err.Error(), "functionName") {
			t.Fatalf("error %q should name functionName", err)
		}
		other := "nope"
		wantCode(t, errOf(s.UpdateAction(ctx, d.ID, d.Actions[0].ID, dispatcher.ActionUpdate{FunctionName: &other}, time.Time{})), dispatcher.EINVALID)
		mail := dispatcher.Dispatcher{EventType: "e", Actions: []dispatcher.Action{{Type: dispatcher.ActionMail, TemplateID: "0123456789abcdef01234567", Recipients: dispatcher.Recipients{To: []string{"a@example.com"}}}}}
		wantCode(t, s.CreateDispatcher(ctx, &mail), dispatcher.EINVALID)
	})
}
