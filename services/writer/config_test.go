package writer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
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

// TestShardFilters proves that the shards of N own the 64 partitions
// exactly once each, and that a shard's consumer has one filter (the
// partition it owns alone) or none (it reads everything and skips the
// partitions of other shards): never several.
func TestShardFilters(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 33, 63, 64} {
		owners := make([]int, md.Partitions)
		for i := 0; i < n; i++ {
			owned := 0
			for p := 0; p < md.Partitions; p++ {
				if writer.Owns(i, n, p) {
					owners[p]++
					owned++
				}
			}
			f := writer.ShardFilters(i, n)
			switch {
			case owned == 1 && (len(f) != 1 || f[0] != md.PartitionFilter(i)):
				t.Errorf("%d/%d owns partition %d alone: filters %v", i, n, i, f)
			case owned > 1 && f != nil:
				t.Errorf("%d/%d owns %d partitions: filters %v, want none", i, n, owned, f)
			}
		}
		for p, c := range owners {
			if c != 1 {
				t.Errorf("N=%d: partition %d owned by %d shards", n, p, c)
			}
		}
	}
}
