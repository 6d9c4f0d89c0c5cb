package binancesim

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/pkg/svc/svctest"
)

// clearEnv unsets every variable of the configuration for the test.
func clearEnv(t *testing.T) {
	t.Helper()
	svctest.ClearEnv(t, &Config{})
}

// TestDefaultConfig proves DefaultConfig equals what svc.Load builds from
// an empty environment, and that it is valid.
func TestDefaultConfig(t *testing.T) {
	clearEnv(t)
	var fromEnv Config
	if err := svc.Load(&fromEnv); err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	if !reflect.DeepEqual(fromEnv, def) {
		t.Fatalf("defaults differ:\n env %+v\ndefault %+v", fromEnv, def)
	}
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestConfigErrors proves an invalid setting fails at load with an error
// that names the variable (and errors.Is svc.ErrConfig).
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		wantVar string
	}{
		{map[string]string{"SIM_MODE": "bogus"}, "SIM_MODE"},
		{map[string]string{"SIM_SPEED": "-1"}, "SIM_SPEED"},
		{map[string]string{"SIM_SPEED": "fast"}, "SIM_SPEED"},
		{map[string]string{"SIM_SYMBOLS": "btcusdt"}, "SIM_SYMBOLS"},
		{map[string]string{"SIM_SYMBOLS": "0"}, "SIM_SYMBOLS"},
		{map[string]string{"SIM_SYMBOLS": "BTCUSDT,BTCUSDT"}, "SIM_SYMBOLS"},
		{map[string]string{"SIM_MODE": "replay"}, "SIM_REPLAY"},
		{map[string]string{"SIM_MODE": "replay", "SIM_REPLAY": "/nonexistent/spot_x.rec.gz"}, "SIM_REPLAY"},
		{map[string]string{"SIM_MODE": "replay", "SIM_REPLAY": "x.rec.gz"}, "SIM_REPLAY"},
		{map[string]string{"SIM_DIFF_INTERVAL": "1ms"}, "SIM_DIFF_INTERVAL"},
		{map[string]string{"SIM_PARTIAL_INTERVAL": "150ms"}, "SIM_PARTIAL_INTERVAL"},
		{map[string]string{"SIM_WEIGHT_WINDOW": "1500ms"}, "SIM_WEIGHT_WINDOW"},
		{map[string]string{"SIM_SPOT_WEIGHT_LIMIT": "0"}, "SIM_SPOT_WEIGHT_LIMIT"},
		{map[string]string{"SIM_MALFORMED_RATE": "1.5"}, "SIM_MALFORMED_RATE"},
		{map[string]string{"SIM_REST_ERROR_STATUS": "404"}, "SIM_REST_ERROR_STATUS"},
		{map[string]string{"SIM_SHUTDOWN_NOTICE": "25h"}, "SIM_SHUTDOWN_NOTICE"},
		{map[string]string{"SIM_SPOT_ADDR": "nohost"}, "SIM_SPOT_ADDR"},
		{map[string]string{"SIM_BOOK_LEVELS": "5"}, "SIM_BOOK_LEVELS"},
		{map[string]string{"SIM_HISTORY": "1s"}, "SIM_HISTORY"},
		{map[string]string{"SIM_DROP_MEAN": "-1s"}, "SIM_DROP_MEAN"},
		{map[string]string{"SIM_SPEEED": "1"}, "SIM_SPEEED"},
	} {
		t.Run(tc.wantVar, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var cfg Config
			err := svc.Load(&cfg)
			if !errors.Is(err, svc.ErrConfig) || !strings.Contains(err.Error(), tc.wantVar) {
				t.Fatalf("env %v: error %v, want one naming %s", tc.env, err, tc.wantVar)
			}
		})
	}
}

// TestNewRejectsInvalidConfig proves the in-process constructor validates
// too.
func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Speed = -1
	if _, err := New(cfg, Options{}); !errors.Is(err, svc.ErrConfig) || !strings.Contains(err.Error(), "SIM_SPEED") {
		t.Fatalf("New: %v", err)
	}
}

// TestREADMEListsEveryVariable proves the README's configuration table
// documents every SIM_ variable with its default.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, v := range svc.Vars(&Config{}) {
		if !strings.HasPrefix(v.Name, "SIM_") {
			continue
		}
		row := "\n| `" + v.Name + "` | " // a row of the configuration table starts with the name
		i := strings.Index(readme, row)
		if i < 0 {
			t.Errorf("README has no table row for %s", v.Name)
			continue
		}
		if v.Default != "" && !strings.HasPrefix(readme[i+len(row):], "`"+v.Default+"`") {
			t.Errorf("README row of %s does not start with its default %q", v.Name, v.Default)
		}
	}
}
