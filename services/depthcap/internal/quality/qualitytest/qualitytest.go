// Package qualitytest helps tests of verify and book: recordings (read,
// write, import into a DATA_DIR with the real writer) and a reference
// order book that follows recorded frames with nothing but maps and the
// textbook sync rules, independent of pkg/book and of the Parquet files.
package qualitytest

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/depthcap/internal/importer"
	"github.com/depthcap/depthcap/services/writer"
)

// TestdataDir is shared/testdata/binance.
func TestdataDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "..", "..", "shared", "testdata", "binance")
}

// Recording is the path of a recording in TestdataDir.
func Recording(name string) string { return filepath.Join(TestdataDir(), name) }

// Recordings lists every *.rec.gz of TestdataDir.
func Recordings(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(TestdataDir(), "*.rec.gz"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no recordings in %s: %v", TestdataDir(), err)
	}
	sort.Strings(files)
	return files
}

// Import converts recordings into files under dataDir with the real
// importer (private JetStream, real writer).
func Import(tb testing.TB, dataDir string, files ...string) {
	tb.Helper()
	var wcfg writer.Config
	if err := svc.Load(&wcfg); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := svc.Env{Log: zap.NewNop(), Registry: svc.NewRegistry(), Health: svc.NewHealth()}
	if _, err := importer.Run(ctx, importer.Options{Files: files, DataDir: dataDir, Source: "test", Writer: wcfg}, env); err != nil {
		tb.Fatalf("import %v: %v", files, err)
	}
}

// Line is one recorded frame.
type Line struct {
	RecvNs int64
	JSON   string
}

// ReadLines reads a recording.
func ReadLines(tb testing.TB, path string) []Line {
	tb.Helper()
	frs, err := recording.ReadAll(path)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]Line, len(frs))
	for i, f := range frs {
		out[i] = Line{RecvNs: f.RecvNs, JSON: string(f.JSON)}
	}
	return out
}

