package pq

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os/exec"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/cputime"
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
		e := &f.Env
		if e.Kind != md.Diff {
			continue
		}
		l = rows.Layout{Market: e.Market, Kind: md.Diff}
		if err := binance.DecodeDepth(e.Payload, &d); err != nil {
			tb.Fatal(err)
		}
		r.Append(l, &rows.Event{RecvNs: e.ReceivedNs, Depth: &d})
		lines.Write(e.Payload)
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
// the write cost per event: wall-clock (ns/event) and CPU time of the
// process (cpu-ns/event, steadier on a shared machine).
//
//	go test ./internal/pq -run '^$' -bench 'Encoding$' -benchtime 5x -count 5 -cpu 1
func BenchmarkEncoding(b *testing.B) {
	type variant struct {
		name string
		o    Options
	}
	base := DefaultOptions()
	with := func(f func(*Options)) Options { o := base; f(&o); return o }
	variants := []variant{
		{"default", base},
		{"zstd3", with(func(o *Options) { o.ZstdLevel = 3 })},
		{"zstd6", with(func(o *Options) { o.ZstdLevel = 6 })},
		{"zstd9", with(func(o *Options) { o.ZstdLevel = 9 })},
		{"zstd19", with(func(o *Options) { o.ZstdLevel = 19 })},
		{"zstd3-page8MiB", with(func(o *Options) { o.ZstdLevel = 3; o.DataPageSize = 8 << 20 })},
		{"page8MiB", with(func(o *Options) { o.DataPageSize = 8 << 20 })},
		{"v2-dict-floats", with(func(o *Options) { o.PageV1 = false })},
		{"v2-bss-floats", with(func(o *Options) { o.PageV1 = false; o.PriceEnc, o.SizeEnc = EncBSS, EncBSS })},
		{"plain-floats", with(func(o *Options) { o.PriceEnc, o.SizeEnc = EncPlain, EncPlain })},
		{"dict-prices-bss-sizes", with(func(o *Options) { o.SizeEnc = EncBSS })},
		{"dict-prices-plain-sizes", with(func(o *Options) { o.SizeEnc = EncPlain })},
		{"dict-all-ints", with(func(o *Options) { o.IntEnc = EncDict })},
		{"plain-ints", with(func(o *Options) { o.IntEnc = EncPlain })},
		{"rg4096", with(func(o *Options) { o.RowGroupRows = 4096 })},
		{"rg65536", with(func(o *Options) { o.RowGroupRows = 65536 })},
		{"no-level-stats", with(func(o *Options) { o.NoLevelStats = true })},
		{"dictpage1MiB", with(func(o *Options) { o.DictPageSize = 1 << 20 })},
		{"dictpage128KiB", with(func(o *Options) { o.DictPageSize = 128 << 10 })},
	}
	for _, rec := range []string{"spot_ethusdt_2024-08-08T2354.rec.gz", "futures_ethusdt_2024-08-08T2354.rec.gz"} {
		r, l, lines := loadDiffs(b, rec)
		ref := zstd19(b, lines)
		for _, v := range variants {
			b.Run(fmt.Sprintf("%s/%s", rec[:7], v.name), func(b *testing.B) {
				var size int
				var cpu cputime.Meter
				cpu.Start()
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
				cpu.Stop()
				b.ReportMetric(float64(size)/float64(r.N), "B/event")
				b.ReportMetric(float64(size)/float64(ref), "ratio_zstd19")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(r.N), "ns/event")
				b.ReportMetric(float64(cpu.Total().Nanoseconds())/float64(b.N)/float64(r.N), "cpu-ns/event")
			})
		}
	}
}

// decimals returns the fewest decimal places k (at most 12) at which
// every value of vals is exactly float64(round(v*10^k)) / 10^k, and the
// scaled integers. Binance's decimal strings have at most 8 places, and
// strconv.ParseFloat gives the float64 nearest the decimal, which that
// division reproduces, so the round trip is exact.
func decimals(vals []float64) (int, []int64) {
	for k := 0; k <= 12; k++ {
		p := math.Pow10(k)
		out := make([]int64, len(vals))
		ok := true
		for i, v := range vals {
			m := math.Round(v * p)
			if float64(int64(m))/p != v {
				ok = false
				break
			}
			out[i] = int64(m)
		}
		if ok {
			return k, out
		}
	}
	return -1, nil
}

