package writer_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

// TestShards runs the shards of 3 (each reads the whole stream and skips
// the other shards' partitions) and of 64 (one filter each, sampled) on
// one DATA_DIR and compares their files with a single writer's: the same
// files, byte for byte. A message without a partition token is
// dead-lettered once, by shard 0.
func TestShards(t *testing.T) {
	envs := datasetWith(t, 3, true, testrec.SmallRecordings()...)
	h := newHarness(t)
	h.publish(envs, false)
	h.publishRaw("md.binance.spot", []byte("no partition token")) // stored as sent: bad input

	single := testConfig(t.TempDir(), h.url)
	h.finish(single)
	want := parquetFiles(t, single.DataDir)
	if len(want) < 10 {
		t.Fatalf("only %d files from the single writer", len(want))
	}
	dlqSingle := len(bustest.StreamMessages(t, h.js, md.StreamDLQ, ""))
	if dlqSingle != 1 {
		t.Fatalf("single writer: %d DLQ messages, want 1", dlqSingle)
	}

	sharded := testConfig(t.TempDir(), h.url)
	for i := range 3 {
		sharded.Shard = fmt.Sprintf("%d/3", i)
		h.finish(sharded)
	}
	compareTrees(t, single.DataDir, sharded.DataDir, want)
	if n := len(bustest.StreamMessages(t, h.js, md.StreamDLQ, "")); n != 2 {
		t.Errorf("shards of 3: %d new DLQ messages, want 1", n-dlqSingle)
	}

	// Shards of 64 own one partition each: every file of a partition the
	// sample owns, and no other.
	one := testConfig(t.TempDir(), h.url)
	owned := map[string]bool{}
	for _, i := range []int{0, 17, 40} {
		one.Shard = fmt.Sprintf("%d/64", i)
		h.finish(one)
	}
	part := map[string]int{} // symbol -> partition, as the stream stored it
	for _, m := range bustest.StreamMessages(t, h.js, md.StreamMarketData, "") {
		_, _, sym, err := md.ParseSubject(m.Subject())
		p, ok := md.SubjectPartition(m.Subject())
		if err == nil && ok {
			part[sym] = p
		}
	}
	got := parquetFiles(t, one.DataDir)
	for _, rel := range want {
		p, ok := part[streamOf(t, rel).sym]
		if !ok {
			t.Fatalf("%s: no partition for its symbol", rel)
		}
		if p == 0 || p == 17 || p == 40 {
			owned[rel] = true
		}
	}
	if len(owned) == 0 {
		t.Fatal("the sampled partitions own no file: pick others")
	}
	if len(got) != len(owned) {
		t.Errorf("shards 0, 17, 40 of 64 wrote %d files, want %d", len(got), len(owned))
	}
	for _, rel := range got {
		if !owned[rel] {
			t.Errorf("%s written by a shard of 64 that does not own it", rel)
		}
	}
	compareTrees(t, single.DataDir, one.DataDir, got)
}

// compareTrees checks that dir b holds exactly the Parquet files rels,
// each equal to a's, with equal manifests.
func compareTrees(t *testing.T, a, b string, rels []string) {
	t.Helper()
	got := parquetFiles(t, b)
	if len(got) != len(rels) {
		t.Errorf("%d files in %s, want %d", len(got), b, len(rels))
	}
	for _, rel := range rels {
		for _, name := range []string{rel, rel[:len(rel)-len(".parquet")] + ".gaps.json"} {
			x, err := os.ReadFile(filepath.Join(a, name))
			if err != nil {
				t.Fatal(err)
			}
			y, err := os.ReadFile(filepath.Join(b, name))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if !bytes.Equal(x, y) {
				t.Errorf("%s differs between the single writer and the shards", name)
			}
		}
	}
}
