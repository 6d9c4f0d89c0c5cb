package writer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
)

// buildWriter builds cmd/writer for the kill tests.
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

// TestCrashSafety proves exactly-once through kill -9: the writer runs as
// a separate process and is killed with SIGKILL at random moments (at
// least 5 times, each while it has unprocessed messages) and restarted;
// afterwards every sealed file and manifest is byte-identical to a
// crash-free run's over the same stream contents, and FILES holds one
// FileSealed per file.
func TestCrashSafety(t *testing.T) {
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
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	const stages = 7
	kills := 0
	for s := 0; s < stages; s++ {
		lo, hi := len(envs)*s/stages, len(envs)*(s+1)/stages
		h.publish(envs[lo:hi], false)
		cmd := exec.Command(bin)
		cmd.Env = processEnv(dir, h.url)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+rng.IntN(450)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("writer exited before the kill: %v\n%s", err, stderr.String())
		}
		kills++
	}
	if kills < 5 {
		t.Fatalf("%d kills", kills)
	}
	sealedByProcess := len(parquetFiles(t, dir))
	if sealedByProcess == 0 {
		t.Fatal("the killed writer sealed nothing: the kills did not hit a working writer")
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
	// And the rows are exactly the stream's, once.
	got, _ := readAll(t, dir)
	n := 0
	for _, rs := range got {
		n += len(rs)
	}
	if n != len(envs) {
		t.Errorf("%d rows, want %d", n, len(envs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := h.js.Stream(ctx, md.StreamFiles)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(info.State.Msgs) != len(parquetFiles(t, dir)) {
		t.Errorf("FILES holds %d messages, want one per file (%d)", info.State.Msgs, len(parquetFiles(t, dir)))
	}
	t.Logf("%d kills, %d files (+ manifests) byte-identical (%d sealed by the killed processes), %d rows", kills, len(refFiles)/2, sealedByProcess, n)
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
