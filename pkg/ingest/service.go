package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
)

// RunService is the whole of spot-ws or futures-ws: connect to NATS (or
// start the embedded server), provision the streams, capture market m
// until ctx ends, then drain the connection.
func RunService(ctx context.Context, cfg Config, m md.Market, env svc.Env) error {
	name := ServiceName(m)
	conn, err := bus.Connect(ctx, cfg.BusConfig, cfg.DataDir, name, env.Log, NATSOptions()...)
	if err != nil {
		return err
	}
	if err := bus.EnsureStreams(ctx, conn.JS, cfg.StreamConfig); err != nil {
		conn.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	e, err := New(cfg, m, conn, env, Options{})
	if err != nil {
		conn.Close()
		return err
	}
	runErr := e.Run(ctx)
	dctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(runErr, conn.Drain(dctx))
}
