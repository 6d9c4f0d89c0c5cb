// Package writer consumes the MARKETDATA stream into ZSTD Parquet files,
// one per market, kind, symbol and period, exactly once through crashes:
// rows are checkpointed (encoded chunks in an atomic checkpoint file, large
// runs in fsynced part files) together with the stream sequence they
// reach, and JetStream is the write-ahead log between checkpoints. See
// docs/ARCHITECTURE.md ("Writer") and SCHEMA.md.
package writer

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/writer/internal/period"
)

// Config is the writer's configuration (environment variables).
type Config struct {
	svc.Base
	bus.Config

	DataDir            string        `envconfig:"DATA_DIR" default:"./data" desc:"root of the Parquet files, the writer's checkpoint (.writer/) and part files (.parts/)"`
	Shard              string        `envconfig:"WRITER_SHARD" default:"0/1" desc:"i/N: this writer takes the MARKETDATA partitions p with p % N == i (N <= 64); run N writers for 0/N..N-1/N"`
	Period             time.Duration `envconfig:"WRITER_PERIOD" default:"24h" desc:"length of a file's period, 1m to 24h dividing 24h; 24h gives <YYYY-MM-DD>.parquet"`
	Grace              time.Duration `envconfig:"WRITER_GRACE" default:"5m" desc:"how far the watermark must pass a period's end before the period is sealed; also how long a late-event supplement stays open"`
	CheckpointInterval time.Duration `envconfig:"WRITER_CHECKPOINT_INTERVAL" default:"30s" desc:"time between checkpoints: bounds the replay after a crash"`
	MemoryLimit        int64         `envconfig:"WRITER_MEMORY_LIMIT" default:"201326592" desc:"bytes of buffered rows and encoded chunks across all open files; a checkpoint runs when it is passed. The writer process sets its Go memory limit to this + WRITER_PULL_MAX_BYTES + 96 MiB unless GOMEMLIMIT is set"`
	PartBytes          int64         `envconfig:"WRITER_PART_BYTES" default:"1048576" desc:"encoded bytes an open file keeps in the checkpoint before they move to a part file"`
	RowGroupRows       int           `envconfig:"WRITER_ROW_GROUP_ROWS" default:"16384" desc:"rows per Parquet row group (fixed, so files are byte-identical whatever the checkpoints)"`
	ZstdLevel          int           `envconfig:"WRITER_ZSTD_LEVEL" default:"1" desc:"ZSTD level of the Parquet files, 1-22 (1-2, 3-5, 6-9 and 10+ are the encoder's four speeds; 1 measured fastest for +0.4-1% bytes over 3)"`
	DedupRecent        int           `envconfig:"WRITER_DEDUP_RECENT" default:"1024" desc:"ids remembered per partial/snapshot stream to drop replica duplicates"`
	PullMaxBytes       int           `envconfig:"WRITER_PULL_MAX_BYTES" default:"16777216" desc:"bytes of messages the consumer buffers in the client (and at most 32768 messages)"`
}

// OwnedPrefixes makes svc.Load reject unknown WRITER_* variables.
func (c *Config) OwnedPrefixes() []string { return []string{"WRITER_"} }

// Validate checks every setting and names the variable on error.
func (c *Config) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return svc.Invalid("DATA_DIR", c.DataDir, "a directory path")
	}
	if _, _, err := ParseShard(c.Shard); err != nil {
		return svc.Invalid("WRITER_SHARD", c.Shard, "i/N with 1 <= N <= %d and 0 <= i < N, e.g. 0/1 or 2/4", md.Partitions)
	}
	if err := period.Check(c.Period); err != nil {
		return svc.Invalid("WRITER_PERIOD", c.Period, "a duration from 1m to 24h, whole minutes, dividing 24h (1m, 5m, 15m, 1h, 6h, 24h...)")
	}
	if c.Grace < 0 || c.Grace > period.Day {
		return svc.Invalid("WRITER_GRACE", c.Grace, "a duration from 0s to 24h")
	}
	if c.CheckpointInterval < 100*time.Millisecond || c.CheckpointInterval > 10*time.Minute {
		return svc.Invalid("WRITER_CHECKPOINT_INTERVAL", c.CheckpointInterval, "a duration from 100ms to 10m")
	}
	if c.MemoryLimit < 1<<20 {
		return svc.Invalid("WRITER_MEMORY_LIMIT", c.MemoryLimit, "bytes >= 1048576 (1 MiB)")
	}
	if c.PartBytes < 4096 || c.PartBytes > c.MemoryLimit {
		return svc.Invalid("WRITER_PART_BYTES", c.PartBytes, "bytes from 4096 to WRITER_MEMORY_LIMIT (%d)", c.MemoryLimit)
	}
	if c.RowGroupRows < 16 || c.RowGroupRows > 1<<22 {
		return svc.Invalid("WRITER_ROW_GROUP_ROWS", c.RowGroupRows, "rows from 16 to 4194304")
	}
	if c.ZstdLevel < 1 || c.ZstdLevel > 22 {
		return svc.Invalid("WRITER_ZSTD_LEVEL", c.ZstdLevel, "1 to 22")
	}
	if c.DedupRecent < 16 || c.DedupRecent > 1<<20 {
		return svc.Invalid("WRITER_DEDUP_RECENT", c.DedupRecent, "16 to 1048576")
	}
	if c.PullMaxBytes < 1<<20 {
		return svc.Invalid("WRITER_PULL_MAX_BYTES", c.PullMaxBytes, "bytes >= 1048576")
	}
	return nil
}

// ParseShard parses "i/N".
func ParseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	if ok {
		i, err = strconv.Atoi(a)
		if err == nil {
			n, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || n < 1 || n > md.Partitions || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("shard %q: want i/N with 1 <= N <= %d, 0 <= i < N", s, md.Partitions)
	}
	return i, n, nil
}

// ShardFilters are the consumer filter subjects of shard i of n: the
// partition's filter when the shard owns exactly one partition, else none
// (the whole stream), and the writer skips the messages of partitions it
// does not own (Owns). A consumer with several filter subjects is slow to
// deliver: nats-server 2.15 spent about 500 µs of CPU per message
// delivering a backlog to one with the 64 filters of 0/1 (1,982 msg/s)
// and 670 µs with the 32 of 0/2, against 5 µs without a filter (`make
// bench`, market scenario). Reading every message and skipping most of
// them costs N × 5 µs per message across N shards instead.
func ShardFilters(i, n int) []string {
	if f := PartitionFilters(i, n); len(f) == 1 {
		return f
	}
	return nil
}

// PartitionFilters are the filter subjects of the partitions shard i of n
// owns.
func PartitionFilters(i, n int) []string {
	var f []string
	for p := 0; p < md.Partitions; p++ {
		if Owns(i, n, p) {
			f = append(f, md.PartitionFilter(p))
		}
	}
	return f
}

// Owns reports whether shard i of n writes partition p.
func Owns(i, n, p int) bool { return p%n == i }

// SoftMemoryLimit is the Go memory limit the writer process sets when
// GOMEMLIMIT is not: WRITER_MEMORY_LIMIT of rows and chunks, the pull
// buffer, and 96 MiB for everything else (a file being sealed, the
// runtime).
func SoftMemoryLimit(c Config) int64 {
	return c.MemoryLimit + int64(c.PullMaxBytes) + 96<<20
}
