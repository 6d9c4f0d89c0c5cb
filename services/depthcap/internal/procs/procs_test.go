package procs

import (
	"math"
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	const text = `# HELP depthcap_writer_processed_seq Stream sequence.
# TYPE depthcap_writer_processed_seq gauge
depthcap_writer_processed_seq 12345
depthcap_upload_files_total{result="uploaded"} 7
depthcap_upload_files_total{result="conflict"} 0
depthcap_x{a="q\"uote",b="back\\slash",c="new\nline"} 1.5e3
depthcap_h_bucket{le="+Inf"} 3
go_gc_duration_seconds{quantile="0.5"} NaN
up 1 1700000000000
`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels []string
		want   float64
		found  bool
	}{
		{"depthcap_writer_processed_seq", nil, 12345, true},
		{"depthcap_upload_files_total", []string{"result", "uploaded"}, 7, true},
		{"depthcap_upload_files_total", []string{"result", "conflict"}, 0, true},
		{"depthcap_upload_files_total", []string{"result", "missing"}, 0, false},
		{"depthcap_x", []string{"a", `q"uote`, "b", `back\slash`, "c", "new\nline"}, 1500, true},
		{"depthcap_h_bucket", []string{"le", "+Inf"}, 3, true},
		{"up", nil, 1, true},
		{"absent", nil, 0, false},
	}
	for _, tc := range tests {
		got, found := m.Get(tc.name, tc.labels...)
		if got != tc.want || found != tc.found {
			t.Errorf("Get(%s, %v) = %v, %v; want %v, %v", tc.name, tc.labels, got, found, tc.want, tc.found)
		}
	}
	if got := m.Sum("depthcap_upload_files_total"); got != 7 {
		t.Errorf("Sum = %v, want 7", got)
	}
	if v := m.Value("go_gc_duration_seconds"); !math.IsNaN(v) {
		t.Errorf("NaN sample = %v", v)
	}
	for _, bad := range []string{`x{a="1"`, `x{a=1} 2`, `x`, `x{a="1"} y`} {
		if _, err := ParseMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseMetrics(%q) succeeded", bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		line    string
		want    int64
		wantErr bool
	}{
		{"1234 (my proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 8 0 55 0 0", 281, false},
		{"1 (a) b c) R 0 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0", 10, false},
		{"garbage", 0, true},
		{"1 (x) S 1 2", 0, true},
	}
	for _, tc := range tests {
		got, err := parseStatCPU([]byte(tc.line))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseStatCPU(%q) = %d, %v; want %d, err %v", tc.line, got, err, tc.want, tc.wantErr)
		}
	}
}
