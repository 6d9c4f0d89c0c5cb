// Package spotws is the spot-ws service: it captures Binance spot depth
// streams (diff and partial) into JetStream with pkg/ingest. See
// README.md for settings, behaviour and metrics.
package spotws

import (
	"context"

	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
)

// Market is the market this service captures.
const Market = md.Spot

// Config is spot-ws's configuration (environment variables, see README.md).
type Config struct {
	ingest.Config
}

// DefaultConfig returns the defaults, for in-process use.
func DefaultConfig() Config { return Config{ingest.DefaultConfig()} }

// Validate checks every setting for the spot market and names the
// variable and the allowed values on error.
func (c *Config) Validate() error { return c.ValidateFor(Market) }

// Run runs spot-ws until ctx ends: NATS (remote or embedded), streams,
// capture, drain.
func Run(ctx context.Context, cfg *Config, env svc.Env) error {
	return ingest.RunService(ctx, cfg.Config, Market, env)
}
