package snapshotter_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	snapshotter "github.com/depthcap/depthcap/services/rest-snapshotter"
)

// TestMain lets a test run the real service main in a child process:
// with DEPTHCAP_TEST_MAIN=1 the test binary is the rest-snapshotter.
func TestMain(m *testing.M) {
	if os.Getenv("DEPTHCAP_TEST_MAIN") == "1" {
		var cfg snapshotter.Config
		svc.Main(snapshotter.Service, "127.0.0.1:0", &cfg, snapshotter.Run)
		return
	}
	os.Exit(m.Run())
}

// TestValidate proves every setting is range-checked and that the error
// names the variable (and is one line).
func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mut     func(*snapshotter.Config)
		wantVar string
	}{
		{"defaults", func(*snapshotter.Config) {}, ""},
		{"spot limit 5000", func(c *snapshotter.Config) { c.Markets, c.Limit = "spot", 5000 }, ""},
		{"spot limit 5001", func(c *snapshotter.Config) { c.Markets, c.Limit = "spot", 5001 }, "SNAPSHOT_LIMIT"},
		{"spot limit 0 via override", func(c *snapshotter.Config) { c.SpotLimit = -1 }, "SNAPSHOT_SPOT_LIMIT"},
		{"futures limit 25", func(c *snapshotter.Config) { c.Limit = 25 }, "SNAPSHOT_LIMIT"},
		{"futures limit 25 ignored without futures", func(c *snapshotter.Config) { c.Markets, c.Limit = "spot", 25 }, ""},
		{"futures override 2000", func(c *snapshotter.Config) { c.FuturesLimit = 2000 }, "SNAPSHOT_FUTURES_LIMIT"},
		{"spot 5000 with futures override 1000", func(c *snapshotter.Config) { c.Limit, c.FuturesLimit = 5000, 1000 }, ""},
		{"budget above 100%", func(c *snapshotter.Config) { c.Budget = 1.01 }, "SNAPSHOT_BUDGET"},
		{"budget 0", func(c *snapshotter.Config) { c.Budget = 0 }, "SNAPSHOT_BUDGET"},
		{"budget negative", func(c *snapshotter.Config) { c.Budget = -0.5 }, "SNAPSHOT_BUDGET"},
		{"budget 100%", func(c *snapshotter.Config) { c.Budget = 1 }, ""},
		{"markets unknown", func(c *snapshotter.Config) { c.Markets = "spot,options" }, "SNAPSHOT_MARKETS"},
		{"markets empty", func(c *snapshotter.Config) { c.Markets = " , " }, "SNAPSHOT_MARKETS"},
		{"interval 0", func(c *snapshotter.Config) { c.Interval = 0 }, "SNAPSHOT_INTERVAL"},
		{"on-demand min interval negative", func(c *snapshotter.Config) { c.OnDemandMinInterval = -time.Second }, "SNAPSHOT_ONDEMAND_MIN_INTERVAL"},
		{"retry max below min", func(c *snapshotter.Config) { c.RetryMax = c.RetryMin / 2 }, "SNAPSHOT_RETRY_MAX"},
		{"attempts 0", func(c *snapshotter.Config) { c.Attempts = 0 }, "SNAPSHOT_ATTEMPTS"},
		{"inflight 0", func(c *snapshotter.Config) { c.MaxInflight = 0 }, "SNAPSHOT_MAX_INFLIGHT"},
		{"publish buffer tiny", func(c *snapshotter.Config) { c.PublishBuffer = 1000 }, "SNAPSHOT_PUBLISH_BUFFER"},
		{"request timeout 0", func(c *snapshotter.Config) { c.RequestTimeout = 0 }, "SNAPSHOT_REQUEST_TIMEOUT"},
		{"symbols", func(c *snapshotter.Config) { c.Symbols = "top:x" }, "SYMBOLS"},
		{"shard", func(c *snapshotter.Config) { c.Shard = "2/2" }, "SHARD"},
		{"rest url", func(c *snapshotter.Config) { c.SpotRESTURL = "ftp://x" }, "SPOT_REST_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := snapshotter.DefaultConfig()
			tt.mut(&c)
			err := c.Validate()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, svc.ErrConfig) {
				t.Fatalf("Validate err = %v, want a configuration error", err)
			}
			var ce *svc.ConfigError
			if !errors.As(err, &ce) || ce.Var != tt.wantVar {
				t.Fatalf("Validate err = %v, want one naming %s", err, tt.wantVar)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

// TestLimitFor proves the per-market overrides and the weights.
func TestLimitFor(t *testing.T) {
	c := snapshotter.DefaultConfig()
	c.Limit, c.FuturesLimit = 5000, 500
	if l, w, err := c.LimitFor(md.Spot); err != nil || l != 5000 || w != 250 {
		t.Fatalf("spot = %d, %d, %v; want 5000, 250", l, w, err)
	}
	if l, w, err := c.LimitFor(md.Futures); err != nil || l != 500 || w != 10 {
		t.Fatalf("futures = %d, %d, %v; want 500, 10", l, w, err)
	}
}

// TestBadConfigFailsStartup runs the real service start-up (svc.Main with
// the environment) in a child process and proves that a limit the market
// does not allow, or a budget above 100 %, stops it before it connects to
// anything: exit status 2 and a one-line message naming the variable.
func TestBadConfigFailsStartup(t *testing.T) {
	tests := []struct {
		env     []string
		wantVar string
	}{
		{[]string{"SNAPSHOT_LIMIT=25"}, "SNAPSHOT_LIMIT"},
		{[]string{"SNAPSHOT_MARKETS=spot", "SNAPSHOT_LIMIT=6000"}, "SNAPSHOT_LIMIT"},
		{[]string{"SNAPSHOT_FUTURES_LIMIT=200"}, "SNAPSHOT_FUTURES_LIMIT"},
		{[]string{"SNAPSHOT_BUDGET=1.5"}, "SNAPSHOT_BUDGET"},
		{[]string{"SNAPSHOT_BUDGET=0"}, "SNAPSHOT_BUDGET"},
		{[]string{"SNAPSHOT_BUDGET=half"}, "SNAPSHOT_BUDGET"},
		{[]string{"SNAPSHOT_INTERVLA=1m"}, "SNAPSHOT_INTERVLA"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, " "), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(cleanEnv(), "DEPTHCAP_TEST_MAIN=1", "NATS_URL=nats://127.0.0.1:1", "METRICS_ADDR=127.0.0.1:0")
			cmd.Env = append(cmd.Env, tt.env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit = %v, want status 2; stderr: %s", err, stderr.String())
			}
			out := strings.TrimRight(stderr.String(), "\n")
			if strings.Contains(out, "\n") || !strings.Contains(out, tt.wantVar) {
				t.Fatalf("stderr = %q, want one line naming %s", out, tt.wantVar)
			}
			t.Logf("start-up message: %s", out)
		})
	}
}

// cleanEnv is the test's environment without depthcap settings that could
// change the outcome.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SNAPSHOT_") || strings.HasPrefix(name, "NATS_") || strings.Contains(name, "SYMBOLS") ||
			name == "SHARD" || strings.HasSuffix(name, "_REST_URL") || name == "LOG_LEVEL" || name == "LOG_FORMAT" {
			continue
		}
		out = append(out, kv)
	}
	return out
}
