package spotws_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/pkg/svc/svctest"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
	spotws "github.com/depthcap/depthcap/services/spot-ws"
)

// TestConfig proves spot-ws's configuration: loaded from the environment,
// validated for the spot market (0ms diffs are USD-M only), and every
// error names the variable.
func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"defaults", nil, ""},
		{"partial off", map[string]string{"INGEST_PARTIAL_LEVELS": "0"}, ""},
		{"0ms is futures only", map[string]string{"INGEST_DIFF_SPEED": "0ms"}, "INGEST_DIFF_SPEED"},
		{"typo", map[string]string{"INGEST_STALL": "1s"}, "INGEST_STALL"},
		{"symbols per conn", map[string]string{"INGEST_SYMBOLS_PER_CONN": "600"}, "INGEST_SYMBOLS_PER_CONN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svctest.ClearEnv(t, &spotws.Config{})
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var c spotws.Config
			err := svc.Load(&c)
			switch {
			case tt.wantVar == "" && err != nil:
				t.Fatalf("valid config rejected: %v", err)
			case tt.wantVar != "" && (!errors.Is(err, svc.ErrConfig) || !strings.Contains(err.Error(), tt.wantVar)):
				t.Fatalf("err = %v, want a config error naming %s", err, tt.wantVar)
			}
		})
	}
}

// TestRun proves the service wiring end to end: spotws.Run connects to
// NATS, provisions the streams, captures the simulator's spot streams,
// reports ready, and stops cleanly (nil) when its context ends, with the
// frames in JetStream.
func TestRun(t *testing.T) {
	sim := startSim(t, func(c *binancesim.Config) { c.Symbols = "3" })
	srv := bustest.RunServer(t)
	cfg := spotws.DefaultConfig()
	cfg.URL = srv.ClientURL()
	cfg.Symbols = "BTCUSDT,ETHUSDT"
	cfg.SourceID = "run-test"
	cfg.SpotWSURL, cfg.SpotRESTURL = sim.WSURL(md.Spot), sim.RESTURL(md.Spot)
	env := svc.Env{Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Registry: prometheus.NewRegistry(), Health: svc.NewHealth()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- spotws.Run(ctx, &cfg, env) }()
	nc := bustest.Connect(t, srv.ClientURL())
	js := bustest.JetStream(t, nc)
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := js.Stream(ctx, md.StreamMarketData)
		if err == nil {
			if info, err := s.Info(ctx); err == nil && info.State.Msgs >= 40 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no frames stored within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if failed := env.Health.Ready(); len(failed) > 0 {
		t.Errorf("not ready while capturing: %v", failed)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil on a clean stop", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	msgs := bustest.StreamMessages(t, js, md.StreamMarketData, "")
	kinds := map[string]int{}
	for _, m := range msgs {
		_, k, sym, err := md.ParseSubject(m.Subject())
		if err != nil {
			t.Fatal(err)
		}
		kinds[k.String()+" "+sym]++
	}
	for _, want := range []string{"diff BTCUSDT", "partial BTCUSDT", "diff ETHUSDT", "partial ETHUSDT"} {
		if kinds[want] == 0 {
			t.Errorf("no %s frames stored (%v)", want, kinds)
		}
	}
}
