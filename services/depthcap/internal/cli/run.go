package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/depthcap/internal/allinone"
)

func init() {
	register(command{name: "run", summary: "the whole pipeline in one process against Binance (embedded NATS, local data)", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return runPipeline(ctx, "run", false, args, stderr)
	}})
	register(command{name: "demo", summary: "the whole pipeline against an embedded binance-sim, offline (REPLAY=<file.rec.gz,...> replays recordings)", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return runPipeline(ctx, "demo", true, args, stderr)
	}})
}

// defaultMetricsAddr is the all-in-one's /metrics, /healthz, /readyz.
const defaultMetricsAddr = "127.0.0.1:9100"

func runPipeline(ctx context.Context, name string, demo bool, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(stderr, "usage: depthcap %s\n\nAll settings are environment variables (README: configuration); the most used:\n", name)
		_, _ = fmt.Fprintln(stderr, "  DATA_DIR=./data  DURATION=10m  SYMBOLS=top:50  MARKETS=spot,futures  S3_ENDPOINT=...")
		if demo {
			_, _ = fmt.Fprintln(stderr, "  REPLAY=file.rec.gz[,...]  DEMO_FAULTS=1  SIM_SYMBOLS=50  SIM_SPEED=1")
		}
	}
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	cfg, services, err := allinone.Load(demo)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap %s: %v\n", name, err)
		return ExitUsage
	}
	log, err := svc.NewLogger(cfg.LogConfig)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap %s: %v\n", name, err)
		return ExitUsage
	}
	defer func() { _ = log.Sync() }()
	addr := cfg.MetricsAddr
	if addr == "" {
		addr = defaultMetricsAddr
	}
	env := svc.Env{Log: log, Registry: svc.NewRegistry(), Health: svc.NewHealth()}
	env.Server, err = svc.Listen(addr, env.Registry, env.Health, log)
	if err != nil {
		log.Error("start", zap.Error(err))
		return ExitFound
	}
	defer func() { _ = env.Server.Shutdown(context.Background()) }()
	err = allinone.Run(ctx, cfg, services, demo, env)
	switch {
	case err == nil || errors.Is(err, context.Canceled):
		log.Info("stopped")
		return ExitOK
	case errors.Is(err, svc.ErrConfig):
		log.Error("invalid configuration", zap.Error(err))
		return ExitUsage
	default:
		log.Error("stopped with error", zap.Error(err))
		return ExitFound
	}
}
