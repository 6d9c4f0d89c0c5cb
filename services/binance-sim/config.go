package binancesim

import (
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/binance-sim/synth"
)

// Config is binance-sim's configuration, read from the environment by
// svc.Load. Every variable is documented in README.md; DefaultConfig
// returns the defaults for in-process use.
type Config struct {
	svc.Base

	SpotAddr    string `envconfig:"SIM_SPOT_ADDR" default:"127.0.0.1:9901" desc:"spot websocket and REST listen address; port 0 picks a free port"`
	FuturesAddr string `envconfig:"SIM_FUTURES_ADDR" default:"127.0.0.1:9902" desc:"USD-M websocket (/public/... and legacy paths) and REST listen address; port 0 picks a free port"`

	Mode    string   `envconfig:"SIM_MODE" default:"synthetic" desc:"synthetic or replay"`
	Replay  []string `envconfig:"SIM_REPLAY" desc:"replay mode: comma list of *.rec.gz files; the market comes from the spot_/futures_ file name prefix"`
	Speed   float64  `envconfig:"SIM_SPEED" default:"1" desc:"replay time factor: 1 original timing, 10 ten times faster, 0 as fast as each client reads"`
	Symbols string   `envconfig:"SIM_SYMBOLS" default:"50" desc:"synthetic symbols: a count (most active first) or a comma list like BTCUSDT,ETHUSDT"`
	Seed    uint64   `envconfig:"SIM_SEED" default:"1" desc:"synthetic books and fault schedules are a function of the seed"`

	DiffInterval    time.Duration `envconfig:"SIM_DIFF_INTERVAL" default:"100ms" desc:"the tick: nominal @100ms streams push once per tick, slower streams scale with it"`
	PartialInterval time.Duration `envconfig:"SIM_PARTIAL_INTERVAL" default:"100ms" desc:"push interval of the @depthN@100ms partial streams; a multiple of SIM_DIFF_INTERVAL"`
	ActivityMax     float64       `envconfig:"SIM_ACTIVITY_MAX" default:"200" desc:"level changes per second of the most active symbol"`
	ActivitySkew    float64       `envconfig:"SIM_ACTIVITY_SKEW" default:"1" desc:"Zipf exponent: the symbol of rank i changes SIM_ACTIVITY_MAX/(i+1)^skew levels per second"`
	ActivityMin     float64       `envconfig:"SIM_ACTIVITY_MIN" default:"0.2" desc:"floor of level changes per second of any symbol"`
	BookLevels      int           `envconfig:"SIM_BOOK_LEVELS" default:"5000" desc:"price levels per side of each synthetic book"`
	History         time.Duration `envconfig:"SIM_HISTORY" default:"60s" desc:"ground truth: keep every change at least this long"`
	HistoryChanges  int           `envconfig:"SIM_HISTORY_CHANGES" default:"100000" desc:"ground truth: and at least this many changes per symbol"`

	SpotWeightLimit    int           `envconfig:"SIM_SPOT_WEIGHT_LIMIT" default:"6000" desc:"spot REST request weight per window per client IP"`
	FuturesWeightLimit int           `envconfig:"SIM_FUTURES_WEIGHT_LIMIT" default:"2400" desc:"USD-M REST request weight per window per client IP"`
	WeightWindow       time.Duration `envconfig:"SIM_WEIGHT_WINDOW" default:"1m" desc:"weight window, whole seconds; exchangeInfo and the X-MBX-USED-WEIGHT-<n><unit> header describe it"`
	BanAfter           int           `envconfig:"SIM_BAN_AFTER" default:"10" desc:"requests a client may send in a window after its first 429 before it is banned with 418"`
	BanDuration        time.Duration `envconfig:"SIM_BAN_DURATION" default:"2m" desc:"first 418 ban; each repeat doubles it, up to 3 days"`

	PingInterval   time.Duration `envconfig:"SIM_PING_INTERVAL" desc:"server ping interval; empty: 20s spot, 3m futures"`
	PongTimeout    time.Duration `envconfig:"SIM_PONG_TIMEOUT" desc:"disconnect a client that does not answer a ping within this; empty: 1m spot, 10m futures"`
	SpotMsgRate    int           `envconfig:"SIM_SPOT_MSG_RATE" default:"5" desc:"incoming websocket messages (JSON, ping, pong) per second a spot connection may send"`
	FuturesMsgRate int           `envconfig:"SIM_FUTURES_MSG_RATE" default:"10" desc:"incoming websocket messages per second a USD-M connection may send"`
	MaxStreams     int           `envconfig:"SIM_MAX_STREAMS" default:"1024" desc:"streams per connection"`
	SendQueue      int           `envconfig:"SIM_SEND_QUEUE" default:"10000" desc:"frames queued per connection; a client that lets it fill is disconnected as too slow"`
	SendLog        bool          `envconfig:"SIM_SEND_LOG" default:"true" desc:"record the ids of every depth frame written to a client (GET /sim/sent)"`
	SendLogMax     int           `envconfig:"SIM_SEND_LOG_MAX" default:"5000000" desc:"distinct ids the send log keeps before it stops recording and says truncated"`

	MaxConnAge     time.Duration `envconfig:"SIM_MAX_CONN_AGE" default:"24h" desc:"close every websocket connection at this age, as Binance does at 24h"`
	ShutdownNotice time.Duration `envconfig:"SIM_SHUTDOWN_NOTICE" default:"0" desc:"send a serverShutdown event this long before the age close; 0 sends none"`
	DropMean       time.Duration `envconfig:"SIM_DROP_MEAN" default:"0" desc:"fault: mean time between random drops of each connection (seeded, independent per connection); 0 off"`
	StallMean      time.Duration `envconfig:"SIM_STALL_MEAN" default:"0" desc:"fault: mean time between stalls of each connection; 0 off"`
	StallDuration  time.Duration `envconfig:"SIM_STALL_DURATION" default:"5s" desc:"fault: how long a stall sends nothing"`
	MalformedRate  float64       `envconfig:"SIM_MALFORMED_RATE" default:"0" desc:"fault: fraction of depth frames replaced by truncated JSON"`
	SkipMean       time.Duration `envconfig:"SIM_SKIP_MEAN" default:"0" desc:"fault: mean time between exchange-side sequence skips per market; 0 off"`
	SkipEvents     int           `envconfig:"SIM_SKIP_EVENTS" default:"1" desc:"fault: diff events lost per random skip"`
	RESTErrorRate  float64       `envconfig:"SIM_REST_ERROR_RATE" default:"0" desc:"fault: fraction of REST requests answered with SIM_REST_ERROR_STATUS"`
	RESTErrorCode  int           `envconfig:"SIM_REST_ERROR_STATUS" default:"503" desc:"fault: status of injected REST errors: 429, 418, 500, 502, 503 or 504"`
	RESTRetryAfter time.Duration `envconfig:"SIM_REST_RETRY_AFTER" default:"5s" desc:"fault: Retry-After of injected 429 and 418 answers"`
	RESTSlowRate   float64       `envconfig:"SIM_REST_SLOW_RATE" default:"0" desc:"fault: fraction of REST requests answered late"`
	RESTSlowDelay  time.Duration `envconfig:"SIM_REST_SLOW_DELAY" default:"2s" desc:"fault: how late a slow REST answer is"`
}

