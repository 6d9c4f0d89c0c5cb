package ingest

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/pkg/symbols"
)

// BusConfig and SymbolsConfig name the embedded configurations: both
// packages call theirs Config, and two embedded fields cannot share a
// name.
type (
	BusConfig     = bus.Config
	SymbolsConfig = symbols.Config
)

// Config is the configuration of spot-ws and futures-ws (one market each).
// Both services read the same variables; Validate is per market because
// the allowed stream speeds differ.
type Config struct {
	svc.Base
	BusConfig
	SymbolsConfig

	DataDir string `envconfig:"DATA_DIR" default:"./data" desc:"root of the embedded NATS store (DATA_DIR/nats) when NATS_URL is empty"`

	DiffSpeed          string        `envconfig:"INGEST_DIFF_SPEED" default:"100ms" desc:"diff depth stream speed suffix: spot 100ms or empty (1000ms); futures 100ms, 500ms, 0ms or empty (250ms)"`
	PartialLevels      int           `envconfig:"INGEST_PARTIAL_LEVELS" default:"20" desc:"partial depth levels: 5, 10 or 20; 0 turns the partial stream off"`
	PartialSpeed       string        `envconfig:"INGEST_PARTIAL_SPEED" default:"100ms" desc:"partial depth stream speed suffix: spot 100ms or empty (1000ms); futures 100ms, 500ms or empty (250ms)"`
	SymbolsPerConn     int           `envconfig:"INGEST_SYMBOLS_PER_CONN" default:"200" desc:"symbols per websocket connection, 1 to 1024 / streams per symbol (512 with the partial stream on)"`
	PublishBufferBytes int64         `envconfig:"INGEST_PUBLISH_BUFFER_BYTES" default:"67108864" desc:"bytes of frames held while NATS is slow or down; past it frames are dropped and reported as buffer_overflow gap records"`
	StallTimeout       time.Duration `envconfig:"INGEST_STALL_TIMEOUT" default:"10s" desc:"a connection that delivers no frame for this long is replaced (reconnect reason stall)"`
	MaxConnAge         time.Duration `envconfig:"INGEST_MAX_CONN_AGE" default:"23h" desc:"connections are rotated make-before-break at this age (minus up to 10% jitter); Binance closes them at 24h"`
	SymbolsRefresh     time.Duration `envconfig:"INGEST_SYMBOLS_REFRESH" default:"1h" desc:"with SYMBOLS=all: how often exchangeInfo is re-read (new listings subscribed, delisted symbols dropped); 0 turns it off"`
}

// OwnedPrefixes makes svc.Load reject unknown INGEST_ variables.
func (c *Config) OwnedPrefixes() []string { return []string{"INGEST_"} }

// Limits of the settings.
const (
	minPublishBuffer = 64 << 10
	maxPublishBuffer = 16 << 30
	minStallTimeout  = time.Second
	maxStallTimeout  = 10 * time.Minute
	minConnAge       = 2 * time.Second
	minRefresh       = time.Second
)

// ValidateFor checks every setting for market m and names the variable
// and the allowed values on error.
func (c *Config) ValidateFor(m md.Market) error {
	if !m.Valid() {
		return svc.Invalid("market", m.String(), "spot, futures")
	}
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if err := c.BusConfig.Validate(); err != nil {
		return err
	}
	if err := c.SymbolsConfig.Validate(); err != nil {
		return err
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return svc.Invalid("DATA_DIR", c.DataDir, "a directory path")
	}
	p := binance.ProfileFor(m)
	if !slices.Contains(p.DiffSpeeds, c.DiffSpeed) {
		return svc.Invalid("INGEST_DIFF_SPEED", c.DiffSpeed, "for %s: %s", m, speedList(p.DiffSpeeds, p.DefaultDiffSpeed))
	}
	if c.PartialLevels != 0 {
		if !slices.Contains(p.PartialLevels, c.PartialLevels) {
			return svc.Invalid("INGEST_PARTIAL_LEVELS", c.PartialLevels, "0 (off), %s", intList(p.PartialLevels))
		}
		if !slices.Contains(p.PartialSpeeds, c.PartialSpeed) {
			return svc.Invalid("INGEST_PARTIAL_SPEED", c.PartialSpeed, "for %s: %s", m, speedList(p.PartialSpeeds, p.DefaultDiffSpeed))
		}
	}
	if maxSyms := p.MaxStreamsPerConn / c.StreamsPerSymbol(); c.SymbolsPerConn < 1 || c.SymbolsPerConn > maxSyms {
		return svc.Invalid("INGEST_SYMBOLS_PER_CONN", c.SymbolsPerConn, "1 to %d (%d streams per connection / %d per symbol)", maxSyms, p.MaxStreamsPerConn, c.StreamsPerSymbol())
	}
	if c.PublishBufferBytes < minPublishBuffer || c.PublishBufferBytes > maxPublishBuffer {
		return svc.Invalid("INGEST_PUBLISH_BUFFER_BYTES", c.PublishBufferBytes, "bytes from %d (64 KiB) to %d (16 GiB)", minPublishBuffer, int64(maxPublishBuffer))
	}
	if c.StallTimeout < minStallTimeout || c.StallTimeout > maxStallTimeout {
		return svc.Invalid("INGEST_STALL_TIMEOUT", c.StallTimeout, "a duration from 1s to 10m")
	}
	if c.MaxConnAge < minConnAge || c.MaxConnAge >= p.MaxConnAge {
		return svc.Invalid("INGEST_MAX_CONN_AGE", c.MaxConnAge, "a duration from 2s to below the exchange's %s", p.MaxConnAge)
	}
	if c.SymbolsRefresh != 0 && c.SymbolsRefresh < minRefresh {
		return svc.Invalid("INGEST_SYMBOLS_REFRESH", c.SymbolsRefresh, "0 (off) or a duration >= 1s")
	}
	return nil
}

// StreamsPerSymbol is 2 with the partial stream on, else 1.
func (c *Config) StreamsPerSymbol() int {
	if c.PartialLevels == 0 {
		return 1
	}
	return 2
}

// DefaultConfig returns the configuration with every default applied, as
// svc.Load produces it from an empty environment; for in-process use
// (tests, the all-in-one binary).
func DefaultConfig() Config { return svc.MustDefaults[Config]() }

func speedList(speeds []string, def time.Duration) string {
	parts := make([]string, 0, len(speeds))
	for _, s := range speeds {
		if s == "" {
			parts = append(parts, "empty (the default "+def.String()+" stream)")
			continue
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func intList(v []int) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ", ")
}
