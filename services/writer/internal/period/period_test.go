package period

import (
	"errors"
	"testing"
	"time"
)

// TestCheck proves which periods are accepted: whole minutes from 1m to
// 24h that tile a UTC day.
func TestCheck(t *testing.T) {
	tests := []struct {
		d       time.Duration
		wantErr error
	}{
		{24 * time.Hour, nil},
		{time.Hour, nil},
		{time.Minute, nil},
		{15 * time.Minute, nil},
		{0, ErrInvalid},
		{30 * time.Second, ErrInvalid},
		{48 * time.Hour, ErrInvalid},
		{7 * time.Minute, ErrInvalid},  // does not divide 24h
		{90 * time.Second, ErrInvalid}, // not whole minutes
		{time.Minute + time.Nanosecond, ErrInvalid},
	}
	for _, tt := range tests {
		if err := Check(tt.d); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("Check(%s) = %v, want %v", tt.d, err, tt.wantErr)
		}
	}
}

// TestNames proves period membership and file names for 24h, 1h and 1m
// periods in UTC, including the instants at a boundary and before 1970.
func TestNames(t *testing.T) {
	ts := func(s string) int64 {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UnixNano()
	}
	tests := []struct {
		at   string
		d    time.Duration
		supp int
		want string
	}{
		{"2024-08-08T23:59:59.999999999Z", Day, 0, "2024-08-08.parquet"},
		{"2024-08-09T00:00:00Z", Day, 0, "2024-08-09.parquet"},
		{"2024-08-09T00:00:00Z", Day, 2, "2024-08-09.late2.parquet"},
		{"2024-08-09T13:59:59Z", time.Hour, 0, "2024-08-09T1300.parquet"},
		{"2024-08-09T13:07:30Z", time.Minute, 0, "2024-08-09T1307.parquet"},
		{"2024-08-09T13:07:30Z", time.Minute, 1, "2024-08-09T1307.late1.parquet"},
		{"1969-12-31T23:59:59Z", Day, 0, "1969-12-31.parquet"},
	}
	for _, tt := range tests {
		p := Of(ts(tt.at), tt.d)
		if got := FileName(p, tt.d, tt.supp); got != tt.want {
			t.Errorf("FileName(%s, %s, %d) = %s, want %s", tt.at, tt.d, tt.supp, got, tt.want)
		}
		if ns := ts(tt.at); ns < p.Start(tt.d) || ns >= p.End(tt.d) {
			t.Errorf("%s not in [%d, %d)", tt.at, p.Start(tt.d), p.End(tt.d))
		}
	}
	if got := ManifestName("2024-08-09.late1.parquet"); got != "2024-08-09.late1.gaps.json" {
		t.Errorf("ManifestName = %s", got)
	}
}
