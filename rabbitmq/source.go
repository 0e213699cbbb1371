// Package rabbitmq takes events in from RabbitMQ over AMQP 0-9-1: a
// durable topic exchange, a durable queue bound to it with "#", and a
// dead-letter exchange and queue for the messages that can never be
// dispatched. A message is acknowledged only once Temporal has durably
// accepted its events (package intake decides), so what the dispatcher
// has not taken stays in the queue.
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dispatcherhq/dispatcher/intake"
	"github.com/dispatcherhq/dispatcher/internal/redact"
)

// Config says where the events come from.
type Config struct {
	// URL is the AMQP URL (amqp://user:pass@host:5672/vhost, amqps:// for
	// TLS).
	URL string
	// Exchange is the durable topic exchange producers publish to, the
	// routing key being the event type by convention. Dead letters go to
	// Exchange+".dlx".
	Exchange string
	// Queue is the durable queue the dispatcher consumes, bound to
	// Exchange with "#"; dead letters are kept in Queue+".dead".
	Queue string
	// Prefetch bounds the messages delivered to this process and not yet
	// acknowledged, and so those it handles at once: 1 to MaxPrefetch.
	Prefetch int
}

// MaxPrefetch is the largest prefetch AMQP can carry (a 16-bit count;
// more would wrap, 65536 to 0, which means no limit at all).
const MaxPrefetch = math.MaxUint16

// CheckURL reports why raw is not an AMQP URL the source can dial. Its
// error never quotes a password.
func CheckURL(raw string) error {
	if _, err := amqp.ParseURI(raw); err != nil {
		return redact.URL(err)
	}
	return redact.Ambiguous(raw)
}

// HeaderError is the header of a dead letter that says why it is one.
const HeaderError = "x-dispatcher-error"

// hold is how long a message waits in the dispatcher's hands for
// Temporal before it goes back to the queue (and comes again): well
// within RabbitMQ's consumer_timeout, which closes the channel of a
// delivery unacknowledged for 30 minutes (15 before RabbitMQ 3.8.17).
const hold = 30 * time.Second

// orderedHold is hold for an ordered event, or one that may be: handed
// back, it comes again behind the later events of its key. Before, it
// was handed back after 30 s too, and an outage of Temporal or the store
// a minute long ran most keys' held events out of order.
const orderedHold = 10 * time.Minute

// Bounds of the wait between connection attempts.
const (
	minReconnect = time.Second
	maxReconnect = 30 * time.Second
)

// Source consumes the queue until its Run ends.
type Source struct {
	cfg     Config
	handler *intake.Handler
	metrics *intake.SourceMetrics
	log     *slog.Logger

	up      atomic.Bool
	lastErr atomic.Pointer[error]
	// deadBackoff spaces the attempts to dead-letter while they fail,
	// across sessions.
	deadBackoff intake.Backoff
	// deadMu makes one handler at a time declare and publish on the dead
	// letters' channel: amqp091 sends a publish's frames one by one, and
	// a declaration's frame from another handler landed between them
	// (505 UNEXPECTED_FRAME), closing the channel, and the session, with
	// the acknowledgements of dead letters already published.
	deadMu sync.Mutex
}

// New returns the source of cfg, whose messages h takes in. h's Hold is
// set to the time a message may wait for Temporal here.
func New(cfg Config, h *intake.Handler, m *intake.SourceMetrics, log *slog.Logger) *Source {
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 64
	}
	cfg.Prefetch = min(cfg.Prefetch, MaxPrefetch)
	h.Hold, h.OrderedHold = hold, orderedHold
	return &Source{cfg: cfg, handler: h, metrics: m, log: log.With("source", "amqp", "queue", cfg.Queue)}
}

