package dataset

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
)

// Manifest is a gap manifest (<name>.gaps.json, SCHEMA.md "Gap manifests").
type Manifest struct {
	SchemaVersion   int           `json:"schema_version"`
	File            string        `json:"file"`
	Market          string        `json:"market"`
	Kind            string        `json:"kind"`
	Symbol          string        `json:"symbol"`
	PeriodStart     string        `json:"period_start"`
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
}

// GapEntry is a gap: the events with after_id < u <= resume_prev_id are
// missing.
type GapEntry struct {
	AfterID            int64         `json:"after_id"`
	ResumePrevID       int64         `json:"resume_prev_id"`
	AfterReceivedTime  string        `json:"after_received_time,omitempty"`
	ResumeReceivedTime string        `json:"resume_received_time,omitempty"`
	DetectedBy         string        `json:"detected_by"`
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

// ResetEntry is an exchange id restart seen in a file's rows.
type ResetEntry struct {
	PreviousLastID int64  `json:"previous_last_update_id"`
	NewID          int64  `json:"new_update_id"`
	ReceivedTime   string `json:"received_time"`
}

// ParseTime reads a manifest time (RFC 3339, UTC); zero when empty or
// invalid.
func ParseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func readManifest(ctx context.Context, st Store, rel string) (*Manifest, error) {
	b, err := st.ReadFile(ctx, rel)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", rel, err)
	}
	return &m, nil
}

// readFooter fills f's metadata fields from the Parquet footer.
func readFooter(ctx context.Context, st Store, f *File) error {
	obj, err := st.Open(ctx, f.Rel)
	if err != nil {
		return err
	}
	pf, err := file.NewParquetReader(obj)
	if err != nil {
		_ = obj.Close()
		return fmt.Errorf("parquet %s: %w", f.Rel, err)
	}
	defer pf.Close() // closes obj
	md := pf.MetaData()
	f.Rows = md.NumRows
	f.Meta = map[string]string{}
	kv := md.KeyValueMetadata()
	for i, k := range kv.Keys() {
		f.Meta[k] = kv.Values()[i]
	}
	f.FirstSeq, _ = strconv.ParseUint(f.Meta["depthcap.first_stream_seq"], 10, 64)
	f.LastSeq, _ = strconv.ParseUint(f.Meta["depthcap.last_stream_seq"], 10, 64)
	return nil
}