// writeScaled writes diff rows like FileWriter, except that the four
// level columns are list<int64> of the values scaled by 10^k (k per
// column, from decimals): the decimal/scaled-integer schema the default
// does not use. enc is the encoding of the level elements.
func writeScaled(tb testing.TB, w io.Writer, r *rows.Rows, l rows.Layout, enc Encoding, zstdLevel int) {
	tb.Helper()
	o := DefaultOptions()
	o.ZstdLevel = zstdLevel
	o.PriceEnc, o.SizeEnc = enc, enc
	var fields []arrow.Field
	for _, f := range Schema(l).Fields() {
		switch f.Name {
		case ColBidPrices, ColBidSizes, ColAskPrices, ColAskSizes:
			f.Type = arrow.ListOfField(arrow.Field{Name: "element", Type: arrow.PrimitiveTypes.Int64, Nullable: true})
		}
		fields = append(fields, f)
	}
	as := arrow.NewSchema(fields, nil)
	props := o.props(as)
	ps, err := pqarrow.ToParquet(as, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		tb.Fatal(err)
	}
	fw, err := file.NewParquetWriterWithError(w, ps.Root(), file.WithWriterProps(props))
	if err != nil {
		tb.Fatal(err)
	}
	fwr := &FileWriter{symbol: parquet.ByteArray("ETHUSDT")}
	scaled := func(vals []float64) []int64 {
		k, out := decimals(vals)
		if k < 0 {
			tb.Fatal("values without an exact decimal scale")
		}
		return out
	}
	bidPx, bidQty, askPx, askQty := scaled(r.BidPx), scaled(r.BidQty), scaled(r.AskPx), scaled(r.AskQty)
	for from := 0; from < r.N; from += o.RowGroupRows {
		to := min(from+o.RowGroupRows, r.N)
		rg, err := fw.AppendRowGroupChecked()
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range as.Fields() {
			cw, err := rg.NextColumn()
			if err != nil {
				tb.Fatal(err)
			}
			var vals []int64
			off := r.BidOff
			switch f.Name {
			case ColReceivedTime:
				vals = r.RecvUs[from:to]
			case ColEventTime:
				vals = r.EventUs[from:to]
			case ColTransactionTime:
				vals = r.TxUs[from:to]
			case ColFirstUpdateID:
				vals = r.First[from:to]
			case ColFinalUpdateID:
				vals = r.Final[from:to]
			case ColPrevFinalID:
				vals = r.Prev[from:to]
			case ColSymbol:
				err = fwr.writeSymbol(cw, to-from)
			case ColBidPrices, ColBidSizes, ColAskPrices, ColAskSizes:
				src := map[string][]int64{ColBidPrices: bidPx, ColBidSizes: bidQty, ColAskPrices: askPx, ColAskSizes: askQty}[f.Name]
				if f.Name == ColAskPrices || f.Name == ColAskSizes {
					off = r.AskOff
				}
				fwr.listLevels(cw, off, from, to)
				_, err = cw.(*file.Int64ColumnChunkWriter).WriteBatch(src[off[from]:off[to]], fwr.def, fwr.rep)
			default:
				tb.Fatalf("column %s", f.Name)
			}
			if vals != nil {
				err = writeInt64(cw, vals)
			}
			if err != nil {
				tb.Fatal(err)
			}
		}
		if err := rg.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkEncodingScaled measures what a decimal schema would give:
// the level columns as list<int64> of the values times 10^k (k per
// column: 2 for ETHUSDT prices, 4 or 3 for sizes), which reproduce the
// float64 values exactly. Not the default schema; this quantifies the
// size a schema change would buy.
//
//	go test ./internal/pq -run '^$' -bench EncodingScaled -benchtime 5x -count 5 -cpu 1
func BenchmarkEncodingScaled(b *testing.B) {
	for _, rec := range []string{"spot_ethusdt_2024-08-08T2354.rec.gz", "futures_ethusdt_2024-08-08T2354.rec.gz"} {
		r, l, lines := loadDiffs(b, rec)
		ref := zstd19(b, lines)
		for _, v := range []struct {
			name  string
			enc   Encoding
			level int
		}{
			{"scaled-dict-zstd1", EncDict, 1},
			{"scaled-delta-zstd1", EncDelta, 1},
			{"scaled-plain-zstd1", EncPlain, 1},
			{"scaled-dict-zstd3", EncDict, 3},
			{"scaled-delta-zstd3", EncDelta, 3},
			{"scaled-plain-zstd3", EncPlain, 3},
			{"scaled-plain-zstd19", EncPlain, 19},
		} {
			b.Run(rec[:7]+"/"+v.name, func(b *testing.B) {
				var size int
				var cpu cputime.Meter
				cpu.Start()
				for b.Loop() {
					var buf bytes.Buffer
					writeScaled(b, &buf, r, l, v.enc, v.level)
					size = buf.Len()
				}
				cpu.Stop()
				b.ReportMetric(float64(size)/float64(r.N), "B/event")
				b.ReportMetric(float64(size)/float64(ref), "ratio_zstd19")
				b.ReportMetric(float64(cpu.Total().Nanoseconds())/float64(b.N)/float64(r.N), "cpu-ns/event")
			})
		}
	}
}
