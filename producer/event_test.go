package producer

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/dispatcherhq/dispatcher/wire"
)

var clock = time.Date(2030, 1, 31, 9, 0, 0, 123456789, time.UTC)

// dispatchOne dispatches through a fake transport and returns the event.
func dispatchOne(t *testing.T, opts []Option, typ string, data any, dopts ...DispatchOption) Event {
	t.Helper()
	p := newProducer(t, &fakeTransport{}, nil, append([]Option{WithClock(func() time.Time { return clock })}, opts...)...)
	ev, err := p.Dispatch(context.Background(), typ, data, dopts...)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestLKEnvelope(t *testing.T) {
	for _, tt := range []struct {
		name  string
		data  any
		opts  []DispatchOption
		want  string
		wantC string // the dispatcher's event content
	}{
		{
			name: "user and partition key", data: map[string]any{"userId": 42},
			opts: []DispatchOption{WithID("evt-1"), WithUserID("u-7"), WithPartitionKey("pk-7")},
			want: `{"id":"evt-1","type":"user_deleted","timestamp":"2030-01-31T09:00:00.123Z","data":{"userId":42},` +
				`"source":{"userId":"u-7","producerId":"billing@host-1","kinesisPartitionKey":"pk-7"}}`,
			wantC: `{"userId":42}`,
		},
		{
			name: "no user, no key, no data", data: nil, opts: []DispatchOption{WithID("evt-2")},
			want:  `{"id":"evt-2","type":"user_deleted","timestamp":"2030-01-31T09:00:00.123Z","data":{},"source":{"producerId":"billing@host-1"}}`,
			wantC: `{}`,
		},
		{
			name: "raw JSON and its own time", data: json.RawMessage(`{ "a": [1, 2] }`),
			opts: []DispatchOption{WithID("evt-3"), WithTime(time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("CEST", 7200)))},
			want: `{"id":"evt-3","type":"user_deleted","timestamp":"2024-05-06T05:08:09.000Z","data":{"a":[1,2]},` +
				`"source":{"producerId":"billing@host-1"}}`,
			wantC: `{"a":[1,2]}`,
		},
		{
			name: "a struct", data: struct {
				Name string `json:"name"`
			}{"Ann"},
			opts:  []DispatchOption{WithID("evt-4")},
			want:  `{"id":"evt-4","type":"user_deleted","timestamp":"2030-01-31T09:00:00.123Z","data":{"name":"Ann"},"source":{"producerId":"billing@host-1"}}`,
			wantC: `{"name":"Ann"}`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := dispatchOne(t, []Option{WithSource("billing@host-1")}, "user_deleted", tt.data, tt.opts...)
			if string(ev.Body) != tt.want {
				t.Errorf("body\n got %s\nwant %s", ev.Body, tt.want)
			}
			if ev.ContentType != "application/json" || ev.Envelope != EnvelopeLK {
				t.Errorf("content type %q, envelope %q", ev.ContentType, ev.Envelope)
			}
			// The dispatcher's intake reads it as the producer meant it.
			var w wire.Event
			if err := json.Unmarshal(ev.Body, &w); err != nil {
				t.Fatal(err)
			}
			got, err := w.ToDomain(time.Now())
			if err != nil {
				t.Fatalf("the dispatcher refuses it: %v", err)
			}
			if w.Envelope() != "lk" || got.ID != ev.ID || got.Type != ev.Type || !got.Time.Equal(ev.Time) ||
				got.Source != "billing@host-1" || string(got.Content) != tt.wantC {
				t.Errorf("the dispatcher reads %s %+v, want the event %+v", w.Envelope(), got, ev)
			}
		})
	}
}