// WriteLines writes a recording (gzip text, "<ns> <json>" per line), in
// receive-time order (stable).
func WriteLines(tb testing.TB, path string, lines []Line) {
	tb.Helper()
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].RecvNs < lines[j].RecvNs })
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriter(zw)
	for _, l := range lines {
		_, _ = fmt.Fprintf(bw, "%d %s\n", l.RecvNs, l.JSON)
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// Frame is a decoded depth frame of a recording.
type Frame struct {
	Stream string
	Symbol string // upper case, from the stream name
	Kind   md.Kind
	// Diffs and futures partials.
	U, Final, PU int64
	E, T         int64
	// Snapshots and spot partials.
	LastUpdateID int64
	Bids, Asks   [][2]string
}

// Decode decodes a recorded depth frame; ok is false for other streams.
func Decode(tb testing.TB, js string) (f Frame, ok bool) {
	tb.Helper()
	var env struct {
		Stream string          `json:"stream"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(js), &env); err != nil {
		tb.Fatalf("frame %q: %v", js, err)
	}
	sym, kind, found := strings.Cut(env.Stream, "@")
	if !found {
		return f, false
	}
	f.Stream, f.Symbol = env.Stream, strings.ToUpper(sym)
	switch {
	case kind == "depthSnapshot":
		f.Kind = md.Snapshot
	case kind == "depth" || strings.HasPrefix(kind, "depth@"):
		f.Kind = md.Diff
	case strings.HasPrefix(kind, "depth5") || strings.HasPrefix(kind, "depth10") || strings.HasPrefix(kind, "depth20"):
		f.Kind = md.Partial
	default:
		return f, false
	}
	// Every key has an exact field: encoding/json would otherwise match
	// "e" (a string) to E case-insensitively.
	var d struct {
		Ev           string      `json:"e"`
		Sym          string      `json:"s"`
		E            int64       `json:"E"`
		T            int64       `json:"T"`
		U            int64       `json:"U"`
		Final        int64       `json:"u"`
		PU           int64       `json:"pu"`
		LastUpdateID int64       `json:"lastUpdateId"`
		B            [][2]string `json:"b"`
		A            [][2]string `json:"a"`
		Bids         [][2]string `json:"bids"`
		Asks         [][2]string `json:"asks"`
	}
	if err := json.Unmarshal(env.Data, &d); err != nil {
		tb.Fatalf("frame %q: %v", js, err)
	}
	f.U, f.Final, f.PU, f.E, f.T, f.LastUpdateID = d.U, d.Final, d.PU, d.E, d.T, d.LastUpdateID
	f.Bids, f.Asks = d.B, d.A
	if d.Bids != nil || d.Asks != nil {
		f.Bids, f.Asks = d.Bids, d.Asks
	}
	return f, true
}

// RefBook is a reference order book: maps from price to quantity, kept
// with the exchange's strings so that frames built from it read back as
// exactly the same float64s.
type RefBook struct {
	Bids, Asks map[float64][2]string
	Last       int64 // update id the book reflects
}

// NewRefBook loads a snapshot.
func NewRefBook(tb testing.TB, last int64, bids, asks [][2]string) *RefBook {
	b := &RefBook{Bids: map[float64][2]string{}, Asks: map[float64][2]string{}, Last: last}
	b.set(tb, b.Bids, bids)
	b.set(tb, b.Asks, asks)
	return b
}

func parse(tb testing.TB, s string) float64 {
	tb.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		tb.Fatalf("number %q: %v", s, err)
	}
	return v
}

func (b *RefBook) set(tb testing.TB, side map[float64][2]string, levels [][2]string) {
	for _, l := range levels {
		p, q := parse(tb, l[0]), parse(tb, l[1])
		if q == 0 {
			delete(side, p)
		} else {
			side[p] = l
		}
	}
}

// Apply applies a diff frame's levels (no sequence check: callers follow
// the rules) and moves Last to its final id.
func (b *RefBook) Apply(tb testing.TB, f Frame) {
	b.set(tb, b.Bids, f.Bids)
	b.set(tb, b.Asks, f.Asks)
	b.Last = f.Final
}

// Clone copies the book.
func (b *RefBook) Clone() *RefBook {
	c := &RefBook{Bids: make(map[float64][2]string, len(b.Bids)), Asks: make(map[float64][2]string, len(b.Asks)), Last: b.Last}
	for k, v := range b.Bids {
		c.Bids[k] = v
	}
	for k, v := range b.Asks {
		c.Asks[k] = v
	}
	return c
}

// Top returns the best n levels of each side (n <= 0: all), best first.
func (b *RefBook) Top(n int) (bids, asks [][2]string) {
	sorted := func(side map[float64][2]string, desc bool) [][2]string {
		ps := make([]float64, 0, len(side))
		for p := range side {
			ps = append(ps, p)
		}
		sort.Float64s(ps)
		if desc {
			for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
				ps[i], ps[j] = ps[j], ps[i]
			}
		}
		if n > 0 && len(ps) > n {
			ps = ps[:n]
		}
		out := make([][2]string, len(ps))
		for i, p := range ps {
			out[i] = side[p]
		}
		return out
	}
	return sorted(b.Bids, true), sorted(b.Asks, false)
}

func levelsJSON(l [][2]string) string {
	if l == nil {
		l = [][2]string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// SnapshotFrame is a recorded REST snapshot frame of the given levels.
func SnapshotFrame(m md.Market, symbol string, last int64, bids, asks [][2]string, eventMs int64) string {
	stream := strings.ToLower(symbol) + "@depthSnapshot"
	if m == md.Futures {
		return fmt.Sprintf(`{"stream":%q,"data":{"lastUpdateId":%d,"E":%d,"T":%d,"bids":%s,"asks":%s}}`,
			stream, last, eventMs, eventMs, levelsJSON(bids), levelsJSON(asks))
	}
	return fmt.Sprintf(`{"stream":%q,"data":{"lastUpdateId":%d,"bids":%s,"asks":%s}}`, stream, last, levelsJSON(bids), levelsJSON(asks))
}

// PartialFrame is a recorded @depth20@100ms frame: spot
// {lastUpdateId,bids,asks}; USD-M depthUpdate-shaped with U, u, pu.
func PartialFrame(m md.Market, symbol string, first, final, prev int64, bids, asks [][2]string, eventMs int64) string {
	stream := strings.ToLower(symbol) + "@depth20@100ms"
	if m == md.Futures {
		return fmt.Sprintf(`{"stream":%q,"data":{"e":"depthUpdate","E":%d,"T":%d,"s":%q,"U":%d,"u":%d,"pu":%d,"b":%s,"a":%s}}`,
			stream, eventMs, eventMs, symbol, first, final, prev, levelsJSON(bids), levelsJSON(asks))
	}
	return fmt.Sprintf(`{"stream":%q,"data":{"lastUpdateId":%d,"bids":%s,"asks":%s}}`, stream, final, levelsJSON(bids), levelsJSON(asks))
}

// DiffFrame is a recorded diff frame.
func DiffFrame(m md.Market, symbol string, first, final, prev int64, bids, asks [][2]string, eventMs int64) string {
	stream := strings.ToLower(symbol) + "@depth@100ms"
	if m == md.Futures {
		return fmt.Sprintf(`{"stream":%q,"data":{"e":"depthUpdate","E":%d,"T":%d,"s":%q,"U":%d,"u":%d,"pu":%d,"b":%s,"a":%s}}`,
			stream, eventMs, eventMs, symbol, first, final, prev, levelsJSON(bids), levelsJSON(asks))
	}
	return fmt.Sprintf(`{"stream":%q,"data":{"e":"depthUpdate","E":%d,"s":%q,"U":%d,"u":%d,"b":%s,"a":%s}}`,
		stream, eventMs, symbol, first, final, levelsJSON(bids), levelsJSON(asks))
}

// DeleteRow rewrites a sealed Parquet file without row i, keeping its
// schema and key-value metadata (and the manifest beside it untouched):
// a file damaged after the writer sealed it.
func DeleteRow(tb testing.TB, path string, i int64) {
	tb.Helper()
	ctx := context.Background()
	in, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	pf, err := file.NewParquetReader(in)
	if err != nil {
		tb.Fatal(err)
	}
	kv := pf.MetaData().KeyValueMetadata()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		tb.Fatal(err)
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	_ = pf.Close()
	defer tbl.Release()
	n := tbl.NumRows()
	if i < 0 || i >= n {
		tb.Fatalf("row %d of %d", i, n)
	}
	cols := make([]arrow.Column, tbl.NumCols())
	for c := range cols {
		whole, err := array.Concatenate(tbl.Column(c).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			tb.Fatal(err)
		}
		parts := []arrow.Array{array.NewSlice(whole, 0, i), array.NewSlice(whole, i+1, n)}
		kept, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			tb.Fatal(err)
		}
		ch := arrow.NewChunked(whole.DataType(), []arrow.Array{kept})
		cols[c] = *arrow.NewColumn(tbl.Schema().Field(c), ch)
	}
	out := array.NewTable(tbl.Schema(), cols, n-1)
	defer out.Release()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		tb.Fatal(err)
	}
	fw, err := pqarrow.NewFileWriter(tbl.Schema(), f, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd)),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		tb.Fatal(err)
	}
	if err := fw.WriteTable(out, 16384); err != nil {
		tb.Fatal(err)
	}
	for j, k := range kv.Keys() {
		v := kv.Values()[j]
		if k == "depthcap.rows" {
			v = strconv.FormatInt(n-1, 10)
		}
		if strings.HasPrefix(k, "depthcap.") {
			if err := fw.AppendKeyValueMetadata(k, v); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := fw.Close(); err != nil { // closes f
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// Applied is a diff event the reference book applied.
type Applied struct {
	Line  int // index in the recording's lines
	Frame Frame
	Recv  int64
	After *RefBook // the book after it, for the events Follow was asked to keep
	Prev  *RefBook // the book before it, likewise
}

// Follow runs a reference book over a recording: the first snapshot of
// symbol ("" means the first snapshot's symbol), then every diff of that
// symbol in the recording's order by the textbook rules (events that
// bridge the snapshot may have been received before it). It fails on any
// break of the rules, and keeps copies of the book around the events for
// which keep(k) is true (k counts the applied events from 0).
func Follow(tb testing.TB, m md.Market, symbol string, lines []Line, keep func(k int) bool) (string, []Applied) {
	tb.Helper()
	var ref *RefBook
	for _, l := range lines {
		if f, ok := Decode(tb, l.JSON); ok && f.Kind == md.Snapshot && (symbol == "" || f.Symbol == symbol) {
			ref, symbol = NewRefBook(tb, f.LastUpdateID, f.Bids, f.Asks), f.Symbol
			break
		}
	}
	if ref == nil {
		tb.Fatalf("reference: no snapshot of %q", symbol)
	}
	var out []Applied
	for i, l := range lines {
		f, ok := Decode(tb, l.JSON)
		if !ok || f.Kind != md.Diff || f.Symbol != symbol {
			continue
		}
		stale := f.Final <= ref.Last
		if m == md.Futures {
			stale = f.Final < ref.Last
		}
		if stale {
			continue
		}
		if len(out) == 0 {
			bridge := f.U <= ref.Last+1
			if m == md.Futures {
				bridge = f.U <= ref.Last
			}
			if !bridge {
				tb.Fatalf("reference: first event [%d, %d] does not bridge %d", f.U, f.Final, ref.Last)
			}
		} else if prev := out[len(out)-1].Frame; m == md.Spot && f.U != prev.Final+1 || m == md.Futures && f.PU != prev.Final {
			tb.Fatalf("reference: event [%d, %d] does not follow %d", f.U, f.Final, prev.Final)
		}
		a := Applied{Line: i, Frame: f, Recv: l.RecvNs}
		k := len(out)
		if keep(k) {
			a.Prev = ref.Clone()
		}
		ref.Apply(tb, f)
		if keep(k) {
			a.After = ref.Clone()
		}
		out = append(out, a)
	}
	return symbol, out
}

// DepthLines keeps the depth frames of a recording (diff, partial, REST
// snapshot): the importer skips the other streams (trades, bookTicker), so
// tests that only need the depth data import a smaller file.
func DepthLines(lines []Line) []Line {
	var out []Line
	for _, l := range lines {
		if strings.Contains(l.JSON, `@depth`) {
			out = append(out, l)
		}
	}
	return out
}

// DepthOnly writes the depth frames of the recording at src into dir
// under the same name (which carries the market) and returns the path.
func DepthOnly(tb testing.TB, src, dir string) string {
	tb.Helper()
	dst := filepath.Join(dir, filepath.Base(src))
	WriteLines(tb, dst, DepthLines(ReadLines(tb, src)))
	return dst
}
