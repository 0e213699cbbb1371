package main

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
)

// production is what the production layout measured: Temporal server on
// PostgreSQL with SQL visibility, the store on PostgreSQL.
type production struct {
	Server string // "Temporal 1.29.1 (bin/temporal-server), PostgreSQL 15.20"
	Shards int
	Serve  phase     // the production unit, `dispatcher serve`
	Open   openPhase // the same processes at a fixed rate
	Split  phase     // `dispatcher api` + `dispatcher worker`
	Bare   phase     // the baseline's bare workflow
	Scale  []phase   // serve ×k, k from -scale
}

// benchProduction measures every row of the production layout, one
// after the other, on one Temporal cluster and one store, each row on a
// task queue of its own and with processes of its own.
func benchProduction(ctx context.Context, p params, dir string, prog *progress) (production, error) {
	res := production{Shards: p.Shards}
	var cl cleanups
	defer cl.run()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	conn, err := pgx.Connect(ctx, p.PostgresURL)
	if err != nil {
		return res, fmt.Errorf("postgres at %s: %w", redact(p.PostgresURL), err)
	}
	cl.add(func() { _ = conn.Close(context.Background()) })
	var pgVersion string
	_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&pgVersion)

	cluster, drop, err := startPGCluster(ctx, p, dir, prog)
	cl.add(drop)
	if err != nil {
		return res, err
	}
	res.Server = fmt.Sprintf("Temporal server %s (`bin/temporal-server`, SQL visibility), PostgreSQL %s", cluster.Version, pgVersion)
	storeURL, dropStore, err := createStoreDB(ctx, conn, p.PostgresURL, cluster.prefix+"_store")
	cl.add(dropStore)
	if err != nil {
		return res, err
	}
	tconn, err := pgx.Connect(ctx, withDatabase(p.PostgresURL, cluster.prefix+"_temporal"))
	if err != nil {
		return res, fmt.Errorf("postgres, Temporal's database: %w", err)
	}
	cl.add(func() { _ = tconn.Close(context.Background()) })
	stats := &pgStats{conn: conn, temporal: tconn, names: map[string]string{
		dbTemporal:   cluster.prefix + "_temporal",
		dbVisibility: cluster.prefix + "_temporal_visibility",
		dbStore:      cluster.prefix + "_store",
	}}
	st, err := newStack(p, dir, prog, cluster.temporalTarget, storeURL, stats)
	if err != nil {
		return res, err
	}
	cl.add(st.close)

	// The production unit, closed loop, then open loop at half its rate.
	d, err := st.deploy(ctx, "prod", layout{serve: 1})
	if err != nil {
		return res, err
	}
	res.Serve, err = d.measure(ctx, "prod", p.N, true)
	if err == nil && p.OpenN > 0 {
		rate := p.OpenRate
		if rate == 0 {
			rate = res.Serve.Load.perSecond() / 2
		}
		res.Open, err = d.openLoop(ctx, "open", p.OpenN, rate)
	}
	d.stop()
	if err != nil {
		return res, fmt.Errorf("serve: %w", err)
	}

	// The baseline's shape next, so that the pair behind prod_ratio runs
	// as close in time as it can on a machine whose load drifts.
	res.Bare, err = runBare(ctx, p, prog, cluster.temporalTarget,
		shape{name: "bare", workflow: bareWorkflowName, awaitGet: true}, "bench-bare-pg", stats)
	if err != nil {
		return res, fmt.Errorf("bare workflow: %w", err)
	}

	// What compose deployed before: no eager start.
	if d, err = st.deploy(ctx, "split", layout{split: true}); err != nil {
		return res, err
	}
	res.Split, err = d.measure(ctx, "split", p.N, true)
	d.stop()
	if err != nil {
		return res, fmt.Errorf("api + worker: %w", err)
	}

	for _, k := range p.Scale {
		name := fmt.Sprintf("scale-%d", k)
		if d, err = st.deploy(ctx, name, layout{serve: k}); err != nil {
			return res, err
		}
		ph, err := d.measure(ctx, name, p.ScaleN, false)
		d.stop()
		if err != nil {
			return res, fmt.Errorf("serve ×%d: %w", k, err)
		}
		res.Scale = append(res.Scale, ph)
	}
	return res, nil
}
