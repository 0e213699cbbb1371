package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/producer"
	"github.com/dispatcherhq/dispatcher/rabbitmq"
)

// TestEndToEndAMQPIntake runs the real binary taking events from a real
// RabbitMQ: 1,000 messages in every envelope, the worker SIGKILLed and
// started again midway, two invalid messages among them; then Temporal
// stopped while more arrive. Every event is dispatched exactly once (one
// Idempotency-Key at the sink), the invalid ones are dead letters with
// their reasons, and while Temporal is down nothing is acknowledged and
// nothing lost.
func TestEndToEndAMQPIntake(t *testing.T) {
	url := brokerURL("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
	conn, err := amqp.Dial(url)
	if err != nil {
		testenv.Missing(t, "RabbitMQ at %s is unavailable (make services starts it): %v", url, err)
		return
	}
	t.Cleanup(func() { _ = conn.Close() })
	name := "dispatcher.test." + randomName()
	t.Cleanup(func() { deleteAMQPTopology(conn, name) })

	sink := &brokerSink{keys: map[int]map[string]bool{}}
	temporal := &restartableTemporal{}
	s := brokerSystem(t, temporal, sink, "DISPATCHER_AMQP_URL="+url, "DISPATCHER_AMQP_EXCHANGE="+name, "DISPATCHER_AMQP_QUEUE="+name)

	pub, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	r := &brokerRun{t: t, s: s, sink: sink, temporal: temporal, source: "amqp", prefix: "ce_",
		producers: brokerProducers(t, func() producer.Transport {
			return producer.AMQP(url, producer.AMQPExchange(name), producer.AMQPDeclare(false))
		}),
		publish: func(_ int, body []byte, contentType string, headers map[string]string, msgID string) {
			t.Helper()
			table := amqp.Table{}
			for k, v := range headers {
				table[k] = v
			}
			dc, err := pub.PublishWithDeferredConfirmWithContext(t.Context(), name, brokerEventType, true, false, amqp.Publishing{
				ContentType: contentType, Headers: table, MessageId: msgID, DeliveryMode: amqp.Persistent, Body: body,
			})
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := dc.WaitContext(t.Context()); !ok || err != nil {
				t.Fatalf("publish not confirmed: %v", err)
			}
		},
		deadLetters: func(want int) []string {
			t.Helper()
			var reasons []string
			s.poll(fmt.Sprintf("%d dead letters in %s.dead", want, name), func() bool {
				d, ok, err := pub.Get(name+".dead", false)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					reason, _ := d.Headers[rabbitmq.HeaderError].(string)
					reasons = append(reasons, reason)
					if d.RoutingKey != brokerEventType {
						t.Errorf("dead letter's routing key %q, want the original's", d.RoutingKey)
					}
				}
				return len(reasons) >= want
			})
			return reasons
		},
		held: func(n int) string {
			got, exact := queueDepth(t, pub, name)
			if !exact && n > 0 {
				return "" // the unacknowledged cannot be counted; acked_total tells
			}
			if got != n {
				return fmt.Sprintf("queue %s holds %d messages (ready and unacknowledged), want %d", name, got, n)
			}
			return ""
		},
	}
	// The exchange and queues exist before the test publishes: the worker
	// declared them.
	if _, err := pub.QueueDeclarePassive(name+".dead", true, false, false, false, nil); err != nil {
		t.Fatalf("the worker did not declare the dead-letter queue: %v", err)
	}
	t.Run("1,000 messages, the worker killed midway", func(t *testing.T) { r.t = t; r.crash() })
	t.Run("Temporal down: nothing acked, nothing lost", func(t *testing.T) { r.t = t; r.outage() })
}

// queueDepth is the messages in queue, ready and unacknowledged: what
// rabbitmqctl tells (exact), which AMQP does not (it counts the ready ones
// only).
func queueDepth(t *testing.T, ch *amqp.Channel, queue string) (n int, exact bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "list_queues", "--no-table-headers", "name", "messages").Output()
	if err != nil {
		// Not on this host, or no right to the Erlang cookie: the ready
		// messages only.
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return q.Messages, false
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == queue {
			n, _ := strconv.Atoi(f[1])
			return n, true
		}
	}
	t.Fatalf("rabbitmqctl does not list queue %s:\n%s", queue, out)
	return 0, false
}

// deleteAMQPTopology removes what the worker declared for the test.
func deleteAMQPTopology(conn *amqp.Connection, name string) {
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	defer ch.Close()
	for _, q := range []string{name, name + ".dead"} {
		_, _ = ch.QueueDelete(q, false, false, false)
	}
	for _, x := range []string{name, name + ".dlx"} {
		_ = ch.ExchangeDelete(x, false, false)
	}
}
