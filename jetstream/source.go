// Package jetstream takes events in from NATS JetStream: a stream on the
// subjects <prefix>.> (created when missing), a durable pull consumer
// with explicit acknowledgements, and dead letters published back into
// the stream under <prefix>.dead.<type>. A message is acknowledged only
// once Temporal has durably accepted its events (package intake decides).
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/dispatcherhq/dispatcher/intake"
	"github.com/dispatcherhq/dispatcher/internal/redact"
)

// Consumer is the default name of the durable consumer: the one every
// deployment had before the name could be set, whose acknowledgements it
// keeps.
const Consumer = "dispatcher"

// Config says where the events come from.
type Config struct {
	// URL is the NATS server's (nats://host:4222; several, comma-separated,
	// for a cluster; user:pass@ or a token in it; tls:// for TLS).
	URL string
	// Stream is the JetStream stream, created on Subject+".>" when missing.
	Stream string
	// Subject is the subjects' prefix: events are published on
	// <Subject>.<type>, dead letters on <Subject>.dead.<type>.
	Subject string
	// Consumer names the durable consumer (default Consumer). Deployments
	// that share a stream each need one of their own: a consumer is
	// shared by its processes, which compete for its messages.
	Consumer string
	// Prefetch bounds the messages pulled and handled at once: none is
	// pulled ahead of a free handler. 1 to MaxPrefetch.
	Prefetch int
	// MaxDeliver is how often a message is delivered without being
	// acknowledged before it goes to the dead letters: its last delivery
	// is still tried, and dead-lettered should the source stop before
	// Temporal takes it; a later one (the last crashed the process, or its
	// dead letter failed) is dead-lettered untried. The source counts:
	// JetStream delivers without limit, so a message is never dropped.
	MaxDeliver int
	// AckWait is how long JetStream waits for an acknowledgement before it
	// delivers a message again (after a crash); a message in hand is kept
	// from it with progress acknowledgements, three in each AckWait: at
	// least MinAckWait.
	AckWait time.Duration
}

// MinAckWait is the shortest AckWait: progress acknowledgements every
// nanosecond would be no better than none.
const MinAckWait = time.Second

// HeaderError is the header of a dead letter that says why it is one;
// HeaderSubject the subject it was published on; HeaderBodyDropped, on a
// dead letter without the message's body (too large to go with the
// headers), where the message is.
const (
	HeaderError       = "x-dispatcher-error"
	HeaderSubject     = "x-dispatcher-subject"
	HeaderBodyDropped = "x-dispatcher-body-dropped"
)

// handBack is the delay of a message handed back by a stopping source:
// long enough for JetStream to deliver it to another consumer, not to
// the stopping one's last pull request (a delivery it would only waste).
const handBack = time.Second

// deadLetterRecent is how long a refused dead letter keeps the source
// not ready: longer than the longest wait before its message comes again
// (maxRetry), and no longer, since another process may have dead-lettered
// it since.
const deadLetterRecent = maxRetry + 15*time.Second

// Bounds of the wait between attempts to reach the stream.
const (
	minRetry = time.Second
	maxRetry = 30 * time.Second
)

// Source consumes the stream until its Run ends.
type Source struct {
	cfg     Config
	handler *intake.Handler
	metrics *intake.SourceMetrics
	log     *slog.Logger

	js js.JetStream
	// connErr is why the last attempt to connect failed; nil once
	// connected.
	connErr  atomic.Pointer[error]
	consumer atomic.Pointer[js.Consumer]
	up       atomic.Bool
	lastErr  atomic.Pointer[error]
	inFlight sync.WaitGroup
	// slots bound the messages in hand, and turns keep ordered events in
	// delivery order, across the consumer's re-creations: messages taken
	// before one are still in hand after it.
	slots chan struct{}
	turns intake.Turns
	// held holds the stream sequences of the messages in hand (handle).
	held sync.Map
	// deadFailures are the failed attempts to dead-letter: they make the
	// source not ready, and are logged once a minute.
	deadFailures intake.Backoff
}

// New returns the source of cfg, whose messages h takes in. h waits for
// Temporal as long as it takes (Hold 0): a message in hand is kept from
// redelivery with progress acknowledgements, which do not count as
// deliveries.
//
// MaxPrefetch is the largest prefetch: the most messages the consumer
// hands out unacknowledged, to all its processes together (JetStream's
// default MaxAckPending, which the consumer keeps). A larger one pulled
// nothing more, and set aside memory for it: 10,000,000 took 685 MB idle.
const MaxPrefetch = 1000

