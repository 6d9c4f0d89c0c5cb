//go:build !race

// The acceptance tests at full scale. They run without the race detector
// (which makes them 5-10x slower): `go test -count=1 -run '^TestAcceptance'`
// (make test). The same properties are tested at a smaller scale with
// the race detector: TestExactRows, TestDayRollover and
// internal/core.TestCrashReplay.

package writer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

// TestAcceptanceExactRows proves that every depth frame of the real
// recordings becomes exactly one row with exact values: 100,000+
// envelopes (every recording and the partial samples, seven times under
// renamed symbols) through a real JetStream server, sealed with Finish,
// every row compared with an independent decode of its payload, with
// memory-triggered checkpoints and part files on the way.
func TestAcceptanceExactRows(t *testing.T) {
	envs := dataset(t, 7)
	if len(envs) < 100_000 {
		t.Fatalf("dataset has %d envelopes, want >= 100000", len(envs))
	}
	cfg := testConfig("", "")
	cfg.MemoryLimit = 8 << 20 // several memory-triggered checkpoints and part files
	reg := checkExactRows(t, envs, cfg)
	if v := metricValue(t, reg, "depthcap_writer_parts_total"); v == 0 {
		t.Error("no part file written")
	}
}

// TestAcceptanceDayRollover runs checkDayRollover on every frame of the
// two ETHUSDT recordings that cross midnight 2024-08-08/09.
func TestAcceptanceDayRollover(t *testing.T) {
	checkDayRollover(t, dataset(t, 1, testrec.LargeRecordings()...))
}

// buildWriter builds cmd/writer for the kill test.
func buildWriter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "writer")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/writer")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build writer: %v\n%s", err, out)
	}
	return bin
}

// crashStream is the stream contents of the crash test: two copies of
// every real recording (renamed symbols) with an explicit synthetic
// receive-time layout, one event every 20 ms, so that with WRITER_PERIOD=1m
// about ten periods seal while the writer is being killed.
func crashStream(t *testing.T) []envelope.Envelope {
	envs := dataset(t, 2)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range envs {
		envs[i].ReceivedNs = base + int64(i)*int64(20*time.Millisecond)
		if envs[i].Kind == md.Snapshot {
			envs[i].RequestNs = envs[i].ReceivedNs - int64(time.Millisecond)
		}
	}
	return envs
}

func processEnv(dataDir, url string) []string {
	return append(os.Environ(),
		"NATS_URL="+url,
		"DATA_DIR="+dataDir,
		"METRICS_ADDR=127.0.0.1:0",
		"LOG_FORMAT=json",
		"LOG_LEVEL=warn",
		"WRITER_PERIOD=1m",
		"WRITER_GRACE=5s",
		"WRITER_CHECKPOINT_INTERVAL=150ms",
		"WRITER_MEMORY_LIMIT=4194304",
		"WRITER_PART_BYTES=65536",
		"WRITER_ROW_GROUP_ROWS=1000",
	)
}

