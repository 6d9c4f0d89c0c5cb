package core

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/manifest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/pq"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

func dayCore(t *testing.T, dir string, sink Sink) *Core {
	t.Helper()
	c, err := Open(context.Background(), Config{DataDir: dir, Shard: "0-of-1", Period: 24 * time.Hour, Grace: 5 * time.Minute,
		DedupRecent: 64, MemoryLimit: 1 << 20, PartBytes: 1 << 12, InlineLimit: 1 << 14, Parquet: pq.DefaultOptions(), Producer: "test", StoreClamp: time.Minute},
		sink, NewMetrics(nil), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// snapEnv is a REST snapshot envelope of market m with lastUpdateId id
// (one level per side; futures with E and T).
func snapEnv(m md.Market, sym string, id, recvNs int64) envelope.Envelope {
	p := `{"lastUpdateId":` + itoa(id) + `,"bids":[["1.5","2"]],"asks":[["1.6","3"]]}`
	if m == md.Futures {
		ms := itoa(recvNs / 1e6)
		p = `{"lastUpdateId":` + itoa(id) + `,"E":` + ms + `,"T":` + ms + `,"bids":[["1.5","2"]],"asks":[["1.6","3"]]}`
	}
	return envelope.Envelope{Market: m, Kind: md.Snapshot, Symbol: sym, ReceivedNs: recvNs, RequestNs: recvNs - 1e6, Source: testrec.Source,
		Payload: []byte(p), LastID: id, Has: envelope.HasLast}
}

// bridgeOracle counts the snapshots among envs that some diff of envs
// bridges, by brute force over all diffs of the symbol (pkg/book's rule:
// spot U <= L+1 <= u, USD-M U <= L <= u), and the receive time of the
// first such snapshot.
func bridgeOracle(envs []envelope.Envelope, m md.Market, sym string) (snaps, bridged int64, firstNs int64) {
	for _, s := range envs {
		if s.Kind != md.Snapshot || s.Symbol != sym {
			continue
		}
		snaps++
		b := s.LastID
		if m == md.Spot {
			b++
		}
		for _, d := range envs {
			if d.Kind == md.Diff && d.Symbol == sym && d.FirstID <= b && b <= d.FinalID {
				bridged++
				if firstNs == 0 || s.ReceivedNs < firstNs {
					firstNs = s.ReceivedNs
				}
				break
			}
		}
	}
	return snaps, bridged, firstNs
}

// TestQualitySummary proves the manifests' quality summary on the real
// recordings: row times, gap count and gap time, and the snapshot bridge
// status of each diff file, the bridge counts checked against a
// brute-force search of the diffs for each snapshot (spot: the recorded
// snapshots arrive before their bridging diff; the added ones after it,
// decided from the chain). On spot NKNUSDT three diffs are dropped (a
// gap), one added snapshot points into the gap (not bridged) and one past
// it (bridged: the gap is restored); on USD-M KEEPUSDT a gap is left
// without a later snapshot (not restorable).
func TestQualitySummary(t *testing.T) {
	for _, tc := range []struct {
		rec         string
		m           md.Market
		sym         string // the symbol with the gap
		drop        int    // index (among the symbol's diffs) of the first dropped diff
		snapInGap   bool   // add a snapshot pointing into the gap
		snapAfter   bool   // add a snapshot bridging after the gap
		restorable  bool
		gapRestored int
	}{
		{rec: "spot_2021-10-12_4sym.rec.gz", m: md.Spot, sym: "NKNUSDT", drop: 20, snapInGap: true, snapAfter: true, restorable: true, gapRestored: 1},
		{rec: "futures_2021-07-22_4sym.rec.gz", m: md.Futures, sym: "KEEPUSDT", drop: 30, restorable: false, gapRestored: 0},
	} {
		t.Run(tc.rec, func(t *testing.T) {
			frames, err := testrec.Load(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			var envs []envelope.Envelope
			var symDiffs []envelope.Envelope
			var dropped []envelope.Envelope
			n := 0
			for _, f := range frames {
				e := f.Env
				if e.Kind == md.Diff && e.Symbol == tc.sym {
					if n >= tc.drop && n < tc.drop+3 {
						dropped = append(dropped, e)
						n++
						continue
					}
					n++
					symDiffs = append(symDiffs, e)
				}
				envs = append(envs, e)
			}
			if len(symDiffs) < tc.drop+20 {
				t.Fatalf("%s has %d diffs of %s", tc.rec, len(symDiffs), tc.sym)
			}
			last := envs[len(envs)-1].ReceivedNs
			if tc.snapInGap {
				l := dropped[1].FinalID // bridge id inside the dropped diffs
				if tc.m == md.Spot {
					l = dropped[0].FinalID
				}
				envs = append(envs, snapEnv(tc.m, tc.sym, l, last+1e6))
			}
			if tc.snapAfter {
				envs = append(envs, snapEnv(tc.m, tc.sym, symDiffs[tc.drop+10].FinalID, last+2e6))
			}

			dir := t.TempDir()
			c := dayCore(t, dir, &fakeSink{})
			ctx := context.Background()
			for i := range envs {
				e := &envs[i]
				if err := c.Handle(ctx, Msg{Seq: uint64(i + 1), Subject: testrec.Subject(e), Data: e.AppendMarshal(nil), StoreNs: e.ReceivedNs}); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.SealAll(ctx); err != nil {
				t.Fatal(err)
			}

			syms := map[string]bool{}
			for _, e := range envs {
				if e.Kind == md.Diff {
					syms[e.Symbol] = true
				}
			}
			day := time.Unix(0, envs[0].ReceivedNs).UTC().Format(time.DateOnly)
			for sym := range syms {
				rel := fmt.Sprintf("%s/diff_orderbooks/%s/%s.parquet", tc.m, sym, day)
				man, err := manifest.Read(filepath.Join(dir, filepath.FromSlash(manifest.Name(rel))))
				if err != nil {
					t.Fatal(err)
				}
				q := man.Quality
				if man.SchemaVersion != manifest.Version || q == nil || q.Bridge == nil {
					t.Fatalf("%s: version %d, quality %+v", rel, man.SchemaVersion, q)
				}
				var minR, maxR, minE, maxE, rows int64
				var mine []envelope.Envelope
				for _, e := range envs {
					if e.Kind != md.Diff || e.Symbol != sym {
						continue
					}
					mine = append(mine, e)
					ev := e.EventMs * 1e6
					if rows == 0 {
						minR, maxR, minE, maxE = e.ReceivedNs, e.ReceivedNs, ev, ev
					}
					minR, maxR, minE, maxE = min(minR, e.ReceivedNs), max(maxR, e.ReceivedNs), min(minE, ev), max(maxE, ev)
					rows++
				}
				us := func(ns int64) string { return manifest.FormatTime(ns / 1000 * 1000) }
				if q.Rows != rows || q.FirstReceivedTime != us(minR) || q.LastReceivedTime != us(maxR) ||
					q.FirstEventTime != manifest.FormatTime(minE) || q.LastEventTime != manifest.FormatTime(maxE) {
					t.Errorf("%s: rows %d, received %s..%s, event %s..%s; want %d, %s..%s, %s..%s", sym, q.Rows,
						q.FirstReceivedTime, q.LastReceivedTime, q.FirstEventTime, q.LastEventTime,
						rows, us(minR), us(maxR), manifest.FormatTime(minE), manifest.FormatTime(maxE))
				}
				snapsAll := append(append([]envelope.Envelope(nil), mine...), snapsOf(envs, sym)...)
				snaps, bridged, firstNs := bridgeOracle(snapsAll, tc.m, sym)
				if snaps == 0 {
					t.Fatalf("%s: the recording has no snapshot of %s", tc.rec, sym)
				}
				b := q.Bridge
				if b.Snapshots != snaps || b.Bridged != bridged || b.FirstBridgeTime != manifest.FormatTime(firstNs) {
					t.Errorf("%s: bridge %+v, want %d snapshots, %d bridged, first %s", sym, b, snaps, bridged, manifest.FormatTime(firstNs))
				}
				if sym != tc.sym {
					if q.GapCount != 0 || q.GapMs != 0 || !b.Restorable || b.Bridged == 0 {
						t.Errorf("%s: quality %+v bridge %+v, want no gap and restorable", sym, q, b)
					}
					continue
				}
				// The gap: from the row before the dropped diffs to the row after.
				before, after := symDiffs[tc.drop-1].ReceivedNs, symDiffs[tc.drop].ReceivedNs
				wantMs := (after - before) / 1e6
				if q.GapCount != 1 || q.UntimedGaps != 0 || q.GapMs != wantMs || q.GapShare != float64(after-before)/float64(24*time.Hour) {
					t.Errorf("%s: gaps %d (%d untimed), %d ms, share %v; want 1 gap of %d ms", sym, q.GapCount, q.UntimedGaps, q.GapMs, q.GapShare, wantMs)
				}
				if b.GapsRestored != tc.gapRestored || b.Restorable != tc.restorable {
					t.Errorf("%s: bridge %+v, want %d gaps restored, restorable %v", sym, b, tc.gapRestored, tc.restorable)
				}
				if tc.snapInGap && b.Bridged != b.Snapshots-1 {
					t.Errorf("%s: the snapshot inside the gap bridged: %+v", sym, b)
				}
			}
		})
	}
}

func snapsOf(envs []envelope.Envelope, sym string) []envelope.Envelope {
	var out []envelope.Envelope
	for _, e := range envs {
		if e.Kind == md.Snapshot && e.Symbol == sym {
			out = append(out, e)
		}
	}
	return out
}

// TestSnapshotBeforeChain proves the pending path's edge cases on a
// synthetic spot stream: a snapshot older than the first diff (decided
// not bridged by that diff), one a later diff bridges, and one whose
// bridge id falls in a gap that a replica's fill then closes (bridged by
// the fill).
func TestSnapshotBeforeChain(t *testing.T) {
	dir := t.TempDir()
	c := dayCore(t, dir, &fakeSink{})
	ctx := context.Background()
	sym := "ABCUSDT"
	var seq uint64
	put := func(e envelope.Envelope) {
		t.Helper()
		seq++
		if err := c.Handle(ctx, Msg{Seq: seq, Subject: testrec.Subject(&e), Data: e.AppendMarshal(nil), StoreNs: e.ReceivedNs}); err != nil {
			t.Fatal(err)
		}
	}
	diff := func(U, u int64, recv int64) envelope.Envelope {
		p := fmt.Sprintf(`{"e":"depthUpdate","E":%d,"s":"%s","U":%d,"u":%d,"b":[["1.5","2"]],"a":[]}`, recv/1e6, sym, U, u)
		return envelope.Envelope{Market: md.Spot, Kind: md.Diff, Symbol: sym, ReceivedNs: recv, Source: "a", Payload: []byte(p),
			FirstID: U, FinalID: u, EventMs: recv / 1e6, Has: envelope.HasFirst | envelope.HasFinal}
	}
	ms := int64(time.Millisecond)
	put(snapEnv(md.Spot, sym, 5, t0))        // older than the first diff: not bridged
	put(snapEnv(md.Spot, sym, 12, t0+1*ms))  // bridged by [11, 14]
	put(diff(10, 10, t0+10*ms))              // starts the chain
	put(diff(11, 14, t0+20*ms))              // bridges 12 (13 in [11,14])
	put(snapEnv(md.Spot, sym, 16, t0+25*ms)) // 17 lies in the gap below
	put(diff(20, 21, t0+30*ms))              // gap (14, 19]
	put(diff(15, 19, t0+40*ms))              // fill from a replica: bridges 16
	if err := c.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	rel := "spot/diff_orderbooks/ABCUSDT/" + time.Unix(0, t0).UTC().Format(time.DateOnly) + ".parquet"
	man, err := manifest.Read(filepath.Join(dir, filepath.FromSlash(manifest.Name(rel))))
	if err != nil {
		t.Fatal(err)
	}
	b := man.Quality.Bridge
	want := manifest.Bridge{Snapshots: 3, Bridged: 2, FirstBridgeTime: manifest.FormatTime(t0 + ms), LastBridgeTime: manifest.FormatTime(t0 + 25*ms),
		GapsRestored: 0, Restorable: true}
	if man.GapCount != 0 || *b != want {
		t.Errorf("gaps %d, bridge %+v; want 0 gaps (filled), %+v", man.GapCount, *b, want)
	}
	if !strings.Contains(string(mustJSON(t, man)), `"bridge"`) {
		t.Error("bridge missing from the manifest JSON")
	}
}

func mustJSON(t *testing.T, m *manifest.Manifest) []byte {
	t.Helper()
	b, err := manifest.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnionNs(t *testing.T) {
	for _, tc := range []struct {
		in   [][2]int64
		want int64
	}{
		{nil, 0},
		{[][2]int64{{0, 10}}, 10},
		{[][2]int64{{20, 30}, {0, 10}}, 20},
		{[][2]int64{{0, 10}, {5, 15}}, 15},
		{[][2]int64{{0, 10}, {2, 3}, {10, 12}}, 12},
	} {
		if got := unionNs(tc.in); got != tc.want {
			t.Errorf("unionNs(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
