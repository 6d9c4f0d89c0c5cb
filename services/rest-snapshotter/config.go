package snapshotter

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/pkg/symbols"
)

// Config is the rest-snapshotter's configuration: the shared runtime, NATS
// and DATA_DIR settings, the market selection every collector shares
// (SYMBOLS, SHARD, SOURCE_ID, REST URLs), and the snapshotter's own
// SNAPSHOT_* Settings.
type Config struct {
	svc.Base
	bus.Config

	DataDir string `envconfig:"DATA_DIR" default:"./data" desc:"data root; the embedded NATS server (NATS_URL empty) keeps its store in DATA_DIR/nats"`

	Selection
	Settings
}

// Selection is the market selection every collector shares
// (symbols.Config), embedded under its own name because bus.Config is
// also called Config.
type Selection = symbols.Config

// Settings are the snapshotter's own variables (SNAPSHOT_*). The
// all-in-one embeds them next to the shared parts of its configuration.
type Settings struct {
	Markets      string        `envconfig:"SNAPSHOT_MARKETS" default:"spot,futures" desc:"markets to snapshot: spot, futures or spot,futures"`
	Interval     time.Duration `envconfig:"SNAPSHOT_INTERVAL" default:"60s" desc:"how often each symbol is snapshotted; stretched (with a warning) when the budget cannot carry it"`
	Limit        int           `envconfig:"SNAPSHOT_LIMIT" default:"1000" desc:"REST depth limit (levels per side): spot 1..5000, futures 5, 10, 20, 50, 100, 500 or 1000"`
	SpotLimit    int           `envconfig:"SNAPSHOT_SPOT_LIMIT" desc:"overrides SNAPSHOT_LIMIT for spot (1..5000)"`
	FuturesLimit int           `envconfig:"SNAPSHOT_FUTURES_LIMIT" desc:"overrides SNAPSHOT_LIMIT for futures (5, 10, 20, 50, 100, 500, 1000)"`
	Budget       float64       `envconfig:"SNAPSHOT_BUDGET" default:"0.5" desc:"share of the exchange's per-window weight limit (exchangeInfo rateLimits REQUEST_WEIGHT) this snapshotter may use, 0 < x <= 1; the IP total is kept under 90% in any case"`

	OnDemandMinInterval time.Duration `envconfig:"SNAPSHOT_ONDEMAND_MIN_INTERVAL" default:"1s" desc:"an on-demand request is answered with a snapshot requested from the exchange at most this long before it arrived and reaching its min_update_id (coalescing); 0 always takes a new one unless one is still queued"`
	OnDemandMaxWaiters  int           `envconfig:"SNAPSHOT_ONDEMAND_MAX_WAITERS" default:"1024" desc:"on-demand requests waiting for one symbol's snapshot; more are answered with an error"`

	ConnectTimeout time.Duration `envconfig:"SNAPSHOT_CONNECT_TIMEOUT" default:"5s" desc:"TCP connect and TLS handshake timeout of REST requests"`
	RequestTimeout time.Duration `envconfig:"SNAPSHOT_REQUEST_TIMEOUT" default:"10s" desc:"time limit of one REST request, body included; a timeout is retried with backoff"`
	RetryMin       time.Duration `envconfig:"SNAPSHOT_RETRY_MIN" default:"500ms" desc:"first backoff after a 5xx, 403 or timeout; doubles per consecutive failure, with jitter"`
	RetryMax       time.Duration `envconfig:"SNAPSHOT_RETRY_MAX" default:"1m" desc:"backoff cap"`
	Attempts       int           `envconfig:"SNAPSHOT_ATTEMPTS" default:"3" desc:"attempts per snapshot on 5xx, 403 and timeouts before it is given up until the symbol's next turn"`
	MaxInflight    int           `envconfig:"SNAPSHOT_MAX_INFLIGHT" default:"8" desc:"REST requests in flight per market (slow answers do not hold up the schedule)"`

	PublishBuffer    int64         `envconfig:"SNAPSHOT_PUBLISH_BUFFER" default:"67108864" desc:"bytes of snapshots queued for JetStream; past 3/4 of it no new REST request is made until NATS catches up"`
	SymbolsRefresh   time.Duration `envconfig:"SNAPSHOT_SYMBOLS_REFRESH" default:"1h" desc:"how often exchangeInfo is re-read (rate limits, and the symbol list for SYMBOLS=all); 0 reads it at start-up only"`
	PerSymbolMetrics bool          `envconfig:"SNAPSHOT_PER_SYMBOL_METRICS" default:"true" desc:"export depthcap_snapshot_last_timestamp_seconds per symbol (one series per captured symbol)"`
}

// OwnedPrefixes makes svc.Load reject unknown SNAPSHOT_* variables.
func (c *Config) OwnedPrefixes() []string { return c.Settings.OwnedPrefixes() }

// OwnedPrefixes are the variable prefixes the snapshotter owns.
func (c *Settings) OwnedPrefixes() []string { return []string{"SNAPSHOT_"} }

// Validate checks every setting; errors name the variable and the allowed
// values.
func (c *Config) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if c.DataDir == "" {
		return svc.Invalid("DATA_DIR", c.DataDir, "a directory path")
	}
	if err := c.Selection.Validate(); err != nil {
		return err
	}
	return c.Settings.Validate()
}

