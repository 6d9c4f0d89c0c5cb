// Package futuresws is the futures-ws service: it captures Binance USD-M
// futures depth streams (diff and partial) into JetStream with
// pkg/ingest. services/spot-ws/README.md documents both ingest services.
package futuresws

import (
	"context"

	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
)

// Market is the market this service captures.
const Market = md.Futures

// Config is futures-ws's configuration (environment variables, see README.md).
type Config struct {
	ingest.Config
}

// DefaultConfig returns the defaults, for in-process use.
func DefaultConfig() Config { return Config{ingest.DefaultConfig()} }

// Validate checks every setting for the USD-M futures market and names the
// variable and the allowed values on error.
func (c *Config) Validate() error { return c.ValidateFor(Market) }

// Run runs futures-ws until ctx ends: NATS (remote or embedded), streams,
// capture, drain.
func Run(ctx context.Context, cfg *Config, env svc.Env) error {
	return ingest.RunService(ctx, cfg.Config, Market, env)
}
