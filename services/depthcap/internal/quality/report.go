package quality

import (
	"time"

	"github.com/depthcap/depthcap/pkg/book"
	"github.com/depthcap/depthcap/pkg/manifest"
)

// Report is what Verify found in one symbol-day. It is the JSON of
// `depthcap verify --json` (docs/QUALITY.md documents every field).
type Report struct {
	Market string `json:"market"`
	Symbol string `json:"symbol"`
	Date   string `json:"date"`
	Source string `json:"source"`
	// Verdict is "clean" when Problems is empty, else "problems".
	Verdict  string   `json:"verdict"`
	Problems []string `json:"problems"`

	Files     []FileSummary `json:"files"`
	Merge     string        `json:"merge"`
	Events    Events        `json:"events"`
	Book      BookSummary   `json:"book"`
	GapCount  int64         `json:"gap_count"` // all gaps; Gaps lists the first 1000
	Gaps      []Gap         `json:"gaps"`
	Snapshots Snapshots     `json:"snapshots"`
	Partials  Partials      `json:"partials"`
	Crossed   []Crossing    `json:"crossed"`
	Desyncs   []Desync      `json:"desyncs"`
	Anomalies Anomalies     `json:"anomalies"`
}

// Clean reports whether nothing was found.
func (r *Report) Clean() bool { return len(r.Problems) == 0 }

// FileSummary describes one file of the day.
type FileSummary struct {
	Path           string `json:"path"`
	Kind           string `json:"kind"`
	Supplement     int    `json:"supplement"`
	Rows           int64  `json:"rows"`
	FirstStreamSeq uint64 `json:"first_stream_seq"`
	LastStreamSeq  uint64 `json:"last_stream_seq"`
	ManifestGaps   int    `json:"manifest_gaps"`
	Manifest       string `json:"manifest"` // "ok", "missing" or the read error
	// WriterQuality is the writer's quality summary from the manifest
	// (SCHEMA.md, "Quality summary"), as the writer computed it at seal;
	// absent for manifests written before it existed (version 1).
	WriterQuality *manifest.Quality `json:"writer_quality,omitempty"`
}

// Events counts the day's rows per kind and their receive-time span.
type Events struct {
	Diff      int64      `json:"diff"`
	Partial   int64      `json:"partial"`
	Snapshot  int64      `json:"snapshot"`
	FirstTime *time.Time `json:"first_time,omitempty"`
	LastTime  *time.Time `json:"last_time,omitempty"`
}

// BookSummary says how much of the day the rebuilt book covered.
type BookSummary struct {
	// WarmUp is how the book entered the day: from the previous day's last
	// snapshot and the diffs after it, or "none".
	WarmUp      string     `json:"warm_up"`
	LiveAtStart bool       `json:"live_at_start"`
	FirstLive   *time.Time `json:"first_live,omitempty"`
	// DiffRowsLive is the number of the day's diff rows applied to a live
	// book; the others arrived before a first snapshot or between a gap and
	// the restore.
	DiffRowsLive int64   `json:"diff_rows_live"`
	LiveShare    float64 `json:"live_share"`
	LastID       int64   `json:"last_update_id"`
	State        string  `json:"state_at_end"`
}

// Gap is a run of missing events.
type Gap struct {
	Kind         string     `json:"kind"` // diff, partial or snapshot
	AfterID      int64      `json:"after_id"`
	ResumePrevID int64      `json:"resume_prev_id"`
	AfterTime    *time.Time `json:"after_time,omitempty"`
	ResumeTime   *time.Time `json:"resume_time,omitempty"`
	DurationMs   *float64   `json:"duration_ms,omitempty"`
	// MissingIDs is resume_prev_id - after_id on spot, whose ids are
	// consecutive; absent on USD-M.
	MissingIDs *int64 `json:"missing_ids,omitempty"`
	// Source says who saw it: "chain" (the rows), "manifest", or both.
	Source   string   `json:"source"`
	Reasons  []string `json:"reasons"`
	Manifest string   `json:"manifest,omitempty"`
	// FilledLate counts events of the hole that were found in the rows
	// later than the reorder window (stream order far from chain order).
	FilledLate int64 `json:"filled_late,omitempty"`
	// ResumeRow is where the first row after the gap is (chain gaps).
	ResumeRow *RowRef `json:"resume_row,omitempty"`

	RestoredTime       *time.Time `json:"restored_time,omitempty"`
	RestoredBySnapshot int64      `json:"restored_by_snapshot,omitempty"`
	TimeToRestoreMs    *float64   `json:"time_to_restore_ms,omitempty"`
	VerifiedTime       *time.Time `json:"verified_time,omitempty"`
	TimeToVerifiedMs   *float64   `json:"time_to_verified_ms,omitempty"`
}

