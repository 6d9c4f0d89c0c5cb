package ingest

import (
	"errors"
	"strings"
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/pkg/svc/svctest"
)

// testConfig is a config as the services declare it: Validate for one
// market.
type testConfig struct {
	Config
	market md.Market
}

func (c *testConfig) Validate() error { return c.ValidateFor(c.market) }

// clearEnv unsets every variable the config reads, so that the test sees
// the defaults.
func clearEnv(t *testing.T) {
	t.Helper()
	svctest.ClearEnv(t, &Config{})
}

// TestConfigValidate proves that every invalid setting fails at start-up
// with an error that names the variable (and only valid ones pass), per
// market where the allowed values differ.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		market  md.Market
		env     map[string]string
		wantVar string // "" means valid
	}{
		{"defaults spot", md.Spot, nil, ""},
		{"defaults futures", md.Futures, nil, ""},
		{"futures 0ms diff", md.Futures, map[string]string{"INGEST_DIFF_SPEED": "0ms"}, ""},
		{"spot has no 0ms diff", md.Spot, map[string]string{"INGEST_DIFF_SPEED": "0ms"}, "INGEST_DIFF_SPEED"},
		{"spot default-speed diff", md.Spot, map[string]string{"INGEST_DIFF_SPEED": ""}, ""},
		{"futures 500ms partial", md.Futures, map[string]string{"INGEST_PARTIAL_SPEED": "500ms"}, ""},
		{"spot has no 500ms partial", md.Spot, map[string]string{"INGEST_PARTIAL_SPEED": "500ms"}, "INGEST_PARTIAL_SPEED"},
		{"partial levels 15", md.Spot, map[string]string{"INGEST_PARTIAL_LEVELS": "15"}, "INGEST_PARTIAL_LEVELS"},
		{"partial off ignores its speed", md.Spot, map[string]string{"INGEST_PARTIAL_LEVELS": "0", "INGEST_PARTIAL_SPEED": "7ms"}, ""},
		{"partial levels not a number", md.Spot, map[string]string{"INGEST_PARTIAL_LEVELS": "twenty"}, "INGEST_PARTIAL_LEVELS"},
		{"512 symbols per conn with partials", md.Spot, map[string]string{"INGEST_SYMBOLS_PER_CONN": "512"}, ""},
		{"513 symbols per conn with partials", md.Spot, map[string]string{"INGEST_SYMBOLS_PER_CONN": "513"}, "INGEST_SYMBOLS_PER_CONN"},
		{"1024 symbols per conn without partials", md.Futures, map[string]string{"INGEST_SYMBOLS_PER_CONN": "1024", "INGEST_PARTIAL_LEVELS": "0"}, ""},
		{"0 symbols per conn", md.Spot, map[string]string{"INGEST_SYMBOLS_PER_CONN": "0"}, "INGEST_SYMBOLS_PER_CONN"},
		{"tiny publish buffer", md.Spot, map[string]string{"INGEST_PUBLISH_BUFFER_BYTES": "1000"}, "INGEST_PUBLISH_BUFFER_BYTES"},
		{"stall timeout 100ms", md.Spot, map[string]string{"INGEST_STALL_TIMEOUT": "100ms"}, "INGEST_STALL_TIMEOUT"},
		{"stall timeout garbage", md.Spot, map[string]string{"INGEST_STALL_TIMEOUT": "soon"}, "INGEST_STALL_TIMEOUT"},
		{"max conn age 24h", md.Spot, map[string]string{"INGEST_MAX_CONN_AGE": "24h"}, "INGEST_MAX_CONN_AGE"},
		{"max conn age 5s", md.Futures, map[string]string{"INGEST_MAX_CONN_AGE": "5s"}, ""},
		{"refresh off", md.Spot, map[string]string{"INGEST_SYMBOLS_REFRESH": "0"}, ""},
		{"refresh 10ms", md.Spot, map[string]string{"INGEST_SYMBOLS_REFRESH": "10ms"}, "INGEST_SYMBOLS_REFRESH"},
		{"typo under INGEST_", md.Spot, map[string]string{"INGEST_DIFF_SPEEED": "100ms"}, "INGEST_DIFF_SPEEED"},
		{"bad symbols", md.Spot, map[string]string{"SYMBOLS": "btc.usdt"}, "SYMBOLS"},
		{"bad shard", md.Spot, map[string]string{"SHARD": "2/2"}, "SHARD"},
		{"bad ws url", md.Futures, map[string]string{"FUTURES_WS_URL": "http://x"}, "FUTURES_WS_URL"},
		{"bad nats setting", md.Spot, map[string]string{"NATS_STREAM_REPLICAS": "2"}, "NATS_STREAM_REPLICAS"},
		{"empty data dir", md.Spot, map[string]string{"DATA_DIR": " "}, "DATA_DIR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c := &testConfig{market: tt.market}
			err := svc.Load(c)
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, svc.ErrConfig) {
				t.Fatalf("err = %v, want a config error", err)
			}
			if !strings.Contains(err.Error(), tt.wantVar) {
				t.Fatalf("error %q does not name %s", err, tt.wantVar)
			}
		})
	}
}

// TestDefaultConfig proves that DefaultConfig (for in-process use) equals
// what the environment loader produces with nothing set.
func TestDefaultConfig(t *testing.T) {
	clearEnv(t)
	var c testConfig
	c.market = md.Spot
	if err := svc.Load(&c); err != nil {
		t.Fatal(err)
	}
	if def := DefaultConfig(); c.Config != def {
		t.Fatalf("DefaultConfig()\n%+v\nloaded defaults\n%+v", def, c.Config)
	}
}