// Run consumes until ctx ends, connecting again with backoff whenever the
// connection fails. Once ctx has ended it lets the messages in hand finish
// (or go back to the queue) before it returns.
func (s *Source) Run(ctx context.Context) {
	wait := minReconnect
	for ctx.Err() == nil {
		began := time.Now()
		consumed, err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		s.lastErr.Store(&err)
		// A session that consumed for a while starts the backoff again;
		// one that dies as soon as it consumes (a message the client
		// cannot decode, which the broker hands it again and again)
		// backs off like a refused one.
		if consumed && time.Since(began) > maxReconnect {
			wait = minReconnect
		}
		s.log.Warn("amqp intake: connection lost or refused; connecting again", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxReconnect)
	}
}

// deadLetterRecent is how long a refused dead letter keeps the source
// not ready: longer than the backoff before the message is tried again,
// and no longer, since another process may have dead-lettered it since.
const deadLetterRecent = 30 * time.Second

// Ready says whether the source is connected and consuming: the
// readiness check of /readyz.
func (s *Source) Ready(context.Context) error {
	if since, failing := s.deadBackoff.FailingSince(deadLetterRecent); failing {
		// Its messages go back to the queue and take the prefetch: the
		// messages behind them wait too.
		return fmt.Errorf("amqp intake cannot dead-letter messages (since %s): they go back to the queue, and those behind them wait; the log says why", since.UTC().Format(time.RFC3339))
	}
	if s.up.Load() {
		return nil
	}
	if err := s.lastErr.Load(); err != nil && *err != nil {
		return fmt.Errorf("amqp intake not consuming: %w", *err)
	}
	return errors.New("amqp intake not consuming yet")
}

