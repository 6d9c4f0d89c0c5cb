package writer_test

import (
	"bytes"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

// dataset builds envelopes from every real recording (and the real partial
// samples), repeated reps times under renamed symbols (<SYMBOL>_R<k>, the
// payload's "s" renamed too) so that ids stay consistent per symbol, and
// sorted by receive time.
func dataset(t testing.TB, reps int, names ...string) []envelope.Envelope {
	t.Helper()
	if len(names) == 0 {
		names = testrec.Recordings()
	}
	var frames []testrec.Frame
	for _, n := range names {
		fs, err := testrec.Load(n)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, fs...)
	}
	if len(names) == len(testrec.Recordings()) {
		ps, err := testrec.Partials()
		if err != nil {
			t.Fatal(err)
		}
		base := time.Date(2022, 5, 29, 12, 0, 0, 0, time.UTC).UnixNano()
		for i := range ps {
			ps[i].RecvNs = base + int64(i)*int64(time.Second)
		}
		frames = append(frames, ps...)
	}
	var out []envelope.Envelope
	for k := 0; k < reps; k++ {
		for i := range frames {
			f := frames[i]
			if k > 0 {
				sym := f.Symbol + "_R" + strconv.Itoa(k)
				f.Data = bytes.Replace(f.Data, []byte(`"s":"`+f.Symbol+`"`), []byte(`"s":"`+sym+`"`), 1)
				f.Symbol = sym
			}
			out = append(out, f.Envelope("rec"))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ReceivedNs < out[j].ReceivedNs })
	return out
}

type streamID struct {
	m   md.Market
	k   md.Kind
	sym string
}

// readAll reads every sealed file under dir, grouped by stream, files in
// name order (periods, then supplements).
func readAll(t testing.TB, dir string) (map[streamID][]Row, map[string]map[string]string) {
	t.Helper()
	got := map[streamID][]Row{}
	metas := map[string]map[string]string{}
	for _, rel := range parquetFiles(t, dir) {
		parts := strings.Split(rel, "/")
		m, err := md.ParseMarket(parts[0])
		if err != nil {
			t.Fatal(err)
		}
		k, ok := md.KindFromDir(parts[1])
		if !ok {
			t.Fatalf("kind dir %s", parts[1])
		}
		rs, kv := readRows(t, filepath.Join(dir, rel))
		id := streamID{m, k, parts[2]}
		got[id] = append(got[id], rs...)
		metas[rel] = kv
	}
	return got, metas
}

// TestExactRows proves that every depth frame of the real recordings
// becomes exactly one row with exact values: 100,000+ envelopes through a
// real JetStream server, sealed with Finish, and every row compared with
// an independent decode (encoding/json + strconv.ParseFloat) of its
// payload. No row is missing, none is extra, order is stream order.
func TestExactRows(t *testing.T) {
	envs := dataset(t, 7)
	if len(envs) < 100_000 {
		t.Fatalf("dataset has %d envelopes, want >= 100000", len(envs))
	}
	h := newHarness(t)
	h.publish(envs, false)
	dir := t.TempDir()
	cfg := testConfig(dir, h.url)
	cfg.MemoryLimit = 8 << 20 // several memory-triggered checkpoints and part files
	h.finish(cfg)

	want := map[streamID][]Row{}
	for i := range envs {
		e := &envs[i]
		id := streamID{e.Market, e.Kind, e.Symbol}
		want[id] = append(want[id], expectedRow(t, e))
	}
	got, metas := readAll(t, dir)
	if len(got) != len(want) {
		t.Errorf("%d streams in files, want %d", len(got), len(want))
	}
	total := 0
	for id, w := range want {
		g := got[id]
		if len(g) != len(w) {
			t.Errorf("%v: %d rows, want %d", id, len(g), len(w))
			continue
		}
		for i := range w {
			if d := diffRow(g[i], w[i]); d != "" {
				t.Fatalf("%v row %d:\n%s", id, i, d)
			}
		}
		total += len(g)
	}
	if total != len(envs) {
		t.Errorf("%d rows written, want %d", total, len(envs))
	}
	for rel, kv := range metas {
		if kv["depthcap.schema_version"] != "1" || kv["depthcap.rows"] == "" || kv["depthcap.gap_count"] != "0" {
			t.Errorf("%s: metadata %v", rel, kv)
		}
	}
	t.Logf("%d envelopes, %d files", len(envs), len(metas))
}
