package activities_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

func TestLoadConfig(t *testing.T) {
	store := newFakeStore()
	store.dispatchers = []dispatcher.Dispatcher{
		{ID: "d1", EventType: "user_deleted", Actions: []dispatcher.Action{
			{ID: "a1", Type: dispatcher.ActionMail, TemplateID: "t1"},
			{ID: "a2", Type: dispatcher.ActionTask, FunctionName: "erase"},
			{ID: "a3", Type: dispatcher.ActionTask, FunctionName: "missing"},
		}},
		{ID: "d2", EventType: "user_created"},
		{ID: "d3", EventType: "user_deleted", Actions: []dispatcher.Action{
			{ID: "a4", Type: dispatcher.ActionTask, FunctionName: "erase"},
			{ID: "a5", Type: dispatcher.ActionTask, FunctionName: "child"},
		}},
	}
	store.functions["erase"] = dispatcher.Function{Name: "erase", Kind: dispatcher.FunctionHTTP, URL: "http://x", Secret: "s", Timeout: time.Second}
	store.functions["child"] = dispatcher.Function{Name: "child", Kind: dispatcher.FunctionTemporal, TaskQueue: "tq"}
	a := newActivities(t, activities.Options{Store: store})

	load := func(t *testing.T, eventType string) dispatcher.Config {
		t.Helper()
		var cfg dispatcher.Config
		if err := execute(t, a, a.LoadConfig, dispatcher.LoadConfigInput{EventType: eventType}, &cfg); err != nil {
			t.Fatalf("LoadConfig: %v", err)
		}
		return cfg
	}

	cfg := load(t, "user_deleted")
	if len(cfg.Dispatchers) != 2 || cfg.Dispatchers[0].ID != "d1" || cfg.Dispatchers[1].ID != "d3" {
		t.Fatalf("dispatchers = %+v", cfg.Dispatchers)
	}
	want := []dispatcher.FunctionRef{
		{Name: "erase", Kind: dispatcher.FunctionHTTP, Timeout: time.Second},
		{Name: "child", Kind: dispatcher.FunctionTemporal, TaskQueue: "tq"},
	}
	if len(cfg.Functions) != len(want) {
		t.Fatalf("functions = %+v, want %+v", cfg.Functions, want)
	}
	for i := range want {
		if cfg.Functions[i] != want[i] {
			t.Errorf("functions[%d] = %+v, want %+v", i, cfg.Functions[i], want[i])
		}
	}
	if _, ok := cfg.Function("missing"); ok {
		t.Error("a missing function has a reference")
	}
	if cfg.Version != 1 {
		t.Errorf("Version = %d, want 1", cfg.Version)
	}

	queries := store.count()
	load(t, "user_deleted")
	if n := store.count() - queries; n != 0 {
		t.Errorf("a cached load ran %d queries besides the version, want 0", n)
	}

	store.change(func(s *fakeStore) { s.dispatchers = s.dispatchers[:1] })
	cfg = load(t, "user_deleted")
	if len(cfg.Dispatchers) != 1 || cfg.Version != 2 {
		t.Errorf("after a change: %d dispatchers at version %d, want 1 at 2", len(cfg.Dispatchers), cfg.Version)
	}
	if cfg := load(t, "nothing"); len(cfg.Dispatchers) != 0 {
		t.Errorf("unknown event type: %+v", cfg.Dispatchers)
	}
}

// TestResolveFunction: a task action that waited for its startTimestamp
// gets its function as the store has it then, flow control included.
func TestResolveFunction(t *testing.T) {
	store := newFakeStore()
	store.functions["erase"] = dispatcher.Function{Name: "erase", Kind: dispatcher.FunctionHTTP, URL: "http://x", Secret: "s", Timeout: time.Second}
	a := newActivities(t, activities.Options{Store: store})
	resolve := func(t *testing.T, name string) dispatcher.FunctionRef {
		t.Helper()
		var ref dispatcher.FunctionRef
		if err := execute(t, a, a.ResolveFunction, dispatcher.ResolveFunctionInput{Name: name}, &ref); err != nil {
			t.Fatalf("ResolveFunction: %v", err)
		}
		return ref
	}
	if got, want := resolve(t, "erase"), (dispatcher.FunctionRef{Name: "erase", Kind: dispatcher.FunctionHTTP, Timeout: time.Second}); got != want {
		t.Errorf("ResolveFunction = %+v, want %+v", got, want)
	}
	store.change(func(s *fakeStore) {
		f := s.functions["erase"]
		f.Timeout, f.Flow.MaxConcurrency = time.Minute, 1
		s.functions["erase"] = f
	})
	if got, want := resolve(t, "erase"), (dispatcher.FunctionRef{Name: "erase", Kind: dispatcher.FunctionHTTP, Timeout: time.Minute, Gated: true}); got != want {
		t.Errorf("after a change, ResolveFunction = %+v, want %+v", got, want)
	}
	if got := resolve(t, "missing"); got != (dispatcher.FunctionRef{}) {
		t.Errorf("a missing function resolved to %+v, want the zero FunctionRef", got)
	}
}

func TestTemplateCache(t *testing.T) {
	sink := testenv.SMTP(t)
	store := newFakeStore()
	store.templates["t1"] = dispatcher.Template{ID: "t1", Subject: "first"}
	a := newActivities(t, activities.Options{Store: store, SMTPURL: "smtp://" + sink.Addr, MailFrom: "a@example.com"})
	in := dispatcher.MailInput{Event: testEvent(), TemplateID: "t1",
		Recipients: dispatcher.Recipients{To: []string{"b@example.com"}}, MessageID: "m@x"}
	sends := 0
	send := func(t *testing.T) string {
		t.Helper()
		sends++
		in.MessageID = fmt.Sprintf("m%d@x", sends) // a mail is sent once per Message-ID
		var res dispatcher.MailResult
		if err := execute(t, a, a.SendMail, in, &res); err != nil {
			t.Fatalf("SendMail: %v", err)
		}
		mails := sink.Mails()
		h, _ := parseMail(t, mails[len(mails)-1].Data)
		return h.Get("Subject")
	}
	send(t)
	queries := store.count()
	send(t)
	if store.count() != queries {
		t.Error("the second mail loaded the template again")
	}
	store.change(func(s *fakeStore) { s.templates["t1"] = dispatcher.Template{ID: "t1", Subject: "second"} })
	if got := send(t); got != "second" {
		t.Errorf("after a change the subject is %q, want %q", got, "second")
	}
}