// RowRef is a row of a file: its path relative to the data root and its
// row number (from 0).
type RowRef struct {
	File string `json:"file"`
	Row  int64  `json:"row"`
}

// Snapshots is what the REST snapshots showed.
type Snapshots struct {
	Rows       int64            `json:"rows"`
	Loaded     int64            `json:"loaded"` // used as the book's base (first, or after a gap)
	Compared   int64            `json:"compared"`
	Matched    int64            `json:"matched"`
	Mismatched int64            `json:"mismatched"`
	Skipped    map[string]int64 `json:"skipped"`
	Checks     []SnapshotCheck  `json:"checks"`
	Restores   []Restore        `json:"loads"`
}

// SnapshotCheck is one comparison of a snapshot with the rebuilt book.
type SnapshotCheck struct {
	Time         time.Time `json:"time"`
	LastUpdateID int64     `json:"last_update_id"`
	BookID       int64     `json:"book_update_id"`
	Straddle     bool      `json:"straddle"`
	BaseID       int64     `json:"base_snapshot"`
	BidLevels    int       `json:"bid_levels"`
	AskLevels    int       `json:"ask_levels"`
	Match        bool      `json:"match"`
	Diffs        int       `json:"diffs"`
	FirstDiff    string    `json:"first_diff,omitempty"`
}

// Restore is a snapshot loaded as the book's base.
type Restore struct {
	Time         time.Time `json:"time"`
	LastUpdateID int64     `json:"last_update_id"`
	State        string    `json:"state"` // live, bridging or need-snapshot
	Error        string    `json:"error,omitempty"`
}

// Partials is what the partial depth frames showed.
type Partials struct {
	Rows       int64            `json:"rows"`
	Compared   int64            `json:"compared"`
	Straddled  int64            `json:"straddled"`
	Matched    int64            `json:"matched"`
	Mismatched int64            `json:"mismatched"`
	Skipped    map[string]int64 `json:"skipped"`
	Mismatches []PartialCheck   `json:"mismatches"`
}

// PartialCheck is a partial frame that differs from the book.
type PartialCheck struct {
	Time      time.Time `json:"time"`
	ID        int64     `json:"id"`
	BookID    int64     `json:"book_update_id"`
	Straddle  bool      `json:"straddle"`
	Diffs     int       `json:"diffs"`
	FirstDiff string    `json:"first_diff"`
}

// Crossing is a run of events that left the book crossed.
type Crossing struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	StartID int64     `json:"start_id"`
	EndID   int64     `json:"end_id"`
	Events  int       `json:"events"`
	Bid     Level     `json:"bid"`
	Ask     Level     `json:"ask"`
}

// Level is a price level in reports.
type Level struct {
	Price float64 `json:"price"`
	Qty   float64 `json:"qty"`
}

func levelOf(l book.Level) Level { return Level{Price: l.Price, Qty: l.Qty} }

// Desync is a loss of the live book that is not a gap in the chain.
type Desync struct {
	Time         time.Time  `json:"time"`
	ID           int64      `json:"id"`
	Cause        string     `json:"cause"`
	RestoredTime *time.Time `json:"restored_time,omitempty"`
}

// Anomalies are rows that should not be in the files.
type Anomalies struct {
	DuplicateRows int64    `json:"duplicate_rows"`
	OverlapRows   int64    `json:"overlap_rows"`
	LateFills     int64    `json:"late_fills"`
	Resets        int64    `json:"resets"`
	InvalidRows   int64    `json:"invalid_rows"`
	Invalid       []string `json:"invalid,omitempty"`
	Covered       int      `json:"covered_reports"` // collector gap reports another replica filled (manifests)
}

func usTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

func usTimePtr(us int64) *time.Time {
	if us == 0 {
		return nil
	}
	t := usTime(us)
	return &t
}

func msPtr(d time.Duration) *float64 {
	v := float64(d) / float64(time.Millisecond)
	return &v
}
