package writer_test

import (
	"path/filepath"
	"testing"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/manifest"
	"github.com/depthcap/depthcap/pkg/md"
)

func readManifest(t *testing.T, path string) manifest.Manifest {
	t.Helper()
	m, err := manifest.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return *m
}

// TestReplicaDuplicates proves dedup by exchange sequence beyond
// JetStream's dedup window: replica A publishes the futures 4-symbol
// recording with a hole (it missed events 100-119 of each symbol and
// reports the gap), replica B publishes every event later without
// Nats-Msg-Id (so JetStream keeps all its copies). Each event must become
// exactly one row; the hole is filled by B's copies (out-of-order fills),
// so the manifests list no open gap and A's reports as covered.
func TestReplicaDuplicates(t *testing.T) {
	envs := dataset(t, 1, "futures_2021-07-22_4sym.rec.gz")
	var diffs []envelope.Envelope
	for _, e := range envs {
		if e.Kind == md.Diff {
			diffs = append(diffs, e)
		}
	}
	// Replica A: skip events 100..119 of every symbol, report the gap.
	seen := map[string]int{}
	var a []envelope.Envelope
	var lastU = map[string]int64{}
	for _, e := range diffs {
		i := seen[e.Symbol]
		seen[e.Symbol]++
		if i >= 100 && i < 120 {
			if i == 119 {
				continue
			}
			continue
		}
		if i == 120 {
			a = append(a, envelope.Envelope{Market: e.Market, Kind: md.Gap, Symbol: e.Symbol, ReceivedNs: e.ReceivedNs, Source: "A", Has: envelope.HasGap,
				Gap: envelope.Gap{StreamKind: md.Diff, Reason: envelope.ReasonDisconnect, AfterID: lastU[e.Symbol], ResumePrevID: e.PrevID, StartNs: e.ReceivedNs - 1, EndNs: e.ReceivedNs}})
		}
		e.Source = "A"
		a = append(a, e)
		lastU[e.Symbol] = e.FinalID
	}
	b := make([]envelope.Envelope, len(diffs))
	for i, e := range diffs {
		e.Source = "B"
		b[i] = e
	}
	h := newHarness(t)
	h.publish(a, false)
	h.publish(b, true) // beyond the dedup window: no Nats-Msg-Id
	dir := t.TempDir()
	h.finish(testConfig(dir, h.url))

	got, _ := readAll(t, dir)
	want := map[streamID]int{}
	for _, e := range diffs {
		want[streamID{e.Market, e.Kind, e.Symbol}]++
	}
	for id, n := range want {
		rows := got[id]
		if len(rows) != n {
			t.Errorf("%v: %d rows, want %d (one per event)", id, len(rows), n)
		}
		ids := map[int64]bool{}
		for _, r := range rows {
			if ids[r.Final] {
				t.Errorf("%v: u %d written twice", id, r.Final)
			}
			ids[r.Final] = true
		}
	}
	gaps, covered := 0, 0
	for _, rel := range parquetFiles(t, dir) {
		m := readManifest(t, filepath.Join(dir, rel[:len(rel)-len(".parquet")]+".gaps.json"))
		gaps += m.GapCount
		covered += len(m.Covered)
		for _, c := range m.Covered {
			if c.Source != "A" || c.Reason != "disconnect" {
				t.Errorf("covered report %+v", c)
			}
		}
	}
	if gaps != 0 {
		t.Errorf("%d open gaps listed, want 0 (B filled them)", gaps)
	}
	if covered != len(want) {
		t.Errorf("%d covered reports, want %d (one per symbol)", covered, len(want))
	}
}

// TestUnfilledGap proves that a gap no replica fills is listed in the
// manifest of the file holding the row after it, with the collector's
// report attached, and counted in the Parquet metadata.
func TestUnfilledGap(t *testing.T) {
	envs := dataset(t, 1, "spot_2021-10-12_4sym.rec.gz")
	var out []envelope.Envelope
	var dropped envelope.Envelope
	n := 0
	for _, e := range envs {
		if e.Kind == md.Diff && e.Symbol == "NKNUSDT" {
			n++
			if n == 10 {
				dropped = e
				continue
			}
			if n == 11 {
				out = append(out, envelope.Envelope{Market: e.Market, Kind: md.Gap, Symbol: e.Symbol, ReceivedNs: e.ReceivedNs, Source: "A", Has: envelope.HasGap,
					Gap: envelope.Gap{StreamKind: md.Diff, Reason: envelope.ReasonSequence, AfterID: dropped.FirstID - 1, ResumePrevID: e.FirstID - 1}})
			}
		}
		out = append(out, e)
	}
	h := newHarness(t)
	h.publish(out, false)
	dir := t.TempDir()
	h.finish(testConfig(dir, h.url))
	files := parquetFiles(t, dir)
	found := false
	for _, rel := range files {
		m := readManifest(t, filepath.Join(dir, rel[:len(rel)-len(".parquet")]+".gaps.json"))
		kv := readMeta(t, filepath.Join(dir, rel))
		if kv["depthcap.gap_count"] != itoa(m.GapCount) {
			t.Errorf("%s: metadata gap_count %s, manifest %d", rel, kv["depthcap.gap_count"], m.GapCount)
		}
		if m.Symbol != "NKNUSDT" || m.Kind != "diff" {
			if m.GapCount != 0 {
				t.Errorf("%s: unexpected gaps %+v", rel, m.Gaps)
			}
			continue
		}
		if m.GapCount != 1 || m.Gaps[0].AfterID != dropped.FirstID-1 || m.Gaps[0].ResumePrevID != dropped.FinalID || len(m.Gaps[0].Reports) != 1 || m.Gaps[0].Reports[0].Reason != "sequence" {
			t.Fatalf("%s: gaps %+v", rel, m.Gaps)
		}
		found = true
	}
	if !found {
		t.Fatal("no NKNUSDT diff file")
	}
}
