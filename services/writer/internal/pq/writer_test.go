package pq

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/rows"
)

// TestMemoryAccounting proves that writing a file releases every Arrow
// builder, record and buffer it allocated (checked allocator back to 0),
// on success and after an abort.
func TestMemoryAccounting(t *testing.T) {
	r, l, _ := loadDiffs(t, "futures_2021-07-22_4sym.rec.gz")
	for _, abort := range []bool{false, true} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		o := DefaultOptions()
		o.Mem = mem
		o.RowGroupRows = 100
		var buf bytes.Buffer
		w, err := NewFileWriter(&buf, l, "SUSHIUSDT", o)
		if err != nil {
			t.Fatal(err)
		}
		for from := 0; from < r.N; from += 77 { // uneven batches across row groups
			if err := w.WriteRows(r, from, min(from+77, r.N)); err != nil {
				t.Fatal(err)
			}
		}
		if abort {
			w.Abort()
		} else if err := w.Close(Meta{}); err != nil {
			t.Fatal(err)
		}
		mem.AssertSize(t, 0)
	}
}

// TestDeterministicBytes proves that a file's bytes depend only on its
// rows, not on how they were handed to the writer (checkpoint boundaries).
func TestDeterministicBytes(t *testing.T) {
	r, l, _ := loadDiffs(t, "spot_2021-08-14_4sym.rec.gz")
	write := func(step int) []byte {
		var buf bytes.Buffer
		o := DefaultOptions()
		o.RowGroupRows = 128
		w, err := NewFileWriter(&buf, l, "X", o)
		if err != nil {
			t.Fatal(err)
		}
		for from := 0; from < r.N; from += step {
			if err := w.WriteRows(r, from, min(from+step, r.N)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(Meta{Market: "spot"}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	ref := write(r.N)
	for _, step := range []int{1, 7, 128, 300} {
		if !bytes.Equal(write(step), ref) {
			t.Errorf("batches of %d give different bytes", step)
		}
	}
}

// synthRows builds n rows of layout l with every column set from i,
// nullable columns null on every third row (request time, limit), level
// lists of 0 to 4 entries (empty lists included).
func synthRows(l rows.Layout, n int) *rows.Rows {
	var r rows.Rows
	var d binance.Depth
	for i := 0; i < n; i++ {
		id := int64(1000 + 10*i)
		d.Seq = binance.Seq{EventTime: 1_700_000_000_000 + int64(i), TransactionTime: 1_700_000_000_000 + int64(i) - 3,
			FirstUpdateID: id - 4, FinalUpdateID: id, PrevFinalUpdateID: id - 10, LastUpdateID: id}
		d.Bids, d.Asks = d.Bids[:0], d.Asks[:0]
		for j := 0; j < i%5; j++ {
			d.Bids = append(d.Bids, binance.Level{Price: 100 - 0.01*float64(j) - float64(i%7), Qty: 0.001 * float64(i*j+1)})
		}
		for j := 0; j < (i+2)%4; j++ {
			d.Asks = append(d.Asks, binance.Level{Price: 100.01 + 0.01*float64(j), Qty: float64(j)})
		}
		ev := rows.Event{RecvNs: 1_700_000_000_000_000_000 + int64(i)*1_000_003, Depth: &d}
		if i%3 != 0 {
			ev.ReqNs, ev.Limit = ev.RecvNs-5_000_000, int32(100*(i%3))
		}
		r.Append(l, &ev)
	}
	return &r
}

// TestRoundTrip proves that every layout's rows read back exactly with
// arrow-go's reader (every column, nulls, empty and long level lists,
// float bits), fed as raw rows and as encoded chunks across row groups.
func TestRoundTrip(t *testing.T) {
	for _, m := range []md.Market{md.Spot, md.Futures} {
		for _, k := range []md.Kind{md.Diff, md.Partial, md.Snapshot} {
			l := rows.Layout{Market: m, Kind: k}
			t.Run(m.String()+"/"+k.String(), func(t *testing.T) {
				src := synthRows(l, 250)
				var buf bytes.Buffer
				o := DefaultOptions()
				o.RowGroupRows = 64
				w, err := NewFileWriter(&buf, l, "ABCUSDT", o)
				if err != nil {
					t.Fatal(err)
				}
				var part rows.Rows
				part.AppendRows(src, 30, 170)
				if err := w.WriteRows(src, 0, 30); err != nil {
					t.Fatal(err)
				}
				if err := w.WriteChunk(part.AppendChunk(nil)); err != nil {
					t.Fatal(err)
				}
				if err := w.WriteRows(src, 170, src.N); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(Meta{}); err != nil {
					t.Fatal(err)
				}
				if got := readBack(t, buf.Bytes(), l); !reflect.DeepEqual(got, src) {
					t.Fatalf("read back differs:\n got %+v\nwant %+v", got, src)
				}
			})
		}
	}
}

// readBack reads a file with pqarrow into a row buffer of layout l.
func readBack(t *testing.T, b []byte, l rows.Layout) *rows.Rows {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	want := Schema(l).Fields()
	if got := tbl.Schema().Fields(); len(got) != len(want) {
		t.Fatalf("schema %v, want %v", tbl.Schema(), Schema(l))
	}
	for i, f := range tbl.Schema().Fields() {
		if f.Name != want[i].Name || f.Nullable != want[i].Nullable || !arrow.TypeEqual(f.Type, want[i].Type) {
			t.Fatalf("field %v, want %v", f, want[i])
		}
	}
	var r rows.Rows
	n := int(tbl.NumRows())
	r.N = n
	for ci, f := range tbl.Schema().Fields() {
		chunks := tbl.Column(ci).Data().Chunks()
		for _, ch := range chunks {
			switch f.Name {
			case ColBidPrices, ColBidSizes, ColAskPrices, ColAskSizes:
				lst := ch.(*array.List)
				vals := lst.ListValues().(*array.Float64)
				for i := 0; i < lst.Len(); i++ {
					s, e := lst.ValueOffsets(i)
					for j := s; j < e; j++ {
						v := vals.Value(int(j))
						switch f.Name {
						case ColBidPrices:
							r.BidPx = append(r.BidPx, v)
						case ColBidSizes:
							r.BidQty = append(r.BidQty, v)
						case ColAskPrices:
							r.AskPx = append(r.AskPx, v)
						default:
							r.AskQty = append(r.AskQty, v)
						}
					}
					if f.Name == ColBidPrices {
						if len(r.BidOff) == 0 {
							r.BidOff = append(r.BidOff, 0)
						}
						r.BidOff = append(r.BidOff, int32(len(r.BidPx)))
					}
					if f.Name == ColAskPrices {
						if len(r.AskOff) == 0 {
							r.AskOff = append(r.AskOff, 0)
						}
						r.AskOff = append(r.AskOff, int32(len(r.AskPx)))
					}
				}
			case ColSymbol:
				for i := 0; i < ch.Len(); i++ {
					if s := ch.(*array.String).Value(i); s != "ABCUSDT" {
						t.Fatalf("symbol %q", s)
					}
				}
			case ColLimit: // 0 in the buffer is null in the file
				a := ch.(*array.Int32)
				for i := 0; i < a.Len(); i++ {
					if !a.IsNull(i) && a.Value(i) == 0 {
						t.Fatalf("limit row %d: 0 instead of null", i)
					}
					r.Limit = append(r.Limit, a.Value(i)*int32(1-btoi(a.IsNull(i))))
				}
			default:
				dst := map[string]*[]int64{ColRequestTime: &r.ReqUs, ColReceivedTime: &r.RecvUs, ColEventTime: &r.EventUs, ColTransactionTime: &r.TxUs,
					ColFirstUpdateID: &r.First, ColFinalUpdateID: &r.Final, ColPrevFinalID: &r.Prev, ColLastUpdateID: &r.Last}[f.Name]
				allNull := ch.NullN() == ch.Len()
				for i := 0; i < ch.Len(); i++ {
					if allNull { // a column the layout does not fill (spot partial)
						break
					}
					var v int64
					if !ch.IsNull(i) {
						switch a := ch.(type) {
						case *array.Timestamp:
							v = int64(a.Value(i))
						case *array.Int64:
							v = a.Value(i)
						}
						if v == 0 && f.Name == ColRequestTime { // 0 in the buffer is null in the file
							t.Fatalf("request_time row %d: 0 instead of null", i)
						}
					}
					*dst = append(*dst, v)
				}
			}
		}
	}
	return &r
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
