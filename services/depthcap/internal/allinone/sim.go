package allinone

import (
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
)

// startSim starts the embedded simulator and points every collector at it.
func startSim(c Config, s *Services, log *zap.Logger) (*binancesim.Sim, error) {
	cfg := s.Sim
	// Free ports unless the user chose them: a demo must not clash with
	// anything already on 9901/9902.
	if os.Getenv("SIM_SPOT_ADDR") == "" {
		cfg.SpotAddr = "127.0.0.1:0"
	}
	if os.Getenv("SIM_FUTURES_ADDR") == "" {
		cfg.FuturesAddr = "127.0.0.1:0"
	}
	if c.Replay != "" {
		cfg.Mode = binancesim.ModeReplay
		cfg.Replay = nil
		for _, f := range strings.Split(c.Replay, ",") {
			if f = strings.TrimSpace(f); f != "" {
				cfg.Replay = append(cfg.Replay, f)
			}
		}
	}
	if c.DemoFaults {
		// Enough to watch the recovery, not so much that the demo is noise.
		if cfg.DropMean == 0 {
			cfg.DropMean = 20 * time.Second
		}
		if cfg.SkipMean == 0 && cfg.Mode == binancesim.ModeSynthetic {
			cfg.SkipMean = 30 * time.Second
		}
		if cfg.MalformedRate == 0 {
			cfg.MalformedRate = 0.0005
		}
	}
	sim, err := binancesim.New(cfg, binancesim.Options{Log: log.Named("sim")})
	if err != nil {
		return nil, fmt.Errorf("demo simulator: %w", err)
	}
	sel := &s.Ingest.SymbolsConfig
	sel.SpotWSURL, sel.FuturesWSURL = sim.WSURL(md.Spot), sim.WSURL(md.Futures)
	sel.SpotRESTURL, sel.FuturesRESTURL = sim.RESTURL(md.Spot), sim.RESTURL(md.Futures)
	s.Snapshotter.Selection = *sel
	if cfg.Mode == binancesim.ModeReplay && os.Getenv("SYMBOLS") == "" {
		// Capture every recorded symbol, not a top-N guess.
		sel.Symbols, s.Snapshotter.Symbols = "all", "all"
	}
	log.Info("demo simulator started", zap.String("mode", cfg.Mode), zap.Strings("replay", cfg.Replay),
		zap.String("spot", sim.RESTURL(md.Spot)), zap.String("futures", sim.RESTURL(md.Futures)), zap.Bool("faults", c.DemoFaults))
	return sim, nil
}

// simMarkets keeps, in replay mode, only the markets the recordings hold.
func simMarkets(sim *binancesim.Sim, want []md.Market) []md.Market {
	cfg := sim.Config()
	if cfg.Mode != binancesim.ModeReplay {
		return want
	}
	have := map[md.Market]bool{}
	for _, f := range cfg.Replay {
		if m, err := recording.MarketFromFileName(f); err == nil {
			have[m] = true
		}
	}
	var out []md.Market
	for _, m := range want {
		if have[m] {
			out = append(out, m)
		}
	}
	return out
}
