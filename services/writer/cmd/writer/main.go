// Command writer consumes MARKETDATA into ZSTD Parquet files, one per
// market, kind, symbol and day. Configuration: environment variables (see
// the README's table and services/writer/config.go).
package main

import (
	"context"
	"errors"
	"os"
	"runtime/debug"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/writer"
)

func main() {
	var cfg writer.Config
	svc.Main("writer", "127.0.0.1:9104", &cfg, run)
}

func run(ctx context.Context, cfg *writer.Config, env svc.Env) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		// The heap holds at most WRITER_MEMORY_LIMIT of rows, a pull
		// buffer and working memory: a soft limit there makes the GC
		// collect before the heap doubles (GOGC=100 alone let RSS reach
		// 1.7x the rows in make bench's market scenario).
		debug.SetMemoryLimit(writer.SoftMemoryLimit(*cfg))
	}
	conn, err := bus.Connect(ctx, cfg.Config, cfg.DataDir, "writer", env.Log)
	if err != nil {
		return err
	}
	if err := bus.EnsureStreams(ctx, conn.JS, cfg.StreamConfig); err != nil {
		conn.Close()
		return err
	}
	w, err := writer.New(*cfg, conn, env)
	if err != nil {
		conn.Close()
		return err
	}
	runErr := w.Run(ctx)
	dctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(runErr, conn.Drain(dctx))
}
