package writer_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
)

// TestDayRollover proves the daily partitioning on real data: the spot and
// USD-M ETHUSDT recordings that cross UTC midnight 2024-08-08/09 are
// written with their recorded receive times into one file per UTC day of
// receive time (every row on the right side of midnight), both days are
// sealed by Finish, the gap manifests are empty (the recordings' chains
// are intact) and every depth frame is one row with exact values.
func TestDayRollover(t *testing.T) {
	envs := dataset(t, 1, "spot_ethusdt_2024-08-08T2354.rec.gz", "futures_ethusdt_2024-08-08T2354.rec.gz")
	h := newHarness(t)
	h.publish(envs, false)
	dir := t.TempDir()
	h.finish(testConfig(dir, h.url))

	midnight := time.Date(2024, 8, 9, 0, 0, 0, 0, time.UTC).UnixNano()
	want := map[string][]Row{}
	for i := range envs {
		e := &envs[i]
		day := "2024-08-08"
		if e.ReceivedNs >= midnight {
			day = "2024-08-09"
		}
		rel := e.Market.String() + "/" + e.Kind.Dir() + "/" + e.Symbol + "/" + day + ".parquet"
		want[rel] = append(want[rel], expectedRow(t, e))
	}
	for _, rel := range []string{"spot/diff_orderbooks/ETHUSDT/2024-08-08.parquet", "spot/diff_orderbooks/ETHUSDT/2024-08-09.parquet"} {
		if len(want[rel]) == 0 {
			t.Fatalf("test data: no rows for %s", rel)
		}
	}
	files := parquetFiles(t, dir)
	if len(files) != len(want) {
		t.Errorf("files %v, want %d", files, len(want))
	}
	for rel, w := range want {
		got, kv := readRows(t, filepath.Join(dir, rel))
		if len(got) != len(w) {
			t.Fatalf("%s: %d rows, want %d", rel, len(got), len(w))
		}
		for i := range w {
			if d := diffRow(got[i], w[i]); d != "" {
				t.Fatalf("%s row %d:\n%s", rel, i, d)
			}
		}
		m := readManifest(t, filepath.Join(dir, rel[:len(rel)-len(".parquet")]+".gaps.json"))
		if m.GapCount != 0 || len(m.Gaps) != 0 || kv["depthcap.gap_count"] != "0" {
			t.Errorf("%s: gaps %+v", rel, m.Gaps)
		}
		if m.SequenceChecked != (m.Kind == md.Diff.String()) {
			t.Errorf("%s: sequence_checked %v", rel, m.SequenceChecked)
		}
		if kv["depthcap.period_seconds"] != "86400" {
			t.Errorf("%s: period_seconds %s", rel, kv["depthcap.period_seconds"])
		}
	}
}
