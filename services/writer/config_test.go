package writer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/writer"
)

// TestConfigValidate proves that every invalid setting fails with an
// error that names its variable (errors.Is svc.ErrConfig).
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(c *writer.Config)
		wantVar string
	}{
		{"defaults", func(c *writer.Config) {}, ""},
		{"period 1h", func(c *writer.Config) { c.Period = time.Hour }, ""},
		{"shard 3/4", func(c *writer.Config) { c.Shard = "3/4" }, ""},
		{"period 7m", func(c *writer.Config) { c.Period = 7 * time.Minute }, "WRITER_PERIOD"},
		{"period 30s", func(c *writer.Config) { c.Period = 30 * time.Second }, "WRITER_PERIOD"},
		{"period 48h", func(c *writer.Config) { c.Period = 48 * time.Hour }, "WRITER_PERIOD"},
		{"shard 4/4", func(c *writer.Config) { c.Shard = "4/4" }, "WRITER_SHARD"},
		{"shard 0/65", func(c *writer.Config) { c.Shard = "0/65" }, "WRITER_SHARD"},
		{"shard x", func(c *writer.Config) { c.Shard = "x" }, "WRITER_SHARD"},
		{"grace", func(c *writer.Config) { c.Grace = -time.Second }, "WRITER_GRACE"},
		{"interval", func(c *writer.Config) { c.CheckpointInterval = time.Hour }, "WRITER_CHECKPOINT_INTERVAL"},
		{"memory", func(c *writer.Config) { c.MemoryLimit = 1000 }, "WRITER_MEMORY_LIMIT"},
		{"part bytes", func(c *writer.Config) { c.PartBytes = 1 }, "WRITER_PART_BYTES"},
		{"row groups", func(c *writer.Config) { c.RowGroupRows = 0 }, "WRITER_ROW_GROUP_ROWS"},
		{"zstd", func(c *writer.Config) { c.ZstdLevel = 23 }, "WRITER_ZSTD_LEVEL"},
		{"dedup", func(c *writer.Config) { c.DedupRecent = 1 }, "WRITER_DEDUP_RECENT"},
		{"pull", func(c *writer.Config) { c.PullMaxBytes = 10 }, "WRITER_PULL_MAX_BYTES"},
		{"data dir", func(c *writer.Config) { c.DataDir = "" }, "DATA_DIR"},
		{"shutdown", func(c *writer.Config) { c.ShutdownTimeout = 0 }, "SHUTDOWN_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t.TempDir(), "nats://127.0.0.1:4222")
			tt.mod(&c)
			err := c.Validate()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var ce *svc.ConfigError
			if !errors.Is(err, svc.ErrConfig) || !errors.As(err, &ce) || ce.Var != tt.wantVar {
				t.Fatalf("error %v, want one naming %s", err, tt.wantVar)
			}
		})
	}
}

// TestShardFilters proves that the shards of N partition the 64
// partitions exactly, and that a single shard reads the whole stream.
func TestShardFilters(t *testing.T) {
	if f := writer.ShardFilters(0, 1); f != nil {
		t.Errorf("0/1: filters %v, want none", f)
	}
	for _, n := range []int{2, 3, 4, 64} {
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			for _, f := range writer.ShardFilters(i, n) {
				seen[f]++
			}
		}
		if len(seen) != 64 {
			t.Errorf("N=%d covers %d partitions", n, len(seen))
		}
		for f, c := range seen {
			if c != 1 {
				t.Errorf("N=%d: %s in %d shards", n, f, c)
			}
		}
	}
}
