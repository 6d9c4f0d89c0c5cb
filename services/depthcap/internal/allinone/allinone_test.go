package allinone

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/frames"
	"github.com/depthcap/depthcap/pkg/manifest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
	"github.com/depthcap/depthcap/services/writer"
)

func testdata(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "..", "shared", "testdata", "binance", name)
}

func testEnv(t *testing.T) svc.Env {
	log := zap.NewNop()
	if testing.Verbose() {
		log = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	}
	return svc.Env{Log: log, Registry: svc.NewRegistry(), Health: svc.NewHealth()}
}

// TestDemoInterruptedAndRestarted proves the all-in-one's clean shutdown
// and restart lose and duplicate nothing: a replay demo is interrupted
// (as by Ctrl-C) part-way, then run again to the end of the recording;
// afterwards every recorded diff frame is exactly one row, in exchange
// order, with no gap in the manifests. It also reports how long the
// interrupted run took to stop.
func TestDemoInterruptedAndRestarted(t *testing.T) {
	rec := testdata("spot_2021-10-12_4sym.rec.gz")
	data := t.TempDir()
	t.Setenv("DATA_DIR", data)
	t.Setenv("REPLAY", rec)
	t.Setenv("SIM_SPEED", "4") // the 30 s recording in about 8 s
	t.Setenv("NATS_EMBEDDED_LISTEN", "none")
	t.Setenv("PROGRESS_INTERVAL", "0")
	t.Setenv("SNAPSHOT_INTERVAL", "2s")
	t.Setenv("WRITER_CHECKPOINT_INTERVAL", "1s")

	cfg, services, err := Load(true)
	if err != nil {
		t.Fatal(err)
	}
	// Run 1: stopped after 3 s, as Ctrl-C would.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	env1 := testEnv(t)
	go func() { done <- Run(ctx, cfg, services, true, env1) }()
	time.Sleep(3 * time.Second)
	stopAt := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("interrupted run did not stop within 60 s")
	}
	t.Logf("interrupted run stopped %s after the signal", time.Since(stopAt).Round(time.Millisecond))
	rows1 := gaugeValue(env1.Registry, "depthcap_writer_rows_total")
	if rows1 == 0 {
		t.Fatal("the interrupted run wrote no rows: the test would prove nothing")
	}
	t.Logf("interrupted run wrote %d rows", int(rows1))

	// Run 2: the replay starts again from the beginning and runs to its end;
	// the writer must drop what run 1 already wrote.
	cfg, services, err = Load(true)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel2()
	if err := Run(ctx2, cfg, services, true, testEnv(t)); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if ctx2.Err() != nil {
		t.Fatal("second run did not stop by itself at the end of the replay")
	}

	// Seal what the demo left checkpointed, then read the files.
	seal(t, data)
	want := recordedDiffIDs(t, rec)
	got := map[string][]int64{}
	st := dataset.Local(data)
	for sym := range want {
		dir := filepath.Join(data, "spot", md.Diff.Dir(), sym)
		names, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
		sort.Strings(names)
		for _, name := range names {
			rel, _ := filepath.Rel(data, name)
			r, err := dataset.OpenFile(context.Background(), st, filepath.ToSlash(rel), md.Diff, 0, dataset.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			for {
				row, err := r.Next(context.Background())
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got[sym] = append(got[sym], row.FinalID)
			}
			r.Close()
			checkNoGaps(t, name)
		}
	}
	for sym, ids := range want {
		if !slices.Equal(got[sym], ids) {
			t.Errorf("%s: file ids %v\nwant recorded ids %v (each exactly once, in order)", sym, got[sym], ids)
		}
	}
}

// recordedDiffIDs returns the final update ids of every diff frame of a
// recording, per symbol, in order.
func recordedDiffIDs(t *testing.T, path string) map[string][]int64 {
	frs, err := recording.ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := recording.MarketFromFileName(path)
	b := frames.NewBuilder(m, "t")
	var h binance.Header
	var env envelope.Envelope
	out := map[string][]int64{}
	for _, fr := range frs {
		if b.Build(fr.JSON, fr.RecvNs, &h, &env) != nil || env.Kind != md.Diff {
			continue
		}
		out[env.Symbol] = append(out[env.Symbol], env.FinalID)
	}
	return out
}

// seal runs the writer's Finish on the demo's embedded NATS store.
func seal(t *testing.T, data string) {
	var wcfg writer.Config
	if err := svc.Load(&wcfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := bus.Connect(ctx, wcfg.Config, data, "seal", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w, err := writer.New(wcfg, conn, testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
}

func checkNoGaps(t *testing.T, parquet string) {
	b, err := os.ReadFile(dataset.ManifestName(parquet))
	if err != nil {
		t.Fatalf("manifest of %s: %v", parquet, err)
	}
	var m manifest.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.GapCount != 0 {
		t.Errorf("%s: %d gaps in the manifest, want 0", parquet, m.GapCount)
	}
}
