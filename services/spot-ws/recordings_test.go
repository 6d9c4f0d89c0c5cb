package spotws_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
)

// testdataDir is the shared Binance testdata, relative to this module.
func testdataDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "testdata", "binance")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("shared Binance testdata not found at %s: %v", dir, err)
	}
	return dir
}

// TestRecordings replays every real recording through binance-sim
// (replay mode, as fast as the client reads) into the service with
// SYMBOLS=all and the recording's diff speed, and proves that JetStream
// holds exactly the recorded depth frames: per stream, the stored
// payloads are byte-identical to the recorded "data" objects, in the same
// order, none missing, none extra (trade, bookTicker and REST snapshot
// lines are not subscribed), and no gap is recorded on these intact
// chains.
func TestRecordings(t *testing.T) {
	t.Parallel() // light load; runs beside the other parallel acceptance tests
	dir := testdataDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.rec.gz"))
	if err != nil || len(files) < 6 {
		t.Fatalf("recordings: %v (%d files)", err, len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m, err := recording.MarketFromFileName(path)
			if err != nil {
				t.Fatal(err)
			}
			recorded, err := recording.ReadAll(path)
			if err != nil {
				t.Fatal(err)
			}
			// The recorded depth frames per stream, in order.
			want := map[string][][]byte{}
			speed := ""
			for _, f := range recorded {
				var h binance.Header
				if err := binance.ScanFrame(f.JSON, &h); err != nil {
					t.Fatalf("recorded frame: %v", err)
				}
				info, err := binance.ParseStreamName(h.Stream)
				if err != nil || info.Kind != md.Diff {
					continue
				}
				speed = string(info.Speed)
				want[string(h.Stream)] = append(want[string(h.Stream)], h.Data)
			}
			sim := startSim(t, func(c *binancesim.Config) {
				c.Mode = binancesim.ModeReplay
				c.Replay = []string{path}
				c.Speed = 0
			})
			srv := bustest.RunServer(t)
			conn := connect(t, srv.ClientURL())
			in := startIngest(t, sim, ingestOpts{market: m, conn: conn, symbols: "all", mut: func(c *ingest.Config) {
				c.DiffSpeed = speed
				c.PartialLevels = 0
			}})
			select {
			case <-sim.ReplayDone():
			case <-time.After(2 * time.Minute):
				t.Fatal("replay not done within 2 minutes")
			}
			if err := sim.Close(); err != nil {
				t.Fatal(err)
			}
			if err := in.stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			b := group(t, readStream(t, conn.JS))
			if len(b.gaps) != 0 {
				t.Errorf("gap records on intact recordings: %v", b.gaps)
			}
			frames := 0
			for k, es := range b.data {
				stream := binance.DiffStream(k.sym, speed)
				w := want[stream]
				if k.k != md.Diff || len(w) == 0 {
					t.Errorf("%s stored, not a recorded depth stream", k)
					continue
				}
				if len(es) != len(w) {
					t.Errorf("%s: %d stored, %d recorded", k, len(es), len(w))
				}
				for i := range min(len(es), len(w)) {
					if string(es[i].Payload) != string(w[i]) {
						t.Fatalf("%s frame %d: stored payload differs from the recorded data:\n%.200s\n%.200s", k, i, es[i].Payload, w[i])
					}
				}
				frames += len(es)
			}
			if len(b.data) != len(want) {
				t.Errorf("%d streams stored, %d recorded (%s)", len(b.data), len(want), strings.Join(keys(want), ","))
			}
			t.Logf("%s: %d depth frames of %d streams byte-identical", m, frames, len(b.data))
		})
	}
}

func keys(m map[string][][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