// session connects, declares the topology and consumes until ctx ends or
// the connection or one of its channels fails; consumed says whether it
// got as far as consuming.
func (s *Source) session(ctx context.Context) (consumed bool, err error) {
	conn, err := amqp.DialConfig(s.cfg.URL, amqp.Config{
		Heartbeat:  10 * time.Second,
		Properties: amqp.Table{"connection_name": "dispatcher"},
		Dial:       amqp.DefaultDial(10 * time.Second),
	})
	if err != nil {
		return false, redact.URL(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return false, err
	}
	if err := declare(ch, s.cfg); err != nil {
		return false, err
	}
	if err := ch.Qos(s.cfg.Prefetch, 0, false); err != nil {
		return false, err
	}
	// Dead letters are published on a channel of their own, with
	// confirms: the message is acknowledged only once its dead letter is
	// safe.
	pub, err := conn.Channel()
	if err != nil {
		return false, err
	}
	if err := pub.Confirm(false); err != nil {
		return false, err
	}
	host, _ := os.Hostname()
	tag := fmt.Sprintf("dispatcher-%s-%d", host, os.Getpid())
	deliveries, err := ch.Consume(s.cfg.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return false, err
	}
	// A channel closes with its connection, or alone on a channel error: a
	// dead letter to an exchange that is gone closes pub, and with it
	// every dead letter would fail. The next session has both again.
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	pubClosed := pub.NotifyClose(make(chan *amqp.Error, 1))
	s.up.Store(true)
	s.metrics.Up.Set(1)
	s.log.Info("amqp intake consuming", "exchange", s.cfg.Exchange, "prefetch", s.cfg.Prefetch)

	// When the session ends it is down at once, whatever its handlers
	// still do (a Temporal start: seconds; before, it said up meanwhile),
	// and they stop waiting for Temporal.
	hctx, cancel := context.WithCancel(ctx)
	end := func() {
		s.up.Store(false)
		s.metrics.Up.Set(0)
		cancel()
	}
	defer end()
	go s.watch(hctx, conn)
	var wg sync.WaitGroup
	defer wg.Wait()
	var turns intake.Turns // ordered events go to Temporal in delivery order
	for {
		select {
		case <-ctx.Done():
			end()
			_ = ch.Cancel(tag, false)
			// What the broker sent before the cancel goes back at once.
			for d := range deliveries {
				_ = d.Nack(false, true)
			}
			return true, nil
		case e := <-pubClosed:
			end()
			return true, closedErr(e, "the dead letters' channel closed")
		case d, ok := <-deliveries:
			if !ok {
				end()
				// The channel's error, if it closed, is there by now; the
				// broker may also have cancelled the consumer alone.
				select {
				case e := <-chClosed:
					return true, closedErr(e, "the consumer's channel closed")
				default:
					return true, errors.New("the broker cancelled the consumer")
				}
			}
			wg.Add(1)
			turn := turns.Take() // in delivery order
			go func() {
				defer wg.Done()
				defer turn.Done() // also when the message never reaches Handle
				s.handle(intake.WithTurn(hctx, turn), pub, d)
			}()
		}
	}
}

// closedErr is why a channel closed: e, or what when it closed without
// an error.
func closedErr(e *amqp.Error, what string) error {
	if e != nil {
		return fmt.Errorf("%s: %w", what, e)
	}
	return errors.New(what)
}

// declare declares the exchanges and queues, durable: declaring what
// exists with the same settings changes nothing.
func declare(ch *amqp.Channel, cfg Config) error {
	if err := declareDead(ch, cfg); err != nil {
		return err
	}
	// What RabbitMQ itself dead-letters (a policy's TTL or length limit)
	// lands with the dispatcher's dead letters.
	if _, err := ch.QueueDeclare(cfg.Queue, true, false, false, false, amqp.Table{"x-dead-letter-exchange": cfg.Exchange + ".dlx"}); err != nil {
		return fmt.Errorf("declare queue %s: %w", cfg.Queue, err)
	}
	return bind(ch, cfg)
}

// bind declares the exchange and binds the queue to it.
func bind(ch *amqp.Channel, cfg Config) error {
	if err := ch.ExchangeDeclare(cfg.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", cfg.Exchange, err)
	}
	if err := ch.QueueBind(cfg.Queue, "#", cfg.Exchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %s: %w", cfg.Queue, err)
	}
	return nil
}

// declareDead declares the dead-letter exchange and its queue, bound to
// it: where a dead letter is routed. The broker confirms a dead letter
// that no queue took as it does one a queue took, so they are declared
// again before each dead letter: a queue deleted to purge it, or
// unbound, would have the message acknowledged and gone.
func declareDead(ch *amqp.Channel, cfg Config) error {
	dlx, dead := cfg.Exchange+".dlx", cfg.Queue+".dead"
	if err := ch.ExchangeDeclare(dlx, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", dlx, err)
	}
	if _, err := ch.QueueDeclare(dead, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare queue %s: %w", dead, err)
	}
	if err := ch.QueueBind(dead, "#", dlx, false, nil); err != nil {
		return fmt.Errorf("bind queue %s: %w", dead, err)
	}
	return nil
}

// watch reads the queue's depth every few seconds into the lag gauge,
// and binds the queue to the exchange again each time, declaring the
// exchange if it is gone: an exchange deleted and declared again (a
// clean-up, a producer that declares it) or an unbinding left the queue
// with no route to it, and the broker confirmed and dropped every event
// published until the worker restarted, while it looked healthy.
func (s *Source) watch(ctx context.Context, conn *amqp.Connection) {
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	defer ch.Close()
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		q, err := ch.QueueDeclarePassive(s.cfg.Queue, true, false, false, false, nil)
		if err != nil {
			return // the queue is gone: the consumer's session ends and declares it again
		}
		s.metrics.Lag.Set(float64(q.Messages))
		if err := bind(ch, s.cfg); err != nil {
			// Declared anew with other settings: the session ends, and the
			// next one's declaration fails, saying why, not ready, until
			// the exchange is as the source needs it. Before, it went on
			// looking ready, its queue unbound.
			s.log.Warn("amqp intake: cannot bind its queue to its exchange again; reconnecting", "exchange", s.cfg.Exchange, "err", err)
			_ = conn.Close()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watchEvery is how often watch reads the queue and binds it again.
const watchEvery = 5 * time.Second