// Validate checks the snapshotter's own settings.
func (c *Settings) Validate() error {
	ms, err := c.markets()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if _, _, err := c.LimitFor(m); err != nil {
			return err
		}
	}
	switch {
	case c.Interval <= 0:
		return svc.Invalid("SNAPSHOT_INTERVAL", c.Interval, "a duration > 0, e.g. 60s")
	case math.IsNaN(c.Budget) || c.Budget <= 0 || c.Budget > 1:
		return svc.Invalid("SNAPSHOT_BUDGET", c.Budget, "a fraction 0 < x <= 1 of the exchange's weight limit, e.g. 0.5")
	case c.OnDemandMinInterval < 0:
		return svc.Invalid("SNAPSHOT_ONDEMAND_MIN_INTERVAL", c.OnDemandMinInterval, "a duration >= 0, e.g. 1s")
	case c.OnDemandMaxWaiters < 1:
		return svc.Invalid("SNAPSHOT_ONDEMAND_MAX_WAITERS", c.OnDemandMaxWaiters, "an integer >= 1")
	case c.ConnectTimeout <= 0:
		return svc.Invalid("SNAPSHOT_CONNECT_TIMEOUT", c.ConnectTimeout, "a duration > 0, e.g. 5s")
	case c.RequestTimeout <= 0:
		return svc.Invalid("SNAPSHOT_REQUEST_TIMEOUT", c.RequestTimeout, "a duration > 0, e.g. 10s")
	case c.RetryMin <= 0:
		return svc.Invalid("SNAPSHOT_RETRY_MIN", c.RetryMin, "a duration > 0, e.g. 500ms")
	case c.RetryMax < c.RetryMin:
		return svc.Invalid("SNAPSHOT_RETRY_MAX", c.RetryMax, "a duration >= SNAPSHOT_RETRY_MIN (%s), e.g. 1m", c.RetryMin)
	case c.Attempts < 1:
		return svc.Invalid("SNAPSHOT_ATTEMPTS", c.Attempts, "an integer >= 1")
	case c.MaxInflight < 1 || c.MaxInflight > 256:
		return svc.Invalid("SNAPSHOT_MAX_INFLIGHT", c.MaxInflight, "an integer from 1 to 256")
	case c.PublishBuffer < 1<<20:
		return svc.Invalid("SNAPSHOT_PUBLISH_BUFFER", c.PublishBuffer, "a byte count >= 1048576 (1 MiB), e.g. 67108864")
	case c.SymbolsRefresh < 0:
		return svc.Invalid("SNAPSHOT_SYMBOLS_REFRESH", c.SymbolsRefresh, "a duration >= 0 (0: start-up only), e.g. 1h")
	}
	return nil
}

// markets parses SNAPSHOT_MARKETS.
func (c *Settings) markets() ([]md.Market, error) {
	var out []md.Market
	for _, p := range strings.Split(c.Markets, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		m, err := md.ParseMarket(p)
		if err != nil {
			return nil, svc.Invalid("SNAPSHOT_MARKETS", c.Markets, "spot, futures or spot,futures")
		}
		if !containsMarket(out, m) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, svc.Invalid("SNAPSHOT_MARKETS", c.Markets, "spot, futures or spot,futures")
	}
	return out, nil
}

// MarketList returns the markets of SNAPSHOT_MARKETS in md.Markets order.
func (c *Settings) MarketList() []md.Market {
	ms, _ := c.markets()
	out := make([]md.Market, 0, len(ms))
	for _, m := range md.Markets {
		if containsMarket(ms, m) {
			out = append(out, m)
		}
	}
	return out
}

func containsMarket(ms []md.Market, m md.Market) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// LimitFor returns the depth limit of market m, its request weight, or a
// configuration error naming the variable that set it.
func (c *Settings) LimitFor(m md.Market) (limit, weight int, err error) {
	name, limit := "SNAPSHOT_LIMIT", c.Limit
	switch {
	case m == md.Spot && c.SpotLimit != 0:
		name, limit = "SNAPSHOT_SPOT_LIMIT", c.SpotLimit
	case m == md.Futures && c.FuturesLimit != 0:
		name, limit = "SNAPSHOT_FUTURES_LIMIT", c.FuturesLimit
	}
	weight, err = binance.DepthWeight(m, limit)
	if err != nil {
		return 0, 0, svc.Invalid(name, limit, "for %s: %s", m, allowedLimits(m))
	}
	return limit, weight, nil
}

func allowedLimits(m md.Market) string {
	p := binance.ProfileFor(m)
	if p.DepthLimits == nil {
		return "1.." + strconv.Itoa(p.MaxDepthLimit)
	}
	s := make([]string, len(p.DepthLimits))
	for i, l := range p.DepthLimits {
		s[i] = strconv.Itoa(l)
	}
	return strings.Join(s, ", ")
}

// DefaultConfig returns the configuration with every default applied, as
// svc.Load would produce it from an empty environment. In-process users
// (tests, the all-in-one) start from it.
func DefaultConfig() Config { return svc.MustDefaults[Config]() }
