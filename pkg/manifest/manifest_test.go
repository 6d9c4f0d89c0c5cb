package manifest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// v1 is a manifest as writers before the quality summary wrote it
// (SCHEMA.md's example).
const v1 = `{
  "schema_version": 1,
  "file": "spot/diff_orderbooks/NKNUSDT/2021-10-12.parquet",
  "market": "spot", "kind": "diff", "symbol": "NKNUSDT",
  "period_start": "2021-10-12T00:00:00Z", "period_seconds": 86400,
  "supplement": 0, "rows": 51,
  "first_stream_seq": 1, "last_stream_seq": 183,
  "first_update_id": 499869750, "last_update_id": 499870810,
  "sequence_checked": true,
  "gap_count": 1,
  "gaps": [
    {
      "after_id": 499869857, "resume_prev_id": 499869870,
      "after_received_time": "2021-10-12T00:28:33.166Z",
      "resume_received_time": "2021-10-12T00:28:33.366Z",
      "detected_by": "writer",
      "reports": [
        {"source": "tokyo-1", "reason": "sequence", "after_id": 499869857,
         "resume_prev_id": 499869870, "frames_lost": 0}
      ]
    }
  ],
  "covered": [
    {"source": "frankfurt-2", "reason": "disconnect", "after_id": 499870100,
     "resume_prev_id": 499870180, "frames_lost": 0}
  ],
  "resets": []
}`

// Proves: a version 1 manifest (no quality) still parses, with every
// field it has and a nil Quality.
func TestParseV1(t *testing.T) {
	m, err := Parse([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 1 || m.Rows != 51 || m.GapCount != 1 || len(m.Gaps) != 1 || len(m.Covered) != 1 || m.Resets == nil {
		t.Fatalf("parsed %+v", m)
	}
	g := m.Gaps[0]
	if g.AfterID != 499869857 || g.ResumePrevID != 499869870 || g.DetectedBy != "writer" || len(g.Reports) != 1 || g.Reports[0].Source != "tokyo-1" {
		t.Errorf("gap %+v", g)
	}
	if d := ParseTime(g.ResumeReceivedTime).Sub(ParseTime(g.AfterReceivedTime)); d.Milliseconds() != 200 {
		t.Errorf("gap duration %v, want 200ms", d)
	}
	if m.Quality != nil {
		t.Errorf("version 1 quality = %+v, want nil", m.Quality)
	}
}

// Proves: Marshal then Parse gives the same manifest back (quality and
// bridge included), and Marshal is deterministic.
func TestRoundTrip(t *testing.T) {
	in := &Manifest{
		SchemaVersion: Version, File: "futures/diff_orderbooks/ETHUSDT/2024-08-08.parquet", Market: "futures", Kind: "diff",
		Symbol: "ETHUSDT", PeriodStart: "2024-08-08T00:00:00Z", PeriodSeconds: 86400, Supplement: 2, Rows: 10,
		FirstStreamSeq: 3, LastStreamSeq: 40, FirstUpdateID: 100, LastUpdateID: 200, SequenceChecked: true, GapCount: 1,
		Gaps: []GapEntry{{AfterID: 110, ResumePrevID: 120, AfterReceivedTime: FormatTime(1e18), ResumeReceivedTime: FormatTime(1e18 + 5e8),
			DetectedBy: "writer", Reports: []ReportEntry{{Source: "a", Reason: "disconnect", AfterID: 110, ResumePrevID: 120, FramesLost: 3}}}},
		Covered: []ReportEntry{}, Resets: []ResetEntry{{PreviousLastID: 9, NewID: 1, ReceivedTime: FormatTime(2e18)}},
		Quality: &Quality{Rows: 10, FirstReceivedTime: FormatTime(1e18), LastReceivedTime: FormatTime(1e18 + 1e9),
			FirstEventTime: FormatTime(1e18 - 1e6), LastEventTime: FormatTime(1e18 + 9e8), GapCount: 1, GapMs: 500, GapShare: 500.0 / 86400000,
			CoveredReports: 0, Resets: 1, Bridge: &Bridge{Snapshots: 2, Bridged: 1, FirstBridgeTime: FormatTime(1e18 + 7e8),
				LastBridgeTime: FormatTime(1e18 + 7e8), GapsRestored: 1, Restorable: true}},
	}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := Marshal(in)
	if !bytes.Equal(b, b2) || b[len(b)-1] != '\n' {
		t.Fatal("Marshal not deterministic or no final newline")
	}
	p := filepath.Join(t.TempDir(), Name("2024-08-08.late2.parquet"))
	if filepath.Base(p) != "2024-08-08.late2.gaps.json" {
		t.Fatalf("Name = %s", filepath.Base(p))
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n in %+v\nout %+v", in, out)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		wantErr error
	}{
		{"not json", "{", ErrSyntax},
		{"array", "[]", ErrSyntax},
		{"wrong type", `{"schema_version": 1, "rows": "x"}`, ErrSyntax},
		{"no version", `{"rows": 1}`, ErrVersion},
		{"newer version", `{"schema_version": 3}`, ErrVersion},
		{"current version", `{"schema_version": 2, "quality": {"rows": 4}}`, nil},
		{"unknown field", `{"schema_version": 1, "later": true}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Parse(%s) error %v, want %v", tc.in, err, tc.wantErr)
			}
		})
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing.gaps.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read missing: %v, want fs.ErrNotExist", err)
	}
}
