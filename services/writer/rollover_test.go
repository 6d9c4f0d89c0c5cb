package writer_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

var midnight = time.Date(2024, 8, 9, 0, 0, 0, 0, time.UTC).UnixNano()

// checkDayRollover proves the daily partitioning on real data: envelopes
// of the spot and USD-M ETHUSDT recordings (the spot one crosses UTC
// midnight 2024-08-08/09) are written with their recorded receive times into one
// file per UTC day of receive time (every row on the right side of
// midnight), both days are sealed by Finish, the gap manifests are empty
// (the recordings' chains are intact) and every depth frame is one row
// with exact values.
func checkDayRollover(t *testing.T, envs []envelope.Envelope) {
	t.Helper()
	h := newHarness(t)
	h.publish(envs, false)
	dir := t.TempDir()
	h.finish(testConfig(dir, h.url))

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

// TestDayRollover is the race-enabled scale of TestAcceptanceDayRollover:
// the ETHUSDT frames received within 15 seconds of midnight (a contiguous
// stretch of each chain, both days).
func TestDayRollover(t *testing.T) {
	var envs []envelope.Envelope
	for _, e := range dataset(t, 1, testrec.LargeRecordings()...) {
		if d := e.ReceivedNs - midnight; d > -int64(15*time.Second) && d < int64(15*time.Second) {
			envs = append(envs, e)
		}
	}
	checkDayRollover(t, envs)
}
