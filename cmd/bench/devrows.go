package main

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dispatcherhq/dispatcher/internal/proc"
	"github.com/dispatcherhq/dispatcher/producer"
)

// orderingKey is the key of the ordered row's dispatcher: the events of
// one user one after another.
const orderingKey = "content.userId"

// devRow is a dev-server row of the dispatcher binary: the same
// `dispatcher serve`, configuration and sinks in each, events reaching
// it another way or ordered.
type devRow struct {
	name   string // of the row, its task queue and its logs: dispatcher, amqp, nats, ordered
	broker broker // nil: events through POST /events/v1
	keys   int    // >0: the dispatcher orders by orderingKey, the events spread over this many keys
	// result is where the report keeps the row.
	result func(*report) *phase
}

// deployedDynamicConfig is what the dev servers of the bench run with as
// the deployed clusters do (deployments/temporal/dynamicconfig.yaml),
// where the CLI's default differs: the search-attribute cache is not
// refreshed from the database on every request that uses it (the
// dispatcher's /readyz waits until its search attributes are usable).
var deployedDynamicConfig = []string{"--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=false"}

// deployedRetention gives the dev server's namespace the retention the
// deployments register it with (168h, DISPATCHER_DEDUP_WINDOW's default),
// so that the dispatcher deduplicates events by Temporal as deployed,
// without the database record it keeps under a shorter retention.
func deployedRetention(ctx context.Context, srv *proc.DevServer) error {
	tc, err := srv.Dial()
	if err != nil {
		return err
	}
	defer tc.Close()
	_, err = tc.WorkflowService().UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{Namespace: "default",
		Config: &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(168 * time.Hour)}})
	if err != nil {
		return fmt.Errorf("setting the dev server's retention to 168h as deployed: %w", err)
	}
	return nil
}

// benchDevRow measures row on a fresh dev server with a fresh store: one
// `dispatcher serve` with its events through its HTTP intake or the
// row's broker, dispatched by its worker to the sinks. Whatever happens
// it stops its processes and then deletes the broker's topology.
func benchDevRow(ctx context.Context, p params, dir string, prog *progress, row devRow) (phase, error) {
	var cl cleanups
	defer cl.run()
	srv, err := proc.StartDevServer(ctx, proc.DevServerOptions{CLI: p.TemporalCLI, LogPath: filepath.Join(dir, "temporal-"+row.name+".log"),
		ExtraArgs: deployedDynamicConfig})
	if err != nil {
		return phase{}, err
	}
	cl.add(func() { srv.Stop(syscall.SIGINT, 10*time.Second) })
	if err := deployedRetention(ctx, srv); err != nil {
		return phase{}, err
	}
	storeURL, dropDB, err := benchDatabase(ctx, p, dir, row.name)
	if err != nil {
		return phase{}, err
	}
	cl.add(dropDB)
	st, err := newStack(p, dir, prog, temporalTarget{Addr: srv.Addr, Pid: srv.Pid()}, storeURL, nil)
	if err != nil {
		return phase{}, err
	}
	cl.add(st.close)
	l := layout{serve: 1}
	var pub *producer.Producer
	if b := row.broker; b != nil {
		// Registered before the processes start, so it runs after they
		// stopped: a running dispatcher would declare it all again.
		cl.add(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := b.remove(ctx); err != nil {
				prog.note("%s: could not delete the topology of %s: %v", row.name, b, err)
			}
		})
		l.env = b.env()
		if pub, err = producer.New(b.transport(p.Concurrency), producer.WithSource("dispatcher-bench")); err != nil {
			return phase{}, err
		}
		cl.add(func() { _ = pub.Close() })
	}
	if row.keys > 0 {
		st.ordering = orderingKey
	}
	d, err := st.deploy(ctx, row.name, l)
	if err != nil {
		return phase{}, err
	}
	cl.add(d.stop)
	d.keys = row.keys
	if pub != nil {
		d.publish = publisher(pub)
		d.brokerPid = listenerPid(row.broker.addr())
	}
	res, err := d.measure(ctx, row.name, p.N, false)
	if err != nil {
		return res, err
	}
	if p.Await == "temporal" && (row.broker != nil || row.keys > 0) {
		res.Notes = append(res.Notes, "done = every action reached its sink, -await temporal notwithstanding: its events have no run to await when they are taken")
	}
	if row.broker != nil && d.brokerPid == 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("the process of %s was not found (not on this machine, or in a container), its CPU time is not counted", row.broker))
	}
	return res, nil
}

// publisher sends bench events through a producer, each with the bench's
// id; it returns once the broker has them (RabbitMQ confirmed the
// publish, JetStream acknowledged it).
func publisher(pub *producer.Producer) func(ctx context.Context, id string, c content) (accepted, error) {
	return func(ctx context.Context, id string, c content) (accepted, error) {
		ev, err := pub.Dispatch(ctx, "bench", c, producer.WithID(id))
		if err != nil {
			return accepted{}, fmt.Errorf("publish: %w", err)
		}
		return accepted{Duplicate: ev.Receipt.Duplicate, Attempts: ev.Receipt.Attempts}, nil
	}
}

// devRows are the rows beside the HTTP dispatcher row that p asks for,
// in the order they run.
func devRows(p params) []devRow {
	var rows []devRow
	if p.Brokers {
		rows = append(rows,
			devRow{name: "amqp", broker: newAMQPTopology(p.AMQPURL), result: func(r *report) *phase { return &r.AMQP }},
			devRow{name: "nats", broker: newNATSTopology(p.NATSURL), result: func(r *report) *phase { return &r.NATS }})
	}
	if p.Ordered {
		rows = append(rows, devRow{name: "ordered", keys: p.OrderedKeys, result: func(r *report) *phase { return &r.Ordered }})
	}
	return rows
}