// TestAcceptanceCrashSafety proves exactly-once through kill -9: the
// writer runs as a separate process and is killed with SIGKILL seven
// times, each at a random moment (0-100 ms) after it started consuming
// the stage just published, and restarted; at least five kills must hit
// it with messages delivered but not yet acked (work in flight).
// Afterwards every sealed file and manifest is byte-identical to a
// crash-free run's over the same stream contents, the row counts add up
// to the stream, and FILES holds one FileSealed per file.
func TestAcceptanceCrashSafety(t *testing.T) {
	bin := buildWriter(t)
	envs := crashStream(t)

	// Crash-free reference.
	ref := newHarness(t)
	ref.publish(envs, false)
	refDir := t.TempDir()
	refCfg := testConfig(refDir, ref.url)
	refCfg.Period, refCfg.Grace, refCfg.CheckpointInterval = time.Minute, 5*time.Second, 150*time.Millisecond
	refCfg.MemoryLimit, refCfg.PartBytes, refCfg.RowGroupRows = 4<<20, 64<<10, 1000
	ref.finish(refCfg)

	// Killed run: publish in stages; kill the writer while it works.
	h := newHarness(t)
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(1, seed))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stream, err := h.js.Stream(ctx, md.StreamMarketData)
	if err != nil {
		t.Fatal(err)
	}
	const stages = 7
	inFlight := 0
	var published uint64
	for s := 0; s < stages; s++ {
		lo, hi := len(envs)*s/stages, len(envs)*(s+1)/stages
		h.publish(envs[lo:hi], false)
		stageStart := published
		published += uint64(hi - lo)
		cmd := exec.Command(bin)
		cmd.Env = processEnv(dir, h.url)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Await the new process consuming this stage, then kill it at a
		// random moment shortly after.
		var info *jetstream.ConsumerInfo
		for info == nil || info.Delivered.Stream <= stageStart {
			if ctx.Err() != nil {
				t.Fatalf("stage %d: the writer never consumed: %s", s, stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
			if c, err := stream.Consumer(ctx, "writer-0-of-1"); err == nil {
				info, _ = c.Info(ctx)
			}
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		if c, err := stream.Consumer(ctx, "writer-0-of-1"); err == nil {
			if info, err := c.Info(ctx); err == nil && (info.NumAckPending > 0 || info.NumPending > 0) {
				inFlight++
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("writer exited before the kill: %v\n%s", err, stderr.String())
		}
	}
	if inFlight < 5 {
		t.Fatalf("only %d of %d kills hit the writer with work in flight (seed %d)", inFlight, stages, seed)
	}
	sealedByProcess := len(parquetFiles(t, dir))
	if sealedByProcess == 0 {
		t.Fatal("the killed writers sealed nothing: no kill could hit a seal")
	}
	// Finish in-process (as depthcap import would).
	cfg := refCfg
	cfg.DataDir = dir
	cfg.URL = h.url
	h.finish(cfg)

	refFiles, gotFiles := allFiles(t, refDir), allFiles(t, dir)
	if len(refFiles) == 0 {
		t.Fatal("no files sealed")
	}
	for rel, sum := range refFiles {
		g, ok := gotFiles[rel]
		if !ok {
			t.Errorf("%s missing after crashes", rel)
			continue
		}
		if g != sum {
			t.Errorf("%s differs from the crash-free run", rel)
		}
	}
	for rel := range gotFiles {
		if _, ok := refFiles[rel]; !ok {
			t.Errorf("%s exists only after crashes", rel)
		}
	}
	// The rows are the stream's, once: the files are the reference's,
	// whose row counts add up to the stream.
	n := 0
	for _, rel := range parquetFiles(t, dir) {
		rows, err := strconv.Atoi(readMeta(t, filepath.Join(dir, rel))["depthcap.rows"])
		if err != nil {
			t.Fatal(err)
		}
		n += rows
	}
	if n != len(envs) {
		t.Errorf("%d rows, want %d", n, len(envs))
	}
	st, err := h.js.Stream(ctx, md.StreamFiles)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if files := len(parquetFiles(t, dir)); int(info.State.Msgs) != files {
		t.Errorf("FILES holds %d messages, want one per file (%d)", info.State.Msgs, files)
	}
	t.Logf("%d kills (%d with work in flight), %d files (+ manifests) byte-identical (%d sealed by the killed processes), %d rows",
		stages, inFlight, len(refFiles)/2, sealedByProcess, n)
}

// allFiles maps every sealed file and manifest under dir to its SHA-256.
func allFiles(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, rel := range parquetFiles(t, dir) {
		for _, p := range []string{rel, rel[:len(rel)-len(".parquet")] + ".gaps.json"} {
			b, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil {
				t.Fatal(err)
			}
			out[p] = sha256.Sum256(b)
		}
	}
	return out
}
