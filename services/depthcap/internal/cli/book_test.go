package cli

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality/qualitytest"
)

// TestBookCommand imports the spot ETHUSDT recording (one snapshot at
// 23:54 on 2024-08-08, diffs until 00:05 the next day) and proves `depthcap
// book` prints the book a reference book (maps, textbook rules, built from
// the recorded frames) holds after the last event received by the instant:
// on the snapshot's day and after midnight (the snapshot is found on the
// day before); --tick sums levels into buckets; an instant before any
// snapshot has no book (exit 1); bad flags exit 2.
func TestBookCommand(t *testing.T) {
	rec := qualitytest.DepthOnly(t, qualitytest.Recording("spot_ethusdt_2024-08-08T2354.rec.gz"), t.TempDir())
	lines := qualitytest.ReadLines(t, rec)
	instants := []string{"2024-08-08T23:57:00.250Z", "2024-08-09T00:00:00Z", "2024-08-09T00:03:30.5Z"}
	// The last event received by each instant, then the reference book
	// after it.
	_, evs := qualitytest.Follow(t, md.Spot, "ETHUSDT", lines, func(int) bool { return false })
	last := map[string]int{}
	keep := map[int]bool{}
	for _, at := range instants {
		ts, _ := time.Parse(time.RFC3339Nano, at)
		last[at] = -1
		for i, e := range evs {
			if e.Recv/1000 <= ts.UnixMicro() {
				last[at] = i
			}
		}
		keep[last[at]] = true
	}
	_, evs = qualitytest.Follow(t, md.Spot, "ETHUSDT", lines, func(k int) bool { return keep[k] })
	data := t.TempDir()
	qualitytest.Import(t, data, rec)

	for _, at := range instants {
		ts, _ := time.Parse(time.RFC3339Nano, at)
		k := last[at]
		if k <= 0 {
			t.Fatalf("no event before %s", at)
		}
		code, out, errOut := run("book", "--market", "spot", "--symbol", "ethusdt", "--at", at, "--depth", "20", "--data", data, "--json")
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", at, code, errOut)
		}
		var bs quality.BookState
		if err := json.Unmarshal([]byte(out), &bs); err != nil {
			t.Fatal(err)
		}
		if bs.UpdateID != evs[k].Frame.Final || bs.State != "live" || len(bs.Bids) != 20 || len(bs.Asks) != 20 {
			t.Fatalf("%s: book at %d (%s), %d/%d levels; want %d", at, bs.UpdateID, bs.State, len(bs.Bids), len(bs.Asks), evs[k].Frame.Final)
		}
		wb, wa := evs[k].After.Top(20)
		for i := range 20 {
			for _, c := range []struct {
				got  quality.Level
				want [2]string
			}{{bs.Bids[i], wb[i]}, {bs.Asks[i], wa[i]}} {
				p, _ := strconv.ParseFloat(c.want[0], 64)
				q, _ := strconv.ParseFloat(c.want[1], 64)
				if c.got.Price != p || c.got.Qty != q {
					t.Fatalf("%s level %d: %v, want %v", at, i, c.got, c.want)
				}
			}
		}
		if !bs.SnapshotTime.Before(ts) {
			t.Errorf("%s: snapshot at %s", at, bs.SnapshotTime)
		}
	}

	// Buckets of 1 USD: the best bid bucket holds the sum of the bids
	// from its floor up.
	at := "2024-08-09T00:00:00Z"
	code, out, _ := run("book", "--market", "spot", "--symbol", "ETHUSDT", "--at", at, "--depth", "3", "--tick", "1", "--data", data, "--json")
	var agg quality.BookState
	if code != ExitOK || json.Unmarshal([]byte(out), &agg) != nil || len(agg.Bids) != 3 {
		t.Fatalf("tick: exit %d %s", code, out)
	}
	_, full, _ := run("book", "--market", "spot", "--symbol", "ETHUSDT", "--at", at, "--depth", "0", "--data", data, "--json")
	var all quality.BookState
	if err := json.Unmarshal([]byte(full), &all); err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, l := range all.Bids {
		if l.Price >= agg.Bids[0].Price {
			sum += l.Qty
		}
	}
	if d := sum - agg.Bids[0].Qty; d > 1e-9 || d < -1e-9 || agg.Bids[0].Price != float64(int(all.Bids[0].Price)) {
		t.Errorf("best bid bucket %v, want %v at %v", agg.Bids[0], sum, float64(int(all.Bids[0].Price)))
	}

	// The table form.
	code, text, _ := run("book", "--market", "spot", "--symbol", "ETHUSDT", "--at", at, "--depth", "2", "--data", data)
	if code != ExitOK || !strings.Contains(text, "BID QTY") || !strings.Contains(text, "update id "+strconv.FormatInt(all.UpdateID, 10)) {
		t.Errorf("table: exit %d\n%s", code, text)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--at", "2024-08-08T23:50:00Z"}, ExitFound, "no book at this instant"},
		{[]string{"--at", "yesterday"}, ExitUsage, "--at"},
		{[]string{"--at", at, "--depth", "-1"}, ExitUsage, "--depth"},
		{[]string{"--at", at, "--tick", "-5"}, ExitUsage, "--tick"},
	} {
		args := append([]string{"book", "--market", "spot", "--symbol", "ETHUSDT", "--data", data}, tc.args...)
		code, _, errOut := run(args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d (want %d), stderr %q", tc.args, code, tc.code, errOut)
		}
	}
}
