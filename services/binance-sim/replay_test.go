package binancesim

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
	"github.com/depthcap/depthcap/services/binance-sim/replay"
)

// testdataFile locates a shared recording relative to the package.
func testdataFile(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("../../../shared/testdata/binance", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared testdata missing: %v", err)
	}
	return p
}

type recorded struct {
	streams []string          // depth streams, in first-seen order
	frames  []recording.Frame // frames of those streams, in order
	snaps   map[string][]byte // symbol -> last snapshot body
}

func readRecording(t testing.TB, path string) recorded {
	t.Helper()
	all, err := recording.ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	r := recorded{snaps: map[string][]byte{}}
	seen := map[string]bool{}
	for _, f := range all {
		fr, err := replay.Index(f.JSON)
		if err != nil {
			t.Fatal(err)
		}
		switch fr.Kind {
		case md.Snapshot:
			r.snaps[fr.Symbol] = fr.Data()
		case md.Diff, md.Partial:
			if !seen[fr.Stream] {
				seen[fr.Stream] = true
				r.streams = append(r.streams, fr.Stream)
			}
			r.frames = append(r.frames, f)
		}
	}
	return r
}

// TestReplayByteForByte proves replay mode at SIM_SPEED=0 sends a client
// subscribed to every recorded depth stream each recorded frame, byte for
// byte and in order, sends a raw /ws/<stream> client each frame's data
// bytes, serves the recorded REST snapshot body unchanged, lists the
// recorded symbols, and reports the replay done.
func TestReplayByteForByte(t *testing.T) {
	path := testdataFile(t, "spot_2021-10-12_4sym.rec.gz")
	rec := readRecording(t, path)
	if len(rec.frames) < 150 || len(rec.streams) != 4 {
		t.Fatalf("recording: %d frames, streams %v", len(rec.frames), rec.streams)
	}
	s := newSim(t, func(c *Config) { c.Mode, c.Replay, c.Speed = ModeReplay, []string{path}, 0 })
	if st := s.Status(); st.Markets[0].Replay == nil || st.Markets[0].Replay.Started {
		t.Fatalf("replay started before any subscription: %+v", st.Markets[0].Replay)
	}
	c := dial(t, s.WSURL(md.Spot)+"/stream?streams="+strings.Join(rec.streams, "/"), nil)
	for i, want := range rec.frames {
		got := read(t, c, 10*time.Second)
		if !bytes.Equal(got, want.JSON) {
			t.Fatalf("frame %d (line %d):\n got %.200s\nwant %.200s", i, want.Line, got, want.JSON)
		}
	}
	select {
	case <-s.ReplayDone():
	case <-time.After(10 * time.Second):
		t.Fatal("replay not done")
	}
	if rs := s.Status().Markets[0].Replay; !rs.Started || !rs.Done || rs.Position != rs.Frames {
		t.Fatalf("status %+v", rs)
	}

	raw := dial(t, s.WSURL(md.Spot)+"/ws/nknusdt@depth@100ms", nil)
	n := 0
	for _, want := range rec.frames {
		fr, _ := replay.Index(want.JSON)
		if fr.Stream != "nknusdt@depth@100ms" {
			continue
		}
		if got := read(t, raw, 10*time.Second); !bytes.Equal(got, fr.Data()) {
			t.Fatalf("raw frame %d: %.100s, want %.100s", n, got, fr.Data())
		}
		n++
	}

	r := get(t, s.RESTURL(md.Spot)+"/api/v3/depth?symbol=NKNUSDT&limit=1000")
	if r.status != 200 || !bytes.Equal(r.body, rec.snaps["NKNUSDT"]) {
		t.Fatalf("snapshot: %d %.100s", r.status, r.body)
	}
	if got := s.Symbols(md.Spot); len(got) != 4 || got[0] != "NKNUSDT" {
		t.Fatalf("symbols %v", got)
	}
	sent := s.Sent(md.Spot, md.Diff, "NKNUSDT")
	if len(sent.IDs) != 150 {
		t.Fatalf("send log has %d NKNUSDT diff ids, want 150", len(sent.IDs))
	}
}

// TestReplayTimed proves the SIM_SPEED > 0 clock sends every frame of the
// subscribed streams in order and finishes (30 s of recording at 1000x).
func TestReplayTimed(t *testing.T) {
	path := testdataFile(t, "futures_2021-07-22_4sym.rec.gz")
	rec := readRecording(t, path)
	s := newSim(t, func(c *Config) { c.Mode, c.Replay, c.Speed = ModeReplay, []string{path}, 1000 })
	c := dial(t, s.WSURL(md.Futures)+"/stream?streams="+strings.Join(rec.streams, "/"), nil)
	for i, want := range rec.frames {
		if got := read(t, c, 10*time.Second); !bytes.Equal(got, want.JSON) {
			t.Fatalf("frame %d: %.120s, want %.120s", i, got, want.JSON)
		}
	}
	select {
	case <-s.ReplayDone():
	case <-time.After(10 * time.Second):
		t.Fatal("replay not done")
	}
}
