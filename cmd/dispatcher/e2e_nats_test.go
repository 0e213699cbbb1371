package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/jetstream"
	"github.com/dispatcherhq/dispatcher/producer"
)

// TestEndToEndNATSIntake is TestEndToEndAMQPIntake with NATS JetStream:
// a stream the worker creates, its durable pull consumer, dead letters on
// <subject>.dead.<type>.
func TestEndToEndNATSIntake(t *testing.T) {
	url := brokerURL("TEST_NATS_URL", nats.DefaultURL)
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		testenv.Missing(t, "NATS at %s is unavailable (make services starts it): %v", url, err)
		return
	}
	t.Cleanup(nc.Close)
	jsc, err := js.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jsc.AccountInfo(t.Context()); err != nil {
		testenv.Missing(t, "NATS at %s has no JetStream (make services starts it with -js): %v", url, err)
		return
	}
	id := randomName()
	stream, subject := "DISPATCHER_TEST_"+id, "test"+id
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = jsc.DeleteStream(ctx, stream)
	})

	sink := &brokerSink{keys: map[int]map[string]bool{}}
	temporal := &restartableTemporal{}
	s := brokerSystem(t, temporal, sink, "DISPATCHER_NATS_URL="+url, "DISPATCHER_NATS_STREAM="+stream,
		"DISPATCHER_NATS_SUBJECT="+subject, "DISPATCHER_NATS_ACK_WAIT=5s")
	consumer := func() *js.ConsumerInfo {
		t.Helper()
		c, err := jsc.Consumer(t.Context(), stream, jetstream.Consumer)
		if err != nil {
			t.Fatalf("the worker's consumer: %v", err)
		}
		info, err := c.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	// No MaxDeliver: the source keeps the limit, so that JetStream never
	// drops a message whose dead letter failed.
	if info := consumer(); info.Config.AckPolicy != js.AckExplicitPolicy || info.Config.MaxDeliver != -1 {
		t.Fatalf("consumer config %+v, want explicit acks and MaxDeliver -1", info.Config)
	}
	r := &brokerRun{t: t, s: s, sink: sink, temporal: temporal, source: "nats", prefix: "ce-",
		producers: brokerProducers(t, func() producer.Transport {
			return producer.NATS(url, producer.NATSSubjectPrefix(subject+"."), producer.NATSStream(stream))
		}),
		publish: func(_ int, body []byte, contentType string, headers map[string]string, msgID string) {
			t.Helper()
			m := nats.NewMsg(subject + "." + brokerEventType)
			m.Data = body
			m.Header.Set("Content-Type", contentType)
			for k, v := range headers {
				m.Header.Set(k, v)
			}
			if msgID != "" {
				m.Header.Set(nats.MsgIdHdr, msgID)
			}
			if _, err := jsc.PublishMsg(t.Context(), m); err != nil {
				t.Fatal(err)
			}
		},
		deadLetters: func(want int) []string {
			t.Helper()
			var reasons []string
			s.poll(fmt.Sprintf("%d dead letters on %s.dead.>", want, subject), func() bool {
				reasons = nil
				c, err := jsc.OrderedConsumer(t.Context(), stream, js.OrderedConsumerConfig{FilterSubjects: []string{subject + ".dead.>"}})
				if err != nil {
					t.Fatal(err)
				}
				batch, err := c.FetchNoWait(want + 1)
				if err != nil {
					t.Fatal(err)
				}
				for m := range batch.Messages() {
					if m.Subject() != subject+".dead."+brokerEventType || m.Headers().Get(jetstream.HeaderSubject) != subject+"."+brokerEventType {
						t.Errorf("dead letter on %s from %s, want %s.dead.%s", m.Subject(), m.Headers().Get(jetstream.HeaderSubject), subject, brokerEventType)
					}
					reasons = append(reasons, m.Headers().Get(jetstream.HeaderError))
				}
				return len(reasons) >= want
			})
			return reasons
		},
		held: func(n int) string {
			info := consumer()
			if got := int(info.NumPending) + info.NumAckPending; got != n || info.NumRedelivered > 0 && n > 0 {
				return fmt.Sprintf("consumer: %d pending, %d unacknowledged, %d redelivered; want %d held",
					info.NumPending, info.NumAckPending, info.NumRedelivered, n)
			}
			return ""
		},
	}
	t.Run("1,000 messages, the worker killed midway", func(t *testing.T) { r.t = t; r.crash() })
	t.Run("Temporal down: nothing acked, nothing lost", func(t *testing.T) { r.t = t; r.outage() })
}
