package main

import (
	"sort"
	"sync"
	"time"
)

// Channels an effect arrives through.
const (
	chanHTTP = "http"
	chanMail = "mail"
)

// Actions of the chaos dispatcher, as the sinks tell them apart: the task
// function's path, or a mail.
const (
	actionSlow  = "slow"
	actionQuick = "quick"
	actionMail  = "mail"
)

// eventActions are the logical effects each event must have, once each.
func eventActions() []string { return []string{actionSlow, actionQuick, actionMail} }

// record is what the sinks saw of one key: an Idempotency-Key of a task
// call, or a Message-ID of a mail.
type record struct {
	Channel string `json:"channel"`
	Key     string `json:"key"`
	Event   string `json:"event"` // data.event.id, or the X-Dispatcher-Event header
	Action  string `json:"action"`
	// Deliveries counts the requests (DATA commands) that carried the key.
	Deliveries int `json:"deliveries"`
	// Applied counts the times its effect took place: 1 is right, more is
	// a duplicate (which an idempotent receiver never lets happen).
	Applied int `json:"applied"`
	// Redelivered counts deliveries after it had been applied, answered
	// without applying it again.
	Redelivered int `json:"redelivered"`
	// Conflicts counts deliveries answered 409 because an earlier one was
	// still in flight.
	Conflicts int `json:"conflicts"`
	// First, Done and Last are when the first delivery arrived, when the
	// effect took place, and when the last delivery arrived.
	First time.Time `json:"first"`
	Done  time.Time `json:"done"`
	Last  time.Time `json:"last"`
	// inFlight counts deliveries still being answered.
	inFlight int
}

// arrival is how a sink must answer a delivery.
type arrival int

const (
	arrivalNew        arrival = iota // never seen: apply it
	arrivalInFlight                  // a delivery of it is being applied: 409
	arrivalRedelivery                // applied already: acknowledge, do not apply
)

// ledger records every delivery the sinks receive, by key. It is the
// ground truth the verdict is drawn from: what reached the outside
// world, whatever the dispatcher believes.
type ledger struct {
	mu      sync.Mutex
	records map[string]*record // by channel + " " + key
	applied int
	// Faults the SMTP sink injected, and deliveries it could not read.
	slowedMails, droppedMails int
	malformed                 []string
}

func newLedger() *ledger {
	return &ledger{records: map[string]*record{}}
}

func (l *ledger) record(channel, key, event, action string) *record {
	r, ok := l.records[channel+" "+key]
	if !ok {
		r = &record{Channel: channel, Key: key, Event: event, Action: action}
		l.records[channel+" "+key] = r
	}
	r.Deliveries++
	r.Last = time.Now()
	if r.Deliveries == 1 {
		r.First = r.Last
	}
	return r
}

// httpArrive records a task call and says how the idempotent receiver
// answers it. A new key is in flight until httpApplied or httpAborted.
func (l *ledger) httpArrive(key, event, action string) arrival {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.record(chanHTTP, key, event, action)
	switch {
	case r.inFlight > 0:
		r.Conflicts++
		return arrivalInFlight
	case r.Applied > 0:
		r.Redelivered++
		return arrivalRedelivery
	}
	r.inFlight++
	return arrivalNew
}

// httpApplied records that the call with key took effect.
func (l *ledger) httpApplied(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.records[chanHTTP+" "+key]
	r.inFlight--
	r.Applied++
	r.Done = time.Now()
	l.applied++
}

// httpAborted records that the call with key ended without effect (the
// sink is shutting down).
func (l *ledger) httpAborted(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records[chanHTTP+" "+key].inFlight--
}

// mailArrive records a mail's delivery; first is true when its
// Message-ID was never delivered before (the moment the sink's faults
// strike). The mail is in flight until mailAccepted or mailDropped.
func (l *ledger) mailArrive(messageID, event string) (first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.record(chanMail, messageID, event, actionMail)
	r.inFlight++
	return r.Deliveries == 1
}

// mailAccepted records that the sink took responsibility for the mail
// (answered, or was about to answer, 250). A Message-ID accepted before
// is a redelivery: receivers drop it by Message-ID.
func (l *ledger) mailAccepted(messageID string, slowed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.records[chanMail+" "+messageID]
	r.inFlight--
	if slowed {
		l.slowedMails++
	}
	if r.Applied > 0 {
		r.Redelivered++
		return
	}
	r.Applied++
	r.Done = time.Now()
	l.applied++
}

// mailDropped records a delivery whose connection the sink dropped
// after the body, without an answer: the mail is not accepted.
func (l *ledger) mailDropped(messageID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records[chanMail+" "+messageID].inFlight--
	l.droppedMails++
}

// malformedDelivery records a delivery that lacks what identifies it
// (an Idempotency-Key, an event id, a Message-ID): an engine defect.
func (l *ledger) malformedDelivery(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.malformed = append(l.malformed, what)
}

// counts are the ledger's running totals, for progress lines.
type counts struct {
	Applied, InFlight int
}

func (l *ledger) counts() counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := counts{Applied: l.applied}
	for _, r := range l.records {
		if r.inFlight > 0 {
			c.InFlight++
		}
	}
	return c
}

// snapshot is a copy of the ledger, sorted by channel and key.
type snapshot struct {
	Records                 []record
	MailSlowed, MailDropped int
	Malformed               []string
}

func (l *ledger) snapshot() snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := snapshot{MailSlowed: l.slowedMails, MailDropped: l.droppedMails, Malformed: append([]string(nil), l.malformed...)}
	for _, r := range l.records {
		s.Records = append(s.Records, *r)
	}
	sort.Slice(s.Records, func(i, j int) bool {
		a, b := s.Records[i], s.Records[j]
		if a.Channel != b.Channel {
			return a.Channel < b.Channel
		}
		return a.Key < b.Key
	})
	return s
}