func TestCloudEventsEnvelope(t *testing.T) {
	ev := dispatchOne(t, []Option{WithEnvelope(EnvelopeCloudEvents), WithSource("https://billing.example.com")},
		"invoice.paid", map[string]any{"amount": 12.5}, WithUserID("u-7"), WithPartitionKey("acct-1"))
	want := `{"specversion":"1.0","id":"` + ev.ID + `","source":"https://billing.example.com","type":"invoice.paid",` +
		`"time":"2030-01-31T09:00:00.123Z","datacontenttype":"application/json","userid":"u-7","partitionkey":"acct-1",` +
		`"data":{"amount":12.5}}`
	if string(ev.Body) != want {
		t.Errorf("body\n got %s\nwant %s", ev.Body, want)
	}
	if ev.ContentType != "application/cloudevents+json; charset=utf-8" {
		t.Errorf("content type %q", ev.ContentType)
	}
	// The CloudEvents SDK, which the dispatcher reads CloudEvents with,
	// finds a valid event with every attribute.
	var ce cloudevents.Event
	if err := json.Unmarshal(ev.Body, &ce); err != nil {
		t.Fatal(err)
	}
	if err := ce.Validate(); err != nil {
		t.Fatalf("invalid CloudEvent: %v", err)
	}
	ext := ce.Extensions()
	if ce.ID() != ev.ID || ce.Type() != "invoice.paid" || ce.Source() != "https://billing.example.com" ||
		!ce.Time().Equal(ev.Time) || ext["userid"] != "u-7" || ext["partitionkey"] != "acct-1" || string(ce.Data()) != `{"amount":12.5}` {
		t.Errorf("the SDK reads %s", ce)
	}

	// Data need not be an object in a CloudEvent.
	ev = dispatchOne(t, []Option{WithEnvelope(EnvelopeCloudEvents)}, "t", []int{1, 2})
	if !strings.Contains(string(ev.Body), `"data":[1,2]`) {
		t.Errorf("body %s", ev.Body)
	}
}

func TestDispatchRefusesInvalidEvents(t *testing.T) {
	for _, tt := range []struct {
		name string
		typ  string
		data any
		opts []DispatchOption
		want string
	}{
		{"no type", "", nil, nil, "type: is required"},
		{"type too long", strings.Repeat("x", 257), nil, nil, "at most 256"},
		{"NUL in type", "a\x00b", nil, nil, "NUL"},
		{"type not UTF-8", "a\xffb", nil, nil, "UTF-8"},
		{"empty id", "t", nil, []DispatchOption{WithID("")}, ""},
		{"id too long", "t", nil, []DispatchOption{WithID(strings.Repeat("x", 201))}, "at most 200"},
		// As the dispatcher refuses them: before, sent, and dead-lettered.
		{"double quote in id", "t", nil, []DispatchOption{WithID(`q"1`)}, "id: must not contain a double quote"},
		{"backslash in id", "t", nil, []DispatchOption{WithID(`b\1`)}, "id: must not contain a double quote, a backslash"},
		{"tab in type", "a\tb", nil, nil, "type: must not contain"},
		{"NUL in user id", "t", nil, []DispatchOption{WithUserID("\x00")}, "userId"},
		{"partition key too long", "t", nil, []DispatchOption{WithPartitionKey(strings.Repeat("k", 1025))}, "partitionKey: must be at most 1024 bytes"},
		{"time before 1970", "t", nil, []DispatchOption{WithTime(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))}, "1960"},
		{"data not JSON", "t", make(chan int), nil, "not JSON"},
		{"invalid raw JSON", "t", json.RawMessage(`{`), nil, "not JSON"},
		{"lk data an array", "t", []int{1}, nil, "must be a JSON object"},
		{"lk data a string", "t", "hello", nil, "must be a JSON object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := &fakeTransport{}
			p := newProducer(t, tr, nil)
			_, err := p.Dispatch(context.Background(), tt.typ, tt.data, tt.opts...)
			if tt.name == "empty id" {
				// WithID("") leaves the generated id.
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || Retryable(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want ErrInvalid, not retryable, saying %q", err, tt.want)
			}
			if len(tr.sent) != 0 {
				t.Error("an invalid event was sent")
			}
		})
	}
}

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := range 1000 {
		now := clock.Add(time.Duration(i) * time.Millisecond)
		id := newID(now)
		if !uuidV7.MatchString(id) {
			t.Fatalf("%q is not a UUIDv7", id)
		}
		if seen[id] {
			t.Fatalf("%q twice", id)
		}
		seen[id] = true
		// The first 48 bits are the time in milliseconds: ids sort by time.
		if id[:13] <= prev {
			t.Fatalf("%q sorts before %q, made earlier", id, prev)
		}
		prev = id[:13]
	}
	if got := newID(clock)[:13]; got != "01b97732-defb" {
		t.Errorf("time prefix %s, want 01b97732-defb (%d ms)", got, clock.UnixMilli())
	}
}