// Modes.
const (
	ModeSynthetic = "synthetic"
	ModeReplay    = "replay"
)

// OwnedPrefixes makes svc.Load reject unknown SIM_ variables (typos).
func (c *Config) OwnedPrefixes() []string { return []string{"SIM_"} }

// DefaultConfig returns the configuration with every default applied, as
// svc.Load would produce it from an empty environment. Tests that embed
// the simulator start from it and set ports to 127.0.0.1:0.
func DefaultConfig() Config { return svc.MustDefaults[Config]() }

// Validate checks every setting and names the variable and the allowed
// values on error.
func (c *Config) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	for _, a := range []struct{ name, v string }{{"SIM_SPOT_ADDR", c.SpotAddr}, {"SIM_FUTURES_ADDR", c.FuturesAddr}} {
		if _, port, err := net.SplitHostPort(a.v); err != nil || port == "" {
			return svc.Invalid(a.name, a.v, "host:port, e.g. 127.0.0.1:9901; port 0 picks a free port")
		}
	}
	switch c.Mode {
	case ModeSynthetic:
		if _, _, err := synth.ParseSymbols(c.Symbols); err != nil {
			return svc.Invalid("SIM_SYMBOLS", c.Symbols, "a count 1..%d or a comma list of upper-case symbols like BTCUSDT,ETHUSDT", synth.MaxSymbols)
		}
	case ModeReplay:
		if len(c.Replay) == 0 {
			return svc.Invalid("SIM_REPLAY", "", "with SIM_MODE=replay: a comma list of spot_*.rec.gz / futures_*.rec.gz files")
		}
		for _, p := range c.Replay {
			if _, err := recording.MarketFromFileName(p); err != nil {
				return svc.Invalid("SIM_REPLAY", strings.Join(c.Replay, ","), "files whose names start with spot_ or futures_ (%s does not)", filepath.Base(p))
			}
			if _, err := os.Stat(p); err != nil {
				return svc.Invalid("SIM_REPLAY", strings.Join(c.Replay, ","), "existing files (%s: %v)", p, err)
			}
		}
	default:
		return svc.Invalid("SIM_MODE", c.Mode, "synthetic, replay")
	}
	if math.IsNaN(c.Speed) || math.IsInf(c.Speed, 0) || c.Speed < 0 {
		return svc.Invalid("SIM_SPEED", c.Speed, "a number >= 0 (1 original timing, 10 ten times faster, 0 as fast as the client reads)")
	}
	if c.DiffInterval < 10*time.Millisecond || c.DiffInterval > 10*time.Second {
		return svc.Invalid("SIM_DIFF_INTERVAL", c.DiffInterval, "a duration from 10ms to 10s")
	}
	if c.PartialInterval < c.DiffInterval || c.PartialInterval%c.DiffInterval != 0 {
		return svc.Invalid("SIM_PARTIAL_INTERVAL", c.PartialInterval, "a multiple of SIM_DIFF_INTERVAL (%v)", c.DiffInterval)
	}
	for _, f := range []struct {
		name string
		v    float64
		min  float64
	}{{"SIM_ACTIVITY_MAX", c.ActivityMax, 0}, {"SIM_ACTIVITY_SKEW", c.ActivitySkew, 0}, {"SIM_ACTIVITY_MIN", c.ActivityMin, 0}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < f.min || f.v > 1e6 {
			return svc.Invalid(f.name, f.v, "a number from 0 to 1000000")
		}
	}
	if c.BookLevels < 20 || c.BookLevels > 10000 {
		return svc.Invalid("SIM_BOOK_LEVELS", c.BookLevels, "an integer from 20 to 10000")
	}
	if c.History < 2*time.Second || c.History < 20*c.DiffInterval {
		return svc.Invalid("SIM_HISTORY", c.History, "a duration >= 2s and >= 20 × SIM_DIFF_INTERVAL")
	}
	if c.HistoryChanges < 0 {
		return svc.Invalid("SIM_HISTORY_CHANGES", c.HistoryChanges, "an integer >= 0")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"SIM_SPOT_WEIGHT_LIMIT", c.SpotWeightLimit}, {"SIM_FUTURES_WEIGHT_LIMIT", c.FuturesWeightLimit},
		{"SIM_SPOT_MSG_RATE", c.SpotMsgRate}, {"SIM_FUTURES_MSG_RATE", c.FuturesMsgRate},
		{"SIM_MAX_STREAMS", c.MaxStreams}, {"SIM_SEND_LOG_MAX", c.SendLogMax}, {"SIM_BAN_AFTER", c.BanAfter}, {"SIM_SKIP_EVENTS", c.SkipEvents}} {
		if f.v < 1 {
			return svc.Invalid(f.name, f.v, "an integer >= 1")
		}
	}
	if c.SendQueue < 16 {
		return svc.Invalid("SIM_SEND_QUEUE", c.SendQueue, "an integer >= 16")
	}
	if c.WeightWindow < time.Second || c.WeightWindow%time.Second != 0 {
		return svc.Invalid("SIM_WEIGHT_WINDOW", c.WeightWindow, "whole seconds >= 1s, e.g. 1m or 6s")
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"SIM_PING_INTERVAL", c.PingInterval}, {"SIM_PONG_TIMEOUT", c.PongTimeout}, {"SIM_SHUTDOWN_NOTICE", c.ShutdownNotice},
		{"SIM_DROP_MEAN", c.DropMean}, {"SIM_STALL_MEAN", c.StallMean}, {"SIM_SKIP_MEAN", c.SkipMean}} {
		if f.v < 0 {
			return svc.Invalid(f.name, f.v, "a duration >= 0 (0 or empty: default or off)")
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"SIM_BAN_DURATION", c.BanDuration}, {"SIM_MAX_CONN_AGE", c.MaxConnAge}, {"SIM_STALL_DURATION", c.StallDuration}} {
		if f.v <= 0 {
			return svc.Invalid(f.name, f.v, "a duration > 0")
		}
	}
	if c.ShutdownNotice >= c.MaxConnAge {
		return svc.Invalid("SIM_SHUTDOWN_NOTICE", c.ShutdownNotice, "a duration shorter than SIM_MAX_CONN_AGE (%v)", c.MaxConnAge)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"SIM_MALFORMED_RATE", c.MalformedRate}, {"SIM_REST_ERROR_RATE", c.RESTErrorRate}, {"SIM_REST_SLOW_RATE", c.RESTSlowRate}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			return svc.Invalid(f.name, f.v, "a fraction from 0 to 1")
		}
	}
	switch c.RESTErrorCode {
	case 429, 418, 500, 502, 503, 504:
	default:
		return svc.Invalid("SIM_REST_ERROR_STATUS", c.RESTErrorCode, "429, 418, 500, 502, 503, 504")
	}
	if c.RESTRetryAfter < time.Second {
		return svc.Invalid("SIM_REST_RETRY_AFTER", c.RESTRetryAfter, "a duration >= 1s")
	}
	if c.RESTSlowDelay < 0 {
		return svc.Invalid("SIM_REST_SLOW_DELAY", c.RESTSlowDelay, "a duration >= 0")
	}
	return nil
}

