package uploader_test

import (
	"errors"
	"testing"

	"github.com/depthcap/depthcap/services/uploader"
)

// Proves: only sealed files of the DATA_DIR layout are accepted from
// FileSealed messages; traversal, temp names, unknown markets or kinds and
// non-layout paths are rejected with ErrBadPath.
func TestCheckPath(t *testing.T) {
	tests := []struct {
		rel     string
		wantErr error
	}{
		{"spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet", nil},
		{"futures/partial_orderbooks/ETHUSDT/2026-11-21.parquet", nil},
		{"futures/orderbooks/BTCUSDT/2026-11-21.parquet", nil},
		{"spot/diff_orderbooks/BTCUSDT/2026-11-21.gaps.json", nil},
		{"spot/gaps/BTCUSDT/2026-11-21.json", nil},
		{"spot/diff_orderbooks/币安人生USDT/2026-11-21.parquet", nil},
		{"spot/diff_orderbooks/BTCUSDT/2026-11-21.s1.parquet", nil},
		{"", uploader.ErrBadPath},
		{"/spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet", uploader.ErrBadPath},
		{"../spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet", uploader.ErrBadPath},
		{"spot/diff_orderbooks/../../../etc/passwd", uploader.ErrBadPath},
		{"spot/diff_orderbooks/BTCUSDT/./2026-11-21.parquet", uploader.ErrBadPath},
		{"spot\\diff_orderbooks\\BTCUSDT\\2026-11-21.parquet", uploader.ErrBadPath},
		{"spot/diff_orderbooks/BTCUSDT/.2026-11-21.parquet.tmp", uploader.ErrBadPath},
		{"spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet.tmp123", uploader.ErrBadPath},
		{"spot/diff_orderbooks/BTCUSDT/2026-11-21.tmp.parquet", uploader.ErrBadPath},
		{"spot/diff_orderbooks/BTCUSDT/2026-11-21.csv", uploader.ErrBadPath},
		{"spot/diff_orderbooks/BTCUSDT/.parquet", uploader.ErrBadPath},
		{"spot/diff_orderbooks/btcusdt/2026-11-21.parquet", uploader.ErrBadPath},
		{"coinm/diff_orderbooks/BTCUSD/2026-11-21.parquet", uploader.ErrBadPath},
		{"spot/trades/BTCUSDT/2026-11-21.parquet", uploader.ErrBadPath},
		{"nats/jetstream/BTCUSDT/2026-11-21.parquet", uploader.ErrBadPath},
		{"spot/diff_orderbooks/BTCUSDT/2026/11-21.parquet", uploader.ErrBadPath},
		{"spot/diff_orderbooks/2026-11-21.parquet", uploader.ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			if err := uploader.CheckPath(tt.rel); !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckPath(%q) = %v, want %v", tt.rel, err, tt.wantErr)
			}
		})
	}
}

// Proves: sizes read as documented (binary units) and garbage is refused.
func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    uploader.ByteSize
		wantErr bool
	}{
		{"0", 0, false},
		{"5242880", 5 * uploader.MiB, false},
		{"16MiB", 16 * uploader.MiB, false},
		{"16mb", 16 * uploader.MiB, false},
		{"512 KiB", 512 * uploader.KiB, false},
		{"5GiB", 5 * uploader.GiB, false},
		{"1G", uploader.GiB, false},
		{"", 0, true},
		{"MiB", 0, true},
		{"-5MiB", 0, true},
		{"1.5MiB", 0, true},
		{"12 parsecs", 0, true},
		{"99999999999999999999", 0, true},
		{"9999999999GiB", 0, true},
	}
	for _, tt := range tests {
		got, err := uploader.ParseByteSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if s := (16 * uploader.MiB).String(); s != "16MiB" {
		t.Errorf("String() = %q", s)
	}
}
