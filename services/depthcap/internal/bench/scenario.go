package bench

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/binance-sim/synth"
)

// BaseTick is the tick of multiplier 1: Binance's 100 ms streams.
const BaseTick = 100 * time.Millisecond

// Scenario is a synthetic market and how hard it is pushed.
//
// The rate multiplier m scales everything the simulator sends: the tick
// becomes BaseTick/m (so diff@100ms and depth20@100ms push m times as
// often) and the activity (level changes per second) is multiplied by m,
// so each event carries the same number of changes and each symbol
// changes in the same share of its ticks: frames/s grow by m, the payload
// mix stays the same.
type Scenario struct {
	Name    string
	Symbols int // per market
	// Activity at multiplier 1 (level changes per second of the symbol of
	// rank i: max(Max/(i+1)^Skew, Min)).
	Activity synth.Activity
	// PartialTicks is the depth20 push interval in ticks.
	PartialTicks int
	Nominal      float64 // the scenario's own rate, as a multiplier
	MinM, MaxM   float64 // the step search's range
	BookLevels   int     // SIM_BOOK_LEVELS (REST limit 1000 needs >= 1000)
	// BytesShards: the bytes-on-disk writer reads 1/BytesShards of the
	// partitions (WRITER_SHARD=0/N), so that it seals a sample of the
	// files rather than every one, in seconds: a consumer with several
	// partition filters is slow to read a backlog (see the replay notes),
	// one with a single filter (0/64) is not.
	BytesShards int
	// ReplayEvents is the backlog the writer replays.
	ReplayEvents int
	// CeilingEvents is the size of the shorter ceiling runs (window 100ms,
	// no ids); the run with ids and the 2m window is the replay backlog.
	CeilingEvents int
	Describe      string
}

// Scenarios by name.
var Scenarios = map[string]Scenario{
	"seed50": {
		Name: "seed50", Symbols: 50,
		Activity:     synth.Activity{Max: 200, Skew: 1, Min: 0.2}, // binance-sim's default mix
		PartialTicks: 1,
		Nominal:      1.0 / 3, // tick 300ms: ~470 frames/s received, ~400 published
		MinM:         0.1, MaxM: 10,
		BookLevels:    1000,
		BytesShards:   16,
		ReplayEvents:  1_000_000,
		CeilingEvents: 400_000,
		Describe: "50 symbols per market (BTCUSDT, ETHUSDT, ... the sim's named universe), diff@100ms + depth20@100ms, " +
			"binance-sim's default activity mix (200/(rank+1) level changes/s, floor 0.2) paced to a 300 ms tick: " +
			"about 470 frames/s received and 400 published, the reference collector's load",
	},
	"market": {
		Name: "market", Symbols: 2000,
		// BTC 1,000 and ETH 500 level changes/s (the 2024 ETHUSDT recording
		// has 411/s), a Zipf tail with a floor of 2/s: a quiet symbol
		// changes in about 18% of its 100 ms windows.
		Activity:     synth.Activity{Max: 1000, Skew: 1, Min: 2},
		PartialTicks: 1,
		Nominal:      1,
		MinM:         0.05, MaxM: 10,
		BookLevels:    1000,
		BytesShards:   64,
		ReplayEvents:  1_000_000,
		CeilingEvents: 400_000,
		Describe: "2,000 symbols per market, diff@100ms + depth20@100ms at Binance's 100 ms, activity 1000/(rank+1) level changes/s " +
			"with a floor of 2/s (ETH at rank 2: 500/s; the 2024 ETHUSDT recording: 411/s), REST snapshots (limit 1000) at the " +
			"snapshotter's default weight budget",
	},
}

// ScenarioNames in run order.
var ScenarioNames = []string{"seed50", "market"}

// Tick is the simulator tick of multiplier m: BaseTick/m on a 1 ms grain,
// within the simulator's 10 ms to 10 s.
func Tick(m float64) time.Duration {
	ms := math.Round(float64(BaseTick) / m / float64(time.Millisecond))
	ms = math.Min(math.Max(ms, 10), 10_000)
	return time.Duration(ms) * time.Millisecond
}

// Effective is the multiplier that runs for a requested m (the tick's
// grain).
func Effective(m float64) float64 { return float64(BaseTick) / float64(Tick(m)) }

// Rate is one concrete simulator setting.
type Rate struct {
	M        float64 // effective multiplier
	Tick     time.Duration
	Partial  time.Duration
	Activity synth.Activity
}

// RateAt returns the setting of multiplier m.
func (s Scenario) RateAt(m float64) Rate {
	t := Tick(m)
	eff := float64(BaseTick) / float64(t)
	return Rate{
		M: eff, Tick: t, Partial: time.Duration(s.PartialTicks) * t,
		Activity: synth.Activity{Max: s.Activity.Max * eff, Skew: s.Activity.Skew, Min: s.Activity.Min * eff},
	}
}

// history is SIM_HISTORY: the shortest the simulator allows (we need no
// ground truth), at least 20 ticks.
func (r Rate) history() time.Duration {
	return max(2*time.Second, 20*r.Tick)
}

// SimEnv is the simulator's environment for this rate (without addresses).
func (s Scenario) SimEnv(r Rate, seed uint64) map[string]string {
	return map[string]string{
		"SIM_MODE":             "synthetic",
		"SIM_SYMBOLS":          strconv.Itoa(s.Symbols),
		"SIM_SEED":             strconv.FormatUint(seed, 10),
		"SIM_DIFF_INTERVAL":    r.Tick.String(),
		"SIM_PARTIAL_INTERVAL": r.Partial.String(),
		"SIM_ACTIVITY_MAX":     fmtFloat(r.Activity.Max),
		"SIM_ACTIVITY_SKEW":    fmtFloat(r.Activity.Skew),
		"SIM_ACTIVITY_MIN":     fmtFloat(r.Activity.Min),
		"SIM_BOOK_LEVELS":      strconv.Itoa(s.BookLevels),
		"SIM_HISTORY":          r.history().String(),
		"SIM_HISTORY_CHANGES":  "1000",
		"SIM_SEND_LOG":         "false", // counters suffice; the log costs the sim memory
	}
}

// SynthConfig is the same market for an in-process generator.
func (s Scenario) SynthConfig(m md.Market, r Rate, seed uint64) synth.Config {
	return synth.Config{
		Market: m, Symbols: strconv.Itoa(s.Symbols), Seed: seed,
		DiffInterval: r.Tick, PartialInterval: r.Partial, Activity: r.Activity,
		Levels: s.BookLevels, History: r.history(), HistoryChanges: 1000,
	}
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// String describes a rate for logs.
func (r Rate) String() string {
	return fmt.Sprintf("m=%.3g (tick %s, activity max %.4g min %.4g)", r.M, r.Tick, r.Activity.Max, r.Activity.Min)
}
