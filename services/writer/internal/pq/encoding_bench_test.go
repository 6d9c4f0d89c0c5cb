package pq

import (
	"bytes"
	"fmt"
	"os/exec"
	"testing"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/rows"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

// loadDiffs decodes the diff frames of a recording into a row buffer and
// returns the payload JSON lines too.
func loadDiffs(tb testing.TB, name string) (*rows.Rows, rows.Layout, []byte) {
	tb.Helper()
	frames, err := testrec.Load(name)
	if err != nil {
		tb.Fatal(err)
	}
	var r rows.Rows
	var l rows.Layout
	var lines bytes.Buffer
	var d binance.Depth
	for _, f := range frames {
		if f.Kind != md.Diff {
			continue
		}
		l = rows.Layout{Market: f.Market, Kind: md.Diff}
		if err := binance.DecodeDepth(f.Data, &d); err != nil {
			tb.Fatal(err)
		}
		r.Append(l, &rows.Event{RecvNs: f.RecvNs, Depth: &d})
		lines.Write(f.Data)
		lines.WriteByte('\n')
	}
	return &r, l, lines.Bytes()
}

func zstd19(tb testing.TB, data []byte) int {
	tb.Helper()
	path, err := exec.LookPath("zstd")
	if err != nil {
		tb.Fatalf("the zstd CLI is needed for the reference size: %v", err)
	}
	cmd := exec.Command(path, "-19", "-q", "-c")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		tb.Fatal(err)
	}
	return len(out)
}

// BenchmarkEncoding writes the diff events of the two 2024 ETHUSDT
// recordings with each encoding variant and reports bytes per event, the
// ratio to `zstd -19` of the same payload JSON lines (target <= 0.8) and
// the write cost per event (ns/op is per file).
//
//	go test ./internal/pq -run '^$' -bench Encoding -benchtime 3x
func BenchmarkEncoding(b *testing.B) {
	type variant struct {
		name string
		o    Options
	}
	base := DefaultOptions()
	with := func(f func(*Options)) Options { o := base; f(&o); return o }
	variants := []variant{
		{"default", base},
		{"v2-bss-floats", with(func(o *Options) { o.PageV1 = false; o.PriceEnc, o.SizeEnc = EncBSS, EncBSS })},
		{"v2-dict-floats", with(func(o *Options) { o.PageV1 = false })},
		{"plain-floats", with(func(o *Options) { o.PriceEnc, o.SizeEnc = EncPlain, EncPlain })},
		{"dict-prices-bss-sizes", with(func(o *Options) { o.SizeEnc = EncBSS })},
		{"dict-all-ints", with(func(o *Options) { o.IntEnc = EncDict })},
		{"plain-ints", with(func(o *Options) { o.IntEnc = EncPlain })},
		{"zstd1", with(func(o *Options) { o.ZstdLevel = 1 })},
		{"zstd3", with(func(o *Options) { o.ZstdLevel = 3 })},
		{"zstd6", with(func(o *Options) { o.ZstdLevel = 6 })},
		{"zstd9", with(func(o *Options) { o.ZstdLevel = 9 })},
		{"zstd19", with(func(o *Options) { o.ZstdLevel = 19 })},
		{"rg4096", with(func(o *Options) { o.RowGroupRows = 4096 })},
		{"rg65536", with(func(o *Options) { o.RowGroupRows = 65536 })},
		{"page8MiB", with(func(o *Options) { o.DataPageSize = 8 << 20 })},
	}
	for _, rec := range []string{"spot_ethusdt_2024-08-08T2354.rec.gz", "futures_ethusdt_2024-08-08T2354.rec.gz"} {
		r, l, lines := loadDiffs(b, rec)
		ref := zstd19(b, lines)
		for _, v := range variants {
			b.Run(fmt.Sprintf("%s/%s", rec[:7], v.name), func(b *testing.B) {
				var size int
				for b.Loop() {
					var buf bytes.Buffer
					w, err := NewFileWriter(&buf, l, "ETHUSDT", v.o)
					if err != nil {
						b.Fatal(err)
					}
					if err := w.WriteRows(r, 0, r.N); err != nil {
						b.Fatal(err)
					}
					if err := w.Close(Meta{}); err != nil {
						b.Fatal(err)
					}
					size = buf.Len()
				}
				b.ReportMetric(float64(size)/float64(r.N), "B/event")
				b.ReportMetric(float64(size)/float64(ref), "ratio_zstd19")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(r.N), "ns/event")
			})
		}
	}
}
