package recording

import (
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
)

func testdata(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata", "binance")
}

// TestReadRecording reads a real recording and checks the count stated in
// the testdata README (183 frames) and that timestamps never go back.
func TestReadRecording(t *testing.T) {
	frames, err := ReadAll(filepath.Join(testdata(t), "spot_2021-10-12_4sym.rec.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 183 {
		t.Fatalf("read %d frames, want 183", len(frames))
	}
	for i := 1; i < len(frames); i++ {
		if frames[i].RecvNs < frames[i-1].RecvNs {
			t.Fatalf("frame %d goes back in time", i)
		}
	}
}

func TestReaderBadLines(t *testing.T) {
	tests := []struct {
		in      string
		wantErr error
	}{
		{"1 {}\n", nil},
		{"\n\n1 {}\n", nil},
		{"{}\n", ErrBadLine},
		{"abc {}\n", ErrBadLine},
		{"", io.EOF},
	}
	for _, tt := range tests {
		_, err := NewReader(strings.NewReader(tt.in)).Next()
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Next(%q) err = %v, want %v", tt.in, err, tt.wantErr)
		}
	}
}

func TestMarketFromFileName(t *testing.T) {
	tests := []struct {
		in      string
		want    md.Market
		wantErr error
	}{
		{"/x/spot_2021.rec.gz", md.Spot, nil},
		{"futures_ethusdt.rec.gz", md.Futures, nil},
		{"coin_x.rec.gz", md.MarketUnknown, md.ErrUnknownMarket},
	}
	for _, tt := range tests {
		got, err := MarketFromFileName(tt.in)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("MarketFromFileName(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// FuzzReader checks that the line reader never panics and that every frame
// it returns came from a line "<ns> <json>" of the input.
func FuzzReader(f *testing.F) {
	f.Add("1633998512063356900 {\"stream\":\"x\"}\n")
	f.Add("\n\n12 {}\n13 {}")
	f.Add("abc def\n")
	f.Fuzz(func(t *testing.T, in string) {
		r := NewReader(strings.NewReader(in))
		for i := 0; i < 1000; i++ {
			fr, err := r.Next()
			if err != nil {
				return
			}
			if !strings.Contains(in, string(fr.JSON)) {
				t.Fatalf("frame %q is not in the input", fr.JSON)
			}
		}
	})
}