func New(cfg Config, h *intake.Handler, m *intake.SourceMetrics, log *slog.Logger) *Source {
	if cfg.Consumer == "" {
		cfg.Consumer = Consumer
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 64
	}
	cfg.Prefetch = min(cfg.Prefetch, MaxPrefetch)
	if cfg.MaxDeliver < 2 {
		cfg.MaxDeliver = 10
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	cfg.AckWait = max(cfg.AckWait, MinAckWait)
	h.Hold = 0
	return &Source{cfg: cfg, handler: h, metrics: m, log: log.With("source", "nats", "stream", cfg.Stream, "consumer", cfg.Consumer), slots: make(chan struct{}, cfg.Prefetch)}
}

// Run consumes until ctx ends; it connects again, and creates the stream
// and the consumer again, whenever they fail. Once ctx has ended it lets
// the messages in hand finish (or go back) before it returns.
func (s *Source) Run(ctx context.Context) {
	nc := s.connect(ctx)
	if nc == nil {
		return
	}
	defer nc.Close()
	defer s.inFlight.Wait()
	wait := minRetry
	for ctx.Err() == nil {
		began := time.Now()
		err := s.consume(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil || time.Since(began) > maxRetry {
			wait = minRetry // it consumed a while: a new failure starts the backoff again
		}
		if err == nil {
			continue
		}
		if cerr := s.connErr.Load(); cerr != nil {
			err = fmt.Errorf("not connected to the server (%w), reconnecting: %w", *cerr, err)
		}
		s.lastErr.Store(&err)
		s.log.Warn("nats intake: not consuming; trying again", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxRetry)
	}
}

// connect connects to NATS, trying again with backoff while it fails at
// once, until ctx ends (nil). A server that does not answer is no such
// failure: the connection is made, and the client connects and reconnects
// by itself.
func (s *Source) connect(ctx context.Context) *nats.Conn {
	for wait := minRetry; ; wait = min(2*wait, maxRetry) {
		nc, err := nats.Connect(s.cfg.URL, nats.Name("dispatcher"), nats.MaxReconnects(-1),
			nats.ReconnectWait(time.Second), nats.RetryOnFailedConnect(true),
			// dispatcher_broker_up follows the connection too: before, it
			// stayed 1 while the source was cut off.
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				s.metrics.Up.Set(0)
				if err != nil {
					s.log.Warn("nats intake: disconnected; reconnecting", "err", err)
				}
			}),
			nats.ReconnectHandler(func(*nats.Conn) {
				s.connErr.Store(nil)
				if s.up.Load() {
					s.metrics.Up.Set(1)
				}
				s.log.Info("nats intake: reconnected")
			}),
			nats.ConnectHandler(func(*nats.Conn) { s.connErr.Store(nil) }),
			// Each failed attempt to connect, for the log and /readyz:
			// else a server that refuses the connection reads as a
			// stream that does not answer in time.
			nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					err = redact.URL(err)
					s.connErr.Store(&err)
				}
			}),
			// The client gives up for good when the server refuses its
			// credentials twice: they may be fixed on the server (a user
			// created late, a password rotated), so it keeps trying.
			nats.IgnoreAuthErrorAbort(),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				s.log.Warn("nats intake: the server reported an error", "err", err)
			}))
		if err == nil {
			if s.js, err = js.New(nc); err == nil {
				return nc
			}
			nc.Close()
		}
		err = redact.URL(err)
		s.lastErr.Store(&err)
		s.log.Error("nats intake: cannot connect; trying again", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Ready says whether the source consumes and JetStream answers about its
// consumer: the readiness check of /readyz.
func (s *Source) Ready(ctx context.Context) error {
	if since, failing := s.deadFailures.FailingSince(deadLetterRecent); failing {
		// Before, /readyz said ok and only the log told (as it does for
		// RabbitMQ): the message comes back, and takes a handler each time.
		return fmt.Errorf("nats intake cannot dead-letter messages (since %s): they are delivered again until it can; the log says why", since.UTC().Format(time.RFC3339))
	}
	c := s.consumer.Load()
	if cerr := s.connErr.Load(); cerr != nil {
		return fmt.Errorf("nats intake not connected to the server, reconnecting: %w", *cerr)
	}
	if !s.up.Load() || c == nil {
		if err := s.lastErr.Load(); err != nil && *err != nil {
			return fmt.Errorf("nats intake not consuming: %w", *err)
		}
		return errors.New("nats intake not consuming yet")
	}
	_, err := (*c).Info(ctx)
	return err
}

// setUp creates the stream when it is missing and creates the consumer,
// or updates it when it filters on our subjects; it refuses another
// deployment's.
func (s *Source) setUp(ctx context.Context) (js.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := s.js.Stream(ctx, s.cfg.Stream)
	if errors.Is(err, js.ErrStreamNotFound) {
		stream, err = s.js.CreateStream(ctx, js.StreamConfig{
			Name: s.cfg.Stream, Subjects: []string{s.cfg.Subject + ".>"},
			Storage: js.FileStorage, Retention: js.LimitsPolicy,
			// Kept a week: the events a producer would want to look at
			// again, and the dead letters, which live in the stream too.
			MaxAge: 7 * 24 * time.Hour,
		})
		if err == nil {
			s.log.Info("nats intake: created the stream", "subjects", s.cfg.Subject+".>")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", s.cfg.Stream, err)
	}
	// The dead letters live in the stream, and the source acknowledges
	// them: a stream that deletes what is acknowledged would lose them.
	if r := stream.CachedInfo().Config.Retention; r != js.LimitsPolicy {
		return nil, fmt.Errorf("stream %s: its retention is %s, which deletes the dead letters once acknowledged; "+
			"the source consumes only a stream with limits retention", s.cfg.Stream, r)
	}
	// MaxDeliver -1: JetStream would drop a message at its limit, even one
	// whose dead letter failed; handle keeps the limit instead. Updating
	// it lifts the limit of a consumer an older version created.
	cfg := js.ConsumerConfig{
		Durable: s.cfg.Consumer, AckPolicy: js.AckExplicitPolicy, AckWait: s.cfg.AckWait,
		MaxDeliver: -1, FilterSubject: s.cfg.Subject + ".>", DeliverPolicy: js.DeliverAllPolicy,
	}
	c, err := stream.Consumer(ctx, s.cfg.Consumer)
	switch {
	case errors.Is(err, js.ErrConsumerNotFound):
		c, err = stream.CreateConsumer(ctx, cfg)
	case err == nil:
		// Another deployment's consumer, on other subjects: updating its
		// filter would take its messages and move its acknowledgement
		// floor past those of ours it never saw.
		if err = sameFilter(c.CachedInfo().Config, cfg.FilterSubject); err == nil {
			c, err = stream.UpdateConsumer(ctx, cfg)
		}
	}
	var apiErr *js.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == errFilterNotInStream {
		on := "takes no subjects of its own (it sources or mirrors others)"
		if subjects := stream.CachedInfo().Config.Subjects; len(subjects) > 0 {
			on = "is on the subjects " + strings.Join(subjects, ", ") + ", which do not hold " + cfg.FilterSubject
		}
		return nil, fmt.Errorf("stream %s %s: add %s to its subjects (or widen one that overlaps it), or name a stream on it", s.cfg.Stream, on, cfg.FilterSubject)
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s on stream %s: %w", s.cfg.Consumer, s.cfg.Stream, err)
	}
	return c, nil
}

// errFilterNotInStream is JetStream's error for a consumer whose filter
// is not within its stream's subjects.
const errFilterNotInStream js.ErrorCode = 10093

// sameFilter refuses a consumer that filters on other subjects than
// want.
func sameFilter(cfg js.ConsumerConfig, want string) error {
	have := cfg.FilterSubject
	if len(cfg.FilterSubjects) > 0 {
		have = strings.Join(cfg.FilterSubjects, ", ")
	}
	if have == want {
		return nil
	}
	if have == "" {
		have = "none (the whole stream)"
	}
	return fmt.Errorf("it filters on %s, not on %s: it is another deployment's, and is left as it is; "+
		"set DISPATCHER_NATS_CONSUMER to a name of this deployment's own, or delete the consumer if nothing uses it", have, want)
}

// fetchWait is how long one pull waits for messages, at most.
const fetchWait = 5 * time.Second

// pullWait is how long one pull waits for messages: fetchWait, or half
// the AckWait when that is shorter. JetStream keeps a pull open until it
// expires, also one of a process that died: a message redelivered to it
// meanwhile is counted towards MaxDeliver and never seen. Before, with
// an AckWait under 5 s, a crash cost two deliveries, and an event that
// never failed was dead-lettered untried (a probe).
func pullWait(ackWait time.Duration) time.Duration {
	return min(fetchWait, ackWait/2)
}

// consume pulls messages until ctx ends (nil) or the consumer fails. It
// pulls no more than it has free handlers for: a message pulled ahead of
// its handler would wait without progress acknowledgements, and JetStream
// would deliver it again every AckWait, each time counting towards
// MaxDeliver, for as long as Temporal is away.
func (s *Source) consume(ctx context.Context) error {
	c, err := s.setUp(ctx)
	if err != nil {
		return err
	}
	s.consumer.Store(&c)
	s.up.Store(true)
	s.metrics.Up.Set(1)
	defer func() { s.up.Store(false); s.metrics.Up.Set(0) }()
	s.log.Info("nats intake consuming", "subjects", s.cfg.Subject+".>", "prefetch", s.cfg.Prefetch)

	cctx, cancel := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	// watchLag gone before the gauge goes to 0: it would set it to 1 again.
	defer func() { cancel(); <-lagDone }()
	go func() { defer close(lagDone); s.watchLag(cctx, c) }()
	for failed := 0; ; {
		// A free handler, then every other one free now.
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		n := 1
		for free := true; free && n < s.cfg.Prefetch; {
			select {
			case s.slots <- struct{}{}:
				n++
			default:
				free = false
			}
		}
		err := s.fetch(ctx, c, n)
		switch {
		case err == nil:
			failed = 0
		case errors.Is(err, js.ErrConsumerDeleted) || errors.Is(err, js.ErrConsumerNotFound) || errors.Is(err, js.ErrStreamNotFound):
			return err // created again by the next setUp
		case failed < maxFetchFailures:
			// A leader election, a reconnection: the same pull again.
			failed++
			s.log.Info("nats intake: a pull failed; pulling again", "err", err)
			select {
			case <-time.After(minRetry):
			case <-ctx.Done():
				return nil
			}
		default:
			return err
		}
	}
}

// maxFetchFailures is how many pulls in a row may fail before the source
// sets the stream and the consumer up again.
const maxFetchFailures = 3

// fetch pulls up to n messages, for which n slots are taken, and hands
// each to a handler of its own; the slots of those that do not come are
// given back. The pull ends with ctx: it must not take in the messages
// that the handlers, stopping, hand back.
func (s *Source) fetch(ctx context.Context, c js.Consumer, n int) error {
	fctx, cancel := context.WithTimeout(ctx, pullWait(s.cfg.AckWait))
	defer cancel()
	asked := n
	batch, err := c.Fetch(n, js.FetchContext(fctx))
	if err != nil {
		for range n {
			<-s.slots
		}
		return err
	}
	for msg := range batch.Messages() {
		n--
		if ctx.Err() != nil {
			_ = msg.NakWithDelay(handBack)
			<-s.slots
			continue
		}
		s.inFlight.Add(1)
		turn := s.turns.Take() // ordered events go to Temporal in delivery order
		go func() {
			defer s.inFlight.Done()
			defer func() { <-s.slots }()
			defer turn.Done() // also when the message never reaches Handle
			s.handle(intake.WithTurn(ctx, turn), msg)
		}()
	}
	received := asked - n
	for range n {
		<-s.slots
	}
	if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if received == 0 && ctx.Err() == nil {
		// Nothing came: the consumer may be gone. A pull waiting when it
		// is deleted hears so, but one made after never does: the pulls
		// of a consumer deleted while every handler was busy went
		// unanswered for good.
		ictx, cancel := context.WithTimeout(ctx, fetchWait)
		defer cancel()
		if _, err := c.Info(ictx); errors.Is(err, js.ErrConsumerNotFound) || errors.Is(err, js.ErrStreamNotFound) {
			return err
		}
	}
	return nil
}

// watchLag reads the messages not yet delivered to the consumer into the
// lag gauge every few seconds. A read that fails sets
// dispatcher_broker_up to 0 until one succeeds: a connection that stalls
// (nothing closes it) is noticed by the client's pings only minutes later,
// and before, the gauge said up meanwhile while /readyz said down.
func (s *Source) watchLag(ctx context.Context, c js.Consumer) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := c.Info(ictx)
		switch {
		case ctx.Err() != nil: // the session ends: its own defer says so
		case err != nil:
			s.metrics.Up.Set(0)
		default:
			s.metrics.Lag.Set(float64(info.NumPending))
			if s.up.Load() {
				s.metrics.Up.Set(1)
			}
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
