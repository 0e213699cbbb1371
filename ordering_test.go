package dispatcher_test

import (
	"encoding/json"
	"testing"

	"github.com/dispatcherhq/dispatcher"
)

func TestOrderingValidate(t *testing.T) {
	for _, tt := range []struct {
		o       dispatcher.Ordering
		wantErr string
	}{
		{dispatcher.Ordering{Key: "partitionKey"}, ""},
		{dispatcher.Ordering{Key: "content.user.id", OnFailure: "skip"}, ""},
		{dispatcher.Ordering{Key: "userId"}, `ordering.key: must be "partitionKey" or "content.<field>[.<field>…]", not "userId"`},
		{dispatcher.Ordering{Key: "content..id"}, `ordering.key: must be "partitionKey" or "content.<field>[.<field>…]", not "content..id"`},
		{dispatcher.Ordering{Key: "content.id", OnFailure: "retry"}, `ordering.onFailure: must be "block" or "skip", not "retry"`},
	} {
		o := tt.o
		err := o.Validate()
		got := ""
		if err != nil {
			got = dispatcher.ErrorMessage(err)
		}
		if got != tt.wantErr {
			t.Errorf("%+v: error %q, want %q", tt.o, got, tt.wantErr)
		}
		if err == nil && o.OnFailure == "" {
			t.Errorf("%+v: no failure policy after validation, want block", tt.o)
		}
	}
}

func TestSequenceOf(t *testing.T) {
	ordered := func(key, onFailure string) dispatcher.Dispatcher {
		return dispatcher.Dispatcher{Ordering: &dispatcher.Ordering{Key: key, OnFailure: onFailure}}
	}
	ev := dispatcher.Event{Content: json.RawMessage(`{"user":{"id":42,"name":"Ann"},"vip":true,"tags":["a"]}`), PartitionKey: "p-7"}
	for _, tt := range []struct {
		name string
		cfg  dispatcher.Config
		want dispatcher.Sequence
	}{
		{"no ordered dispatcher", dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{{}}}, dispatcher.Sequence{}},
		{"a number", dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{{}, ordered("content.user.id", "block")}}, dispatcher.Sequence{Field: "content.user.id", Key: "42", Block: true}},
		{"a boolean, skipping", dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{ordered("content.vip", "skip")}}, dispatcher.Sequence{Field: "content.vip", Key: "true"}},
		{"the partition key", dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{ordered("partitionKey", "skip"), ordered("partitionKey", "block")}}, dispatcher.Sequence{Field: "partitionKey", Key: "p-7", Block: true}},
		{"a missing value: at once", dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{ordered("content.user.email", "block")}}, dispatcher.Sequence{}},
		{"a list: at once", dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{ordered("content.tags", "block")}}, dispatcher.Sequence{}},
	} {
		if got := tt.cfg.SequenceOf(ev); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
	user := dispatcher.Sequence{Field: "content.userId", Key: "42"}
	if a, b := user.WorkflowID(""), user.WorkflowID("acme"); a == b || dispatcher.TenantOf(b) != "acme" || len(a) != len("sequence-")+40 {
		t.Errorf("sequence ids %q and %q", a, b)
	}
}

// Numbers keep their digits: two ids above 2^53 that are one apart have
// sequences of their own (before, both were rounded onto one float64,
// and one user's failure held the other's events); a number written
// otherwise keeps the key it had.
func TestSequenceOfNumbers(t *testing.T) {
	cfg := dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{{Ordering: &dispatcher.Ordering{Key: "content.id", OnFailure: "block"}}}}
	for content, want := range map[string]string{
		`{"id":9007199254740993}`:          "9007199254740993",
		`{"id":9007199254740992}`:          "9007199254740992",
		`{"id":1234567890123456789012345}`: "1234567890123456789012345",
		`{"id":-17}`:                       "-17",
		`{"id":42}`:                        "42",
		`{"id":1e2}`:                       "100",
		`{"id":1.50}`:                      "1.5",
		`{"id":0.1}`:                       "0.1",
	} {
		if got := cfg.SequenceOf(dispatcher.Event{Content: json.RawMessage(content)}).Key; got != want {
			t.Errorf("%s: key %q, want %q", content, got, want)
		}
	}
	// The key earlier releases gave it, for the sequences they started.
	for content, want := range map[string]string{
		`{"id":9007199254740993}`: "9007199254740992",
		`{"id":9007199254740992}`: "",
		`{"id":42}`:               "",
		`{"id":1e400}`:            "", // no event key then: dispatched at once
	} {
		if got := cfg.SequenceOf(dispatcher.Event{Content: json.RawMessage(content)}).Rounded; got != want {
			t.Errorf("%s: rounded %q, want %q", content, got, want)
		}
	}
}

// Events ordered on different fields never share a sequence, whatever
// their values: before, a userId and an orderId of 42 did, so that a
// failing order held the user's deletion. Those ordered on one field do.
func TestSequencesOfDifferentFields(t *testing.T) {
	user := dispatcher.Sequence{Field: "content.userId", Key: "42"}
	order := dispatcher.Sequence{Field: "content.orderId", Key: "42"}
	if user.WorkflowID("") == order.WorkflowID("") || user.TurnKey() == order.TurnKey() {
		t.Errorf("a userId and an orderId of 42 share sequence %s", user.WorkflowID(""))
	}
	if again := (dispatcher.Sequence{Field: "content.userId", Key: "42", Block: true}); again.WorkflowID("") != user.WorkflowID("") {
		t.Error("two events of userId 42 have sequences of their own")
	}
	if user.LegacyWorkflowID("") != order.LegacyWorkflowID("") || user.LegacyWorkflowID("") == user.WorkflowID("") {
		t.Error("the legacy sequence id is not the value's alone")
	}
	// A value holding what today's key is made of names no sequence of
	// today's as legacy: its event cannot join another field's sequence.
	crafted := dispatcher.Sequence{Field: "content.orderId", Key: user.TurnKey()}
	if crafted.LegacyWorkflowID("") == user.WorkflowID("") {
		t.Errorf("the value %q names the sequence of userId 42 as a legacy one", crafted.Key)
	}
}
