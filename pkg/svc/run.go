package svc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Base is the configuration every service shares.
type Base struct {
	LogConfig
	MetricsAddr     string        `envconfig:"METRICS_ADDR" desc:"listen address of /metrics, /healthz and /readyz; port 0 picks a free port; empty uses the service's default port"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"30s" desc:"how long an ordered shutdown may take"`
}

// Validate checks the shared settings.
func (b Base) Validate() error {
	if err := b.LogConfig.Validate(); err != nil {
		return err
	}
	if b.ShutdownTimeout <= 0 {
		return Invalid("SHUTDOWN_TIMEOUT", b.ShutdownTimeout, "a duration > 0, e.g. 30s")
	}
	return nil
}

// Env is what a running service gets from the runtime.
type Env struct {
	Log      *zap.Logger
	Registry *prometheus.Registry
	Health   *Health
	Server   *Server // nil when the service runs inside another (all-in-one)
}

// Main is the whole of a service's main function: it loads cfg, builds
// the logger, serves metrics on cfg's METRICS_ADDR (or defaultAddr), runs
// run under a context cancelled by SIGINT/SIGTERM, and exits once: 0 on a
// clean stop, 1 on a run error, 2 on a configuration error.
func Main[C Config](name, defaultAddr string, cfg C, run func(ctx context.Context, cfg C, env Env) error) {
	os.Exit(runMain(name, defaultAddr, cfg, run))
}

// Config is a service's configuration: validated, with the shared Base.
type Config interface {
	Validator
	Runtime() Base
}

// Runtime returns the shared settings; config structs embed Base.
func (b Base) Runtime() Base { return b }

func runMain[C Config](name, defaultAddr string, cfg C, run func(ctx context.Context, cfg C, env Env) error) int {
	if err := Load(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	b := cfg.Runtime()
	log, err := NewLogger(b.LogConfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("service", name))

	addr := b.MetricsAddr
	if addr == "" {
		addr = defaultAddr
	}
	env := Env{Log: log, Registry: NewRegistry(), Health: NewHealth()}
	env.Server, err = Listen(addr, env.Registry, env.Health, log)
	if err != nil {
		log.Error("start", zap.Error(err))
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = run(ctx, cfg, env)

	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = env.Server.Shutdown(sctx)
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		log.Info("stopped")
		return 0
	case errors.Is(err, ErrConfig):
		log.Error("invalid configuration", zap.Error(err))
		return 2
	default:
		log.Error("stopped with error", zap.Error(err))
		return 1
	}
}

// Stopper runs shutdown steps in order under one deadline.
type Stopper struct {
	log   *zap.Logger
	steps []step
}

type step struct {
	name string
	fn   func(context.Context) error
}

// NewStopper returns an empty Stopper.
func NewStopper(log *zap.Logger) *Stopper { return &Stopper{log: log} }

// Add appends a step. Steps run in the order added.
func (s *Stopper) Add(name string, fn func(context.Context) error) {
	s.steps = append(s.steps, step{name, fn})
}

// Stop runs every step within timeout, logging each failure once, and
// returns the first error.
func (s *Stopper) Stop(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var first error
	for _, st := range s.steps {
		start := time.Now()
		if err := st.fn(ctx); err != nil {
			s.log.Warn("shutdown step failed", zap.String("step", st.name), zap.Error(err))
			if first == nil {
				first = fmt.Errorf("shutdown %s: %w", st.name, err)
			}
			continue
		}
		s.log.Debug("shutdown step done", zap.String("step", st.name), zap.Duration("took", time.Since(start)))
	}
	return first
}