// pingInterval and pongTimeout apply the per-market defaults.
func (c *Config) pingInterval(m md.Market) time.Duration {
	switch {
	case c.PingInterval > 0:
		return c.PingInterval
	case m == md.Futures:
		return 3 * time.Minute
	}
	return 20 * time.Second
}

func (c *Config) pongTimeout(m md.Market) time.Duration {
	switch {
	case c.PongTimeout > 0:
		return c.PongTimeout
	case m == md.Futures:
		return 10 * time.Minute
	}
	return time.Minute
}

func (c *Config) msgRate(m md.Market) int {
	if m == md.Futures {
		return c.FuturesMsgRate
	}
	return c.SpotMsgRate
}

func (c *Config) weightLimit(m md.Market) int {
	if m == md.Futures {
		return c.FuturesWeightLimit
	}
	return c.SpotWeightLimit
}

// windowName describes the weight window as Binance does: the header
// suffix ("1M", "6S") and the exchangeInfo interval and intervalNum.
func windowName(w time.Duration) (suffix, interval string, num int64) {
	s := int64(w / time.Second)
	switch {
	case s%86400 == 0:
		return strconv.FormatInt(s/86400, 10) + "D", "DAY", s / 86400
	case s%3600 == 0:
		return strconv.FormatInt(s/3600, 10) + "H", "HOUR", s / 3600
	case s%60 == 0:
		return strconv.FormatInt(s/60, 10) + "M", "MINUTE", s / 60
	}
	return strconv.FormatInt(s, 10) + "S", "SECOND", s
}
