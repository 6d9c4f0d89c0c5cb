package quality_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality/qualitytest"
)

// TestVerifyChecksOnRecordedDiffs proves the snapshot and partial checks
// on real diff streams (the recordings have one snapshot per symbol and no
// partial stream). A reference book (maps, textbook rules, built from the
// recorded frames only) produces REST snapshots and @depth20 partial frames
// at chosen update ids, inserted into the recording at chosen receive
// times: behind the stream (the book has moved on: compared through the
// undo log), ahead of it (held until the stream gets there), inside an
// event (a "straddle": the state at that id is half of the event, so the
// comparison is made after the event with the event applied to the frame),
// shallower than the base, deeper than the base with levels the book
// cannot know, and one with a changed level. The augmented recording goes
// through the real importer and writer; verify must match every frame but
// the altered ones, and name the altered level.
func TestVerifyChecksOnRecordedDiffs(t *testing.T) {
	for _, tc := range []struct {
		market md.Market
		file   string
	}{
		{md.Spot, "spot_ethusdt_2024-08-08T2354.rec.gz"},
		{md.Futures, "futures_ethusdt_2024-08-08T2354.rec.gz"},
	} {
		t.Run(tc.market.String(), func(t *testing.T) {
			lines := qualitytest.DepthLines(qualitytest.ReadLines(t, qualitytest.Recording(tc.file)))
			// Events the checks are taken at (indexes into the applied
			// events).
			at := map[string]int{"behind": 300, "ahead": 600, "straddle": 900, "straddleAhead": 1200,
				"shallow": 1500, "deep": 1800, "altered": 2100}
			partialEvery := 97
			keep := func(k int) bool {
				for _, v := range at {
					if k == v || k == v+1 || k == v+2 || k == v+3 {
						return true
					}
				}
				return k > 0 && k%partialEvery == 0
			}
			symbol, evs := qualitytest.Follow(t, tc.market, "", lines, keep)
			if len(evs) < 2200 {
				t.Fatalf("%d events applied", len(evs))
			}
			// Straddles need an event with more than one update id.
			for _, name := range []string{"straddle", "straddleAhead"} {
				for evs[at[name]].Frame.U == evs[at[name]].Frame.Final {
					at[name]++
				}
			}
			var added []qualitytest.Line
			snap := func(name string, recv int64, last int64, bids, asks [][2]string, e int64) {
				added = append(added, qualitytest.Line{RecvNs: recv, JSON: qualitytest.SnapshotFrame(tc.market, symbol, last, bids, asks, e)})
			}
			// behind: the state after event k, received with event k+3.
			k := at["behind"]
			b, a := evs[k].After.Top(1000)
			snap("behind", evs[k+3].Recv+1, evs[k].Frame.Final, b, a, evs[k].Frame.E)
			// ahead: received with event k-2, two events before the
			// stream reaches it.
			k = at["ahead"]
			b, a = evs[k].After.Top(1000)
			snap("ahead", evs[k-2].Recv+1, evs[k].Frame.Final, b, a, evs[k].Frame.E)
			// straddle: the id is the event's first id; the state is the
			// book before it with half of the event's bid levels.
			straddle := func(k int) (int64, [][2]string, [][2]string) {
				half := evs[k].Prev.Clone()
				f := evs[k].Frame
				f.Bids, f.Asks = f.Bids[:len(f.Bids)/2], nil
				half.Apply(t, f)
				b, a := half.Top(1000)
				return evs[k].Frame.U, b, a
			}
			k = at["straddle"]
			id, b, a := straddle(k)
			snap("straddle", evs[k+1].Recv+1, id, b, a, evs[k].Frame.E)
			k = at["straddleAhead"]
			id, b, a = straddle(k)
			snap("straddleAhead", evs[k-1].Recv+1, id, b, a, evs[k].Frame.E)
			// shallow: 50 levels, behind by one event.
			k = at["shallow"]
			b, a = evs[k].After.Top(50)
			snap("shallow", evs[k+1].Recv+1, evs[k].Frame.Final, b, a, evs[k].Frame.E)
			// deep: every level of the book plus bids below everything the
			// base snapshot covered, which the book cannot know.
			k = at["deep"]
			b, a = evs[k].After.Top(0)
			worst, _ := strconv.ParseFloat(b[len(b)-1][0], 64)
			for i := 1; i <= 5; i++ {
				b = append(b, [2]string{strconv.FormatFloat(worst-float64(i), 'f', 2, 64), "7.0"})
			}
			deepBids := len(b)
			snap("deep", evs[k+2].Recv+1, evs[k].Frame.Final, b, a, evs[k].Frame.E)
			// altered: the third bid's quantity differs.
			k = at["altered"]
			b, a = evs[k].After.Top(1000)
			b[2] = [2]string{b[2][0], "123.456"}
			wantDiff := fmt.Sprintf("bid %s: book %s, snapshot 123.456", trimNum(b[2][0]), trimNum(evs[k].After.Bids[mustFloat(t, b[2][0])][1]))
			snap("altered", evs[k+1].Recv+1, evs[k].Frame.Final, b, a, evs[k].Frame.E)

			// Partial frames every partialEvery events, at the event's
			// receive time or two events later; one altered.
			partials, alteredPartial := 0, 0
			day := time.Unix(0, evs[0].Recv).UTC().Format(time.DateOnly)
			for k := partialEvery; k+3 < len(evs); k += partialEvery {
				if time.Unix(0, evs[k+2].Recv).UTC().Format(time.DateOnly) != day {
					break // verify checks the first day
				}
				f := evs[k].Frame
				b, a := evs[k].After.Top(20)
				recv := evs[k].Recv + 1
				if (k/partialEvery)%2 == 0 {
					recv = evs[k+2].Recv + 1
				}
				if alteredPartial == 0 && k > len(evs)/2 {
					alteredPartial = k
					a[0] = [2]string{a[0][0], "0.001"}
				}
				added = append(added, qualitytest.Line{RecvNs: recv, JSON: qualitytest.PartialFrame(tc.market, symbol, f.U, f.Final, f.PU, b, a, f.E)})
				partials++
			}
			// One spot partial inside an event (its lastUpdateId is the
			// event's first id).
			straddledPartials := 0
			if tc.market == md.Spot {
				k := at["straddle"]
				id, b, a := straddle(k)
				added = append(added, qualitytest.Line{RecvNs: evs[k].Recv + 1, JSON: qualitytest.PartialFrame(tc.market, symbol, 0, id, 0, b[:20], a[:20], 0)})
				partials++
				straddledPartials = 1
			}

			dir := t.TempDir()
			rec := filepath.Join(dir, filepath.Base(tc.file))
			qualitytest.WriteLines(t, rec, append(append([]qualitytest.Line(nil), lines...), added...))
			data := filepath.Join(dir, "data")
			qualitytest.Import(t, data, rec)
			rep, err := quality.Verify(context.Background(), dataset.Local(data), quality.Options{Market: tc.market, Symbol: symbol, Date: time.Unix(0, evs[0].Recv)})
			if err != nil {
				t.Fatal(err)
			}
			s, p := rep.Snapshots, rep.Partials
			if s.Rows != 8 || s.Loaded != 1 || s.Compared != 7 || s.Matched != 6 || s.Mismatched != 1 || len(s.Skipped) != 0 {
				t.Fatalf("snapshots: %+v", s)
			}
			byID := map[int64]quality.SnapshotCheck{}
			for _, c := range s.Checks {
				byID[c.LastUpdateID] = c
			}
			for name, k := range at {
				id := evs[k].Frame.Final
				if strings.HasPrefix(name, "straddle") {
					id = evs[k].Frame.U
				}
				c, ok := byID[id]
				switch {
				case !ok:
					t.Errorf("%s: snapshot %d not checked", name, id)
				case name == "altered":
					if c.Match || c.Diffs != 1 || c.FirstDiff != wantDiff {
						t.Errorf("altered: %+v, want one diff %q", c, wantDiff)
					}
				case !c.Match:
					t.Errorf("%s: %+v", name, c)
				case strings.HasPrefix(name, "straddle") != c.Straddle || c.BookID != evs[k].Frame.Final:
					t.Errorf("%s: straddle %v, book at %d, want %d", name, c.Straddle, c.BookID, evs[k].Frame.Final)
				case name == "shallow" && (c.BidLevels != 50 || c.AskLevels != 50):
					t.Errorf("shallow: compared %d/%d levels, want 50/50", c.BidLevels, c.AskLevels)
				case name == "deep" && c.BidLevels >= deepBids-5:
					t.Errorf("deep: compared %d of %d bids: the levels beyond the base were compared", c.BidLevels, deepBids)
				}
			}
			if p.Rows != int64(partials) || p.Compared != int64(partials) || p.Mismatched != 1 || p.Straddled != int64(straddledPartials) || len(p.Skipped) != 0 {
				t.Fatalf("partials: %+v (want %d rows, all compared, 1 mismatch, %d inside an event)", p, partials, straddledPartials)
			}
			if m := p.Mismatches[0]; m.ID != evs[alteredPartial].Frame.Final || !strings.HasPrefix(m.FirstDiff, "ask ") {
				t.Errorf("partial mismatch %+v, want at %d on the best ask", m, evs[alteredPartial].Frame.Final)
			}
			want := []string{"1 snapshot mismatches", "1 partial mismatches"}
			if fmt.Sprint(rep.Problems) != fmt.Sprint(want) || len(rep.Gaps) != 0 {
				t.Errorf("problems %v, want %v; gaps %v", rep.Problems, want, rep.Gaps)
			}
			t.Logf("%s: %d snapshots compared (%d straddled), %d partials compared; deep snapshot: %d of %d bids within the base's depth",
				tc.market, s.Compared, 2, p.Compared, byID[evs[at["deep"]].Frame.Final].BidLevels, deepBids)
		})
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// trimNum prints an exchange number as verify prints a float64.
func trimNum(s string) string {
	v, _ := strconv.ParseFloat(s, 64)
	return fmt.Sprint(v)
}
