package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

func TestHTTPSinkIsIdempotent(t *testing.T) {
	led := newLedger()
	s, err := startHTTPSink(led, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	post := func(action, key string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.url+"/"+action, strings.NewReader(`{"data":{"event":{"id":"chaos-000001"}}}`))
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	first := make(chan int)
	go func() { first <- post(actionSlow, "k1") }()
	testenv.Eventually(t, 5*time.Second, func() string {
		if led.counts().InFlight != 1 {
			return "the first slow call is not in flight"
		}
		return ""
	})
	if got := post(actionSlow, "k1"); got != http.StatusConflict {
		t.Errorf("a call whose key is in flight got %d, want 409", got)
	}
	if got := <-first; got != http.StatusOK {
		t.Errorf("the first call got %d, want 200", got)
	}
	if got := post(actionSlow, "k1"); got != http.StatusOK {
		t.Errorf("a call whose key was applied got %d, want 200", got)
	}
	if got := post(actionQuick, "k2"); got != http.StatusOK {
		t.Errorf("a quick call got %d, want 200", got)
	}
	if got := post(actionQuick, ""); got != http.StatusBadRequest {
		t.Errorf("a call without Idempotency-Key got %d, want 400", got)
	}

	snap := led.snapshot()
	for i := range snap.Records {
		r := &snap.Records[i]
		if r.First.IsZero() || r.Done.Before(r.First) || r.Last.Before(r.First) {
			t.Errorf("%s: times first %v, done %v, last %v", r.Key, r.First, r.Done, r.Last)
		}
		r.First, r.Done, r.Last = time.Time{}, time.Time{}, time.Time{}
	}
	want := []record{
		{Channel: chanHTTP, Key: "k1", Event: "chaos-000001", Action: actionSlow, Deliveries: 3, Applied: 1, Redelivered: 1, Conflicts: 1},
		{Channel: chanHTTP, Key: "k2", Event: "chaos-000001", Action: actionQuick, Deliveries: 1, Applied: 1},
	}
	if fmt.Sprint(snap.Records) != fmt.Sprint(want) {
		t.Errorf("ledger =\n%+v\nwant\n%+v", snap.Records, want)
	}
	if len(snap.Malformed) != 1 {
		t.Errorf("malformed deliveries = %q, want the one without a key", snap.Malformed)
	}
}

func TestSMTPSinkFaults(t *testing.T) {
	led := newLedger()
	s, err := startSMTPSink(led, 42, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	events := map[mailFault]string{} // an event whose mail the seed strikes with each fault
	for seq := 1; len(events) < 3; seq++ {
		if _, ok := events[s.fault(eventID(seq))]; !ok {
			events[s.fault(eventID(seq))] = eventID(seq)
		}
	}
	ids := map[mailFault]string{}
	for f, ev := range events {
		ids[f] = "dispatch-" + ev + ".d.a@dispatcher"
	}
	send := func(id string) error {
		ev := strings.TrimSuffix(strings.TrimPrefix(id, "dispatch-"), ".d.a@dispatcher")
		msg := "Message-ID: <" + id + ">\r\nX-Dispatcher-Event: " + ev + "\r\nSubject: hi\r\n\r\nbody\r\n"
		c, err := smtp.Dial(s.addr) // plain SMTP, as the dispatcher speaks it to a server without STARTTLS
		if err != nil {
			return err
		}
		defer c.Close()
		return c.SendMail("chaos@example.com", []string{"to@example.com"}, strings.NewReader(msg))
	}

	if err := send(ids[faultDrop]); err == nil {
		t.Error("a dropped delivery reported success")
	}
	t0 := time.Now()
	if err := send(ids[faultSlow]); err != nil {
		t.Errorf("slowed delivery: %v", err)
	} else if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("slowed delivery answered after %s, want ≥ 200ms", d)
	}
	for _, id := range []string{ids[faultNone], ids[faultNone], ids[faultDrop]} {
		if err := send(id); err != nil {
			t.Errorf("delivery of %s: %v", id, err)
		}
	}

	got := map[string]record{}
	for _, r := range led.snapshot().Records {
		got[r.Key] = r
	}
	for _, tt := range []struct {
		fault                           mailFault
		deliveries, applied, redelivery int
	}{
		{faultDrop, 2, 1, 0}, // not accepted the first time: the retry is the one delivery
		{faultSlow, 1, 1, 0},
		{faultNone, 2, 1, 1}, // the second delivery is dropped by Message-ID
	} {
		r := got[ids[tt.fault]]
		if r.Deliveries != tt.deliveries || r.Applied != tt.applied || r.Redelivered != tt.redelivery {
			t.Errorf("fault %d: %+v, want %d deliveries, applied %d, %d redelivered", tt.fault, r, tt.deliveries, tt.applied, tt.redelivery)
		}
	}
	if snap := led.snapshot(); snap.MailDropped != 1 || snap.MailSlowed != 1 {
		t.Errorf("faults counted: %d dropped, %d slowed; want 1 and 1", snap.MailDropped, snap.MailSlowed)
	}
}
