package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/api"
	"github.com/dispatcherhq/dispatcher/intake"
	"github.com/dispatcherhq/dispatcher/jetstream"
	"github.com/dispatcherhq/dispatcher/rabbitmq"
)

// source is a broker intake: it consumes until its context ends.
type source interface {
	Run(ctx context.Context)
	Ready(ctx context.Context) error
}

// brokers reports whether the environment enables a broker intake.
func (c config) brokers() bool { return c.AMQP.URL != "" || c.NATS.URL != "" }

// startSources starts the broker intakes the environment enables, each
// starting its events with starter for its tenant and counting them in
// events, and adds their readiness checks ("amqp", "nats") to checks. The
// returned wait blocks until they have stopped once ctx has ended: until
// the messages in hand are acknowledged or handed back.
func (p process) startSources(ctx context.Context, starter intake.Starter, reg prometheus.Registerer, events *intake.Events, checks map[string]api.Check) (wait func(), err error) {
	if !p.cfg.brokers() {
		return func() {}, nil
	}
	metrics, err := intake.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	run := func(name string, s source) {
		checks[name] = s.Ready
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Run(ctx)
		}()
	}
	handler := func(name, tenant string) *intake.Handler {
		return &intake.Handler{Source: name, Starter: starter, Tenant: tenant, MaxBytes: p.cfg.MaxEventBytes, Now: time.Now, Log: p.log, Events: events}
	}
	if p.cfg.AMQP.URL != "" {
		p.log.Info("taking events from RabbitMQ", "url", redacted("DISPATCHER_AMQP_URL", p.cfg.AMQP.URL),
			"exchange", p.cfg.AMQP.Exchange, "queue", p.cfg.AMQP.Queue, "tenant", p.cfg.AMQPTenant)
		run("amqp", rabbitmq.New(p.cfg.AMQP, handler("amqp", p.cfg.AMQPTenant), metrics.Source("amqp"), p.log))
	}
	if p.cfg.NATS.URL != "" {
		if p.cfg.NATS.Prefetch > jetstream.MaxPrefetch {
			p.log.Warn("DISPATCHER_NATS_PREFETCH is more than the consumer hands out; taken as its most", "prefetch", p.cfg.NATS.Prefetch, "most", jetstream.MaxPrefetch)
		}
		p.log.Info("taking events from NATS JetStream", "url", redacted("DISPATCHER_NATS_URL", p.cfg.NATS.URL),
			"stream", p.cfg.NATS.Stream, "consumer", p.cfg.NATS.Consumer, "subjects", p.cfg.NATS.Subject+".>", "tenant", p.cfg.NATSTenant)
		run("nats", jetstream.New(p.cfg.NATS, handler("nats", p.cfg.NATSTenant), metrics.Source("nats"), p.log))
	}
	return wg.Wait, nil
}

// tenantName reads a tenant's name ("" is the implicit tenant).
func tenantName(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		if !dispatcher.ValidTenant(v) {
			return fmt.Errorf("want a tenant name of 1 to 64 letters, digits, '_' or '-', or nothing for the implicit tenant")
		}
		*field(c) = v
		return nil
	}
}

// natsName reads the name of a JetStream stream or consumer.
func natsName(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		if !jetstream.ValidName(v) {
			return fmt.Errorf("want a name without white space, dots, *, >, / or \\")
		}
		*field(c) = v
		return nil
	}
}

// amqpName reads the name of an exchange or a queue that the dispatcher
// declares with a name of its own beside it, suffix added: AMQP names are
// at most 255 bytes, and a longer one failed its declaration at every
// retry, for ever, the other declared already.
func amqpName(suffix string, field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		if n := len(v + suffix); n > 255 {
			return fmt.Errorf("want at most %d bytes: with %s, the name of its dead letters', it would be %d, and AMQP names are at most 255", 255-len(suffix), suffix, n)
		}
		*field(c) = v
		return nil
	}
}

// natsSubject reads a subject prefix.
func natsSubject(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		if !jetstream.ValidSubject(v) {
			return fmt.Errorf("want tokens separated by dots (events, or tenant_a.events), none empty, without white space, * or >")
		}
		*field(c) = v
		return nil
	}
}

// between reads a whole number from least to most.
func between(least, most int, field func(*config) *int) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < least || n > most {
			return fmt.Errorf("want a whole number from %d to %d", least, most)
		}
		*field(c) = n
		return nil
	}
}

// durationAtLeast reads a duration of at least least.
func durationAtLeast(least time.Duration, field func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := parseDuration(v)
		if err != nil || d < least {
			return fmt.Errorf("want a duration of at least %s, such as 30s or 2m", least)
		}
		*field(c) = d
		return nil
	}
}
