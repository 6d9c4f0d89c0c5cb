// Package manifest is the sealed-file manifest: the JSON file
// <name>.gaps.json that the writer puts beside every Parquet file it seals
// and the uploader uploads beside it (SCHEMA.md, "Gap manifests"). The
// writer encodes it, readers (depthcap verify) parse it with Parse or
// Read.
//
// Compatibility: fields are only ever added. A manifest of an older
// version parses (the fields it lacks stay zero: a version 1 manifest has
// no Quality); a manifest of a newer version than Version is refused with
// ErrVersion, because its meaning may have changed.
package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Version is the manifest format this package writes (schema_version).
//
//   - 1: gaps, covered reports, resets.
//   - 2: adds the quality summary (Quality).
const Version = 2

// Suffix is the file name suffix of a manifest; the manifest of
// X.parquet is X.gaps.json.
const Suffix = ".gaps.json"

// Errors of Parse and Read; test with errors.Is.
var (
	// ErrSyntax: the bytes are not a manifest JSON object.
	ErrSyntax = errors.New("manifest: invalid JSON")
	// ErrVersion: schema_version is missing (0) or newer than Version.
	ErrVersion = errors.New("manifest: unsupported schema_version")
)

// Manifest is the manifest of one sealed file.
type Manifest struct {
	SchemaVersion   int           `json:"schema_version"`
	File            string        `json:"file"` // path of the Parquet file relative to DATA_DIR
	Market          string        `json:"market"`
	Kind            string        `json:"kind"`
	Symbol          string        `json:"symbol"`
	PeriodStart     string        `json:"period_start"` // RFC 3339 UTC
	PeriodSeconds   int64         `json:"period_seconds"`
	Supplement      int           `json:"supplement"`
	Rows            int64         `json:"rows"`
	FirstStreamSeq  uint64        `json:"first_stream_seq"`
	LastStreamSeq   uint64        `json:"last_stream_seq"`
	FirstUpdateID   int64         `json:"first_update_id"`
	LastUpdateID    int64         `json:"last_update_id"`
	SequenceChecked bool          `json:"sequence_checked"`
	GapCount        int           `json:"gap_count"`
	Gaps            []GapEntry    `json:"gaps"`
	Covered         []ReportEntry `json:"covered"`
	Resets          []ResetEntry  `json:"resets"`
	// Quality is the writer's summary of the file (version 2; nil in
	// version 1 manifests).
	Quality *Quality `json:"quality,omitempty"`
}

// GapEntry is a gap: the events with after_id < u <= resume_prev_id are
// missing.
type GapEntry struct {
	AfterID            int64         `json:"after_id"`
	ResumePrevID       int64         `json:"resume_prev_id"`
	AfterReceivedTime  string        `json:"after_received_time,omitempty"`
	ResumeReceivedTime string        `json:"resume_received_time,omitempty"`
	DetectedBy         string        `json:"detected_by"` // "writer" (sequence check) or "collector" (unchained kinds)
	Reports            []ReportEntry `json:"reports"`
}

// ReportEntry is a collector's gap record.
type ReportEntry struct {
	Source       string `json:"source"`
	Reason       string `json:"reason"`
	AfterID      int64  `json:"after_id"`
	ResumePrevID int64  `json:"resume_prev_id"`
	StartTime    string `json:"start_time,omitempty"`
	EndTime      string `json:"end_time,omitempty"`
	FramesLost   int64  `json:"frames_lost"`
	Detail       string `json:"detail,omitempty"`
}

// ResetEntry is an exchange id restart seen in the file's rows.
type ResetEntry struct {
	PreviousLastID int64  `json:"previous_last_update_id"`
	NewID          int64  `json:"new_update_id"`
	ReceivedTime   string `json:"received_time"`
}

// Quality is the writer's quality summary of a sealed file, computed when
// it sealed the file from its rows and its sequence state (SCHEMA.md,
// "Quality summary").
type Quality struct {
	Rows int64 `json:"rows"`
	// Receive times of the rows: the earliest and the latest.
	FirstReceivedTime string `json:"first_received_time,omitempty"`
	LastReceivedTime  string `json:"last_received_time,omitempty"`
	// Exchange event times (E) of the rows, where the kind carries them
	// (absent for spot partials and spot snapshots).
	FirstEventTime string `json:"first_event_time,omitempty"`
	LastEventTime  string `json:"last_event_time,omitempty"`

	GapCount int `json:"gap_count"`
	// GapMs is the time of the file's period spent inside its gaps, in
	// milliseconds: the union of the gaps' intervals from the receive
	// time of the row before to the receive time of the row after
	// (collector gaps: the report's times), clipped to the period.
	GapMs int64 `json:"gap_ms"`
	// UntimedGaps counts gaps without both times (not in GapMs).
	UntimedGaps int `json:"untimed_gaps"`
	// GapShare is GapMs over the period's length.
	GapShare float64 `json:"gap_share"`
	// CoveredReports counts collectors' gap reports that another replica
	// filled (len(covered)).
	CoveredReports int `json:"covered_reports"`
	Resets         int `json:"resets"`

	// Bridge is the REST snapshot bridge status of a diff file (nil for
	// partial and snapshot files).
	Bridge *Bridge `json:"bridge,omitempty"`
}

// Bridge says whether the diff chain of a file can be started (and
// restarted after each gap) from the REST snapshots of the same symbol
// that the writer saw.
type Bridge struct {
	// Snapshots is the number of REST snapshots of the symbol decided
	// against this file's diff chain; Bridged of them bridged into it
	// (spot U <= lastUpdateId+1 <= u, USD-M U <= lastUpdateId <= u for a
	// diff row present in the files).
	Snapshots int64 `json:"snapshots"`
	Bridged   int64 `json:"bridged"`
	// Receive times of the first and the last bridged snapshot.
	FirstBridgeTime string `json:"first_bridge_time,omitempty"`
	LastBridgeTime  string `json:"last_bridge_time,omitempty"`
	// GapsRestored counts the file's gaps followed by a bridged snapshot
	// (lastUpdateId >= the gap's resume_prev_id) that the writer saw
	// before the seal.
	GapsRestored int `json:"gaps_restored"`
	// Restorable: at least one snapshot bridged and every gap of the file
	// is restored. From FirstBridgeTime on, a book rebuilt from the files
	// is live except between each gap and its restoring snapshot.
	Restorable bool `json:"restorable"`
}

// Parse decodes a manifest. It returns an error wrapping ErrSyntax for
// bytes that are not a manifest object and ErrVersion for an unknown
// schema_version. Unknown fields are ignored.
func Parse(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	if m.SchemaVersion < 1 || m.SchemaVersion > Version {
		return nil, fmt.Errorf("%w: %d (this reader reads 1 to %d)", ErrVersion, m.SchemaVersion, Version)
	}
	return &m, nil
}

// Read reads and parses the manifest file at path.
func Read(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return m, nil
}

// Marshal encodes m as the writer stores it: indented JSON and a final
// newline. Equal manifests give equal bytes.
func Marshal(m *Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Name is the manifest name of a Parquet file name (or path).
func Name(parquetName string) string {
	return strings.TrimSuffix(parquetName, ".parquet") + Suffix
}

// FormatTime formats a time in ns since the Unix epoch as manifests do
// (RFC 3339 with nanoseconds, UTC); "" for 0.
func FormatTime(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// ParseTime reads a manifest time; the zero time when s is empty or
// invalid.
func ParseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
