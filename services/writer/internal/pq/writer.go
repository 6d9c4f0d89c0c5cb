package pq

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/depthcap/depthcap/services/writer/internal/rows"
)

// Encoding names a per-column encoding choice.
type Encoding string

// Encodings measured for the level lists and the integer columns
// (docs/ARCHITECTURE.md has the table).
const (
	EncPlain Encoding = "plain"
	EncDict  Encoding = "dict"
	EncBSS   Encoding = "bss"   // BYTE_STREAM_SPLIT (floats)
	EncDelta Encoding = "delta" // DELTA_BINARY_PACKED (integers)
)

// Options are the Parquet writer settings.
type Options struct {
	ZstdLevel    int
	RowGroupRows int
	// PriceEnc applies to bid_prices/ask_prices, SizeEnc to the sizes,
	// IntEnc to the timestamp and id columns.
	PriceEnc, SizeEnc, IntEnc Encoding
	// DataPageSize is the uncompressed size at which data pages are cut;
	// every page is compressed on its own, so larger pages compress better.
	DataPageSize int64
	// PageV1 writes DataPageV1 pages, whose repetition and definition
	// levels are compressed with the values (V2 leaves them raw).
	PageV1 bool
	// Mem allocates the Arrow builders and the Parquet writer's buffers.
	Mem memory.Allocator
}

// DefaultOptions are the measured defaults (docs/ARCHITECTURE.md).
func DefaultOptions() Options {
	return Options{ZstdLevel: 3, RowGroupRows: 16384, PriceEnc: EncDict, SizeEnc: EncDict, IntEnc: EncDelta, DataPageSize: 1 << 20, PageV1: true}
}

func (o Options) mem() memory.Allocator {
	if o.Mem == nil {
		return memory.DefaultAllocator
	}
	return o.Mem
}

func (o Options) props(schema *arrow.Schema) *parquet.WriterProperties {
	p := []parquet.WriterProperty{
		parquet.WithAllocator(o.mem()),
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(o.ZstdLevel),
		parquet.WithMaxRowGroupLength(int64(o.RowGroupRows)),
		parquet.WithVersion(parquet.V2_LATEST),
		parquet.WithCreatedBy("depthcap-writer"),
	}
	if o.PageV1 {
		p = append(p, parquet.WithDataPageVersion(parquet.DataPageV1))
	} else {
		p = append(p, parquet.WithDataPageVersion(parquet.DataPageV2))
	}
	if o.DataPageSize > 0 {
		p = append(p, parquet.WithDataPageSize(o.DataPageSize))
	}
	for _, f := range schema.Fields() {
		var enc Encoding
		path := f.Name
		switch f.Name {
		case ColBidPrices, ColAskPrices:
			enc, path = o.PriceEnc, f.Name+".list.element"
		case ColBidSizes, ColAskSizes:
			enc, path = o.SizeEnc, f.Name+".list.element"
		case ColSymbol:
			enc = EncDict
		default:
			enc = o.IntEnc
		}
		switch enc {
		case EncDict:
			p = append(p, parquet.WithDictionaryFor(path, true))
		case EncPlain:
			p = append(p, parquet.WithDictionaryFor(path, false), parquet.WithEncodingFor(path, parquet.Encodings.Plain))
		case EncBSS:
			p = append(p, parquet.WithDictionaryFor(path, false), parquet.WithEncodingFor(path, parquet.Encodings.ByteStreamSplit))
		case EncDelta:
			p = append(p, parquet.WithDictionaryFor(path, false), parquet.WithEncodingFor(path, parquet.Encodings.DeltaBinaryPacked))
		}
	}
	return parquet.NewWriterProperties(p...)
}

// Meta is the key-value metadata of a file, all deterministic.
type Meta struct {
	Producer      string
	Market        string
	Kind          string
	Symbol        string
	PeriodStart   string // RFC 3339, UTC
	PeriodSeconds int64
	Supplement    int
	FirstSeq      uint64
	LastSeq       uint64
	GapCount      int
}

// Metadata key names (prefix "depthcap.").
const (
	KeySchemaVersion = "depthcap.schema_version"
	KeyProducer      = "depthcap.producer"
	KeyRows          = "depthcap.rows"
	KeyFirstSeq      = "depthcap.first_stream_seq"
	KeyLastSeq       = "depthcap.last_stream_seq"
	KeyFirstUpdateID = "depthcap.first_update_id"
	KeyLastUpdateID  = "depthcap.last_update_id"
	KeyGapCount      = "depthcap.gap_count"
	KeyMarket        = "depthcap.market"
	KeyKind          = "depthcap.kind"
	KeySymbol        = "depthcap.symbol"
	KeyPeriodStart   = "depthcap.period_start"
	KeyPeriodSeconds = "depthcap.period_seconds"
	KeySupplement    = "depthcap.supplement"
)

// FileWriter writes rows of one layout and symbol to a Parquet stream in
// row groups of exactly Options.RowGroupRows rows (the last one may be
// shorter), whatever the sizes of the WriteRows calls: the output bytes
// depend only on the rows.
type FileWriter struct {
	layout  rows.Layout
	symbol  string
	opts    Options
	schema  *arrow.Schema
	fw      *pqarrow.FileWriter
	pending rows.Rows
	b       *array.RecordBuilder

	rows             int64
	firstID, lastID  int64
	scratchOff       []int32
	scratchValid     []bool
	scratchStrs      []string
	scratchTsValid   []bool
	closed, haveRows bool
}

// NewFileWriter starts a Parquet stream on w. w must not be an io.Closer
// that the caller wants to keep open: pass a wrapper (see NoClose).
func NewFileWriter(w io.Writer, l rows.Layout, symbol string, opts Options) (*FileWriter, error) {
	if opts.RowGroupRows <= 0 {
		return nil, fmt.Errorf("parquet writer: row group rows %d", opts.RowGroupRows)
	}
	schema := Schema(l)
	mem := opts.mem()
	fw, err := pqarrow.NewFileWriter(schema, w, opts.props(schema), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(mem)))
	if err != nil {
		return nil, fmt.Errorf("parquet writer: %w", err)
	}
	return &FileWriter{layout: l, symbol: symbol, opts: opts, schema: schema, fw: fw, b: array.NewRecordBuilder(mem, schema)}, nil
}

// NoClose hides the Close method of a writer, so that
// pqarrow.FileWriter.Close does not close a file the caller must still
// fsync.
type NoClose struct{ W io.Writer }

func (n NoClose) Write(p []byte) (int, error) { return n.W.Write(p) }

// WriteRows appends rows [from, to) of r.
func (w *FileWriter) WriteRows(r *rows.Rows, from, to int) error {
	for i := from; i < to; i++ {
		w.track(r, i)
	}
	rg := w.opts.RowGroupRows
	for from < to {
		if w.pending.N == 0 && to-from >= rg {
			// A whole row group straight from the source.
			if err := w.writeGroup(r, from, from+rg); err != nil {
				return err
			}
			from += rg
			continue
		}
		n := min(rg-w.pending.N, to-from)
		w.pending.AppendRows(r, from, from+n)
		from += n
		if w.pending.N == rg {
			if err := w.flushPending(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *FileWriter) track(r *rows.Rows, i int) {
	first, last := r.FirstID(i), r.SeqID(i)
	if !w.haveRows {
		w.firstID, w.lastID, w.haveRows = first, last, true
	}
	w.firstID = min(w.firstID, first)
	w.lastID = max(w.lastID, last)
	w.rows++
}

func (w *FileWriter) flushPending() error {
	if w.pending.N == 0 {
		return nil
	}
	err := w.writeGroup(&w.pending, 0, w.pending.N)
	w.pending.Reset()
	return err
}

// Rows is the number of rows written so far.
func (w *FileWriter) Rows() int64 { return w.rows }

// UpdateIDRange is the lowest first update id and the highest sequence id
// of the rows written so far.
func (w *FileWriter) UpdateIDRange() (int64, int64) { return w.firstID, w.lastID }

// Close flushes the last row group, writes the metadata and the footer.
// It does not close the underlying writer when that is wrapped in NoClose.
func (w *FileWriter) Close(m Meta) error {
	if w.closed {
		return errors.New("parquet writer: closed twice")
	}
	w.closed = true
	defer w.b.Release()
	if err := w.flushPending(); err != nil {
		_ = w.fw.Close()
		return err
	}
	kv := [][2]string{
		{KeySchemaVersion, SchemaVersion},
		{KeyProducer, m.Producer},
		{KeyRows, strconv.FormatInt(w.rows, 10)},
		{KeyFirstSeq, strconv.FormatUint(m.FirstSeq, 10)},
		{KeyLastSeq, strconv.FormatUint(m.LastSeq, 10)},
		{KeyFirstUpdateID, strconv.FormatInt(w.firstID, 10)},
		{KeyLastUpdateID, strconv.FormatInt(w.lastID, 10)},
		{KeyGapCount, strconv.Itoa(m.GapCount)},
		{KeyMarket, m.Market},
		{KeyKind, m.Kind},
		{KeySymbol, m.Symbol},
		{KeyPeriodStart, m.PeriodStart},
		{KeyPeriodSeconds, strconv.FormatInt(m.PeriodSeconds, 10)},
		{KeySupplement, strconv.Itoa(m.Supplement)},
	}
	for _, p := range kv {
		if err := w.fw.AppendKeyValueMetadata(p[0], p[1]); err != nil {
			_ = w.fw.Close()
			return fmt.Errorf("parquet metadata %s: %w", p[0], err)
		}
	}
	if err := w.fw.Close(); err != nil {
		return fmt.Errorf("parquet close: %w", err)
	}
	return nil
}

// Abort releases the writer's memory after a failure; the output is
// garbage and must be discarded.
func (w *FileWriter) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.b.Release()
	_ = w.fw.Close()
}

// writeGroup writes rows [from, to) of r as one row group.
func (w *FileWriter) writeGroup(r *rows.Rows, from, to int) error {
	rec := w.buildRecord(r, from, to)
	defer rec.Release()
	if err := w.fw.Write(rec); err != nil {
		return fmt.Errorf("parquet write row group: %w", err)
	}
	return nil
}

func asTimestamps(v []int64) []arrow.Timestamp {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*arrow.Timestamp)(unsafe.Pointer(&v[0])), len(v))
}

func (w *FileWriter) trueValid(n int) []bool {
	if cap(w.scratchValid) < n {
		w.scratchValid = make([]bool, n)
		for i := range w.scratchValid {
			w.scratchValid[i] = true
		}
	}
	return w.scratchValid[:n]
}

// buildRecord builds an Arrow record of rows [from, to) of r.
func (w *FileWriter) buildRecord(r *rows.Rows, from, to int) arrow.RecordBatch {
	n := to - from
	for i, f := range w.schema.Fields() {
		fb := w.b.Field(i)
		switch f.Name {
		case ColRequestTime:
			vals := r.ReqUs[from:to]
			valid := w.scratchTsValid[:0]
			for _, v := range vals {
				valid = append(valid, v != 0)
			}
			w.scratchTsValid = valid
			fb.(*array.TimestampBuilder).AppendValues(asTimestamps(vals), valid)
		case ColReceivedTime:
			fb.(*array.TimestampBuilder).AppendValues(asTimestamps(r.RecvUs[from:to]), nil)
		case ColEventTime:
			if len(r.EventUs) == 0 {
				fb.AppendNulls(n)
			} else {
				fb.(*array.TimestampBuilder).AppendValues(asTimestamps(r.EventUs[from:to]), nil)
			}
		case ColTransactionTime:
			fb.(*array.TimestampBuilder).AppendValues(asTimestamps(r.TxUs[from:to]), nil)
		case ColSymbol:
			if cap(w.scratchStrs) < n {
				w.scratchStrs = make([]string, n)
			}
			s := w.scratchStrs[:n]
			for i := range s {
				s[i] = w.symbol
			}
			fb.(*array.StringBuilder).AppendValues(s, nil)
		case ColFirstUpdateID:
			if len(r.First) == 0 {
				fb.AppendNulls(n)
			} else {
				fb.(*array.Int64Builder).AppendValues(r.First[from:to], nil)
			}
		case ColFinalUpdateID:
			fb.(*array.Int64Builder).AppendValues(r.Final[from:to], nil)
		case ColPrevFinalID:
			fb.(*array.Int64Builder).AppendValues(r.Prev[from:to], nil)
		case ColLastUpdateID:
			fb.(*array.Int64Builder).AppendValues(r.Last[from:to], nil)
		case ColLimit:
			vals := r.Limit[from:to]
			valid := w.scratchTsValid[:0]
			for _, v := range vals {
				valid = append(valid, v != 0)
			}
			w.scratchTsValid = valid
			fb.(*array.Int32Builder).AppendValues(vals, valid)
		case ColBidPrices:
			w.appendList(fb, r.BidOff, r.BidPx, from, to)
		case ColBidSizes:
			w.appendList(fb, r.BidOff, r.BidQty, from, to)
		case ColAskPrices:
			w.appendList(fb, r.AskOff, r.AskPx, from, to)
		case ColAskSizes:
			w.appendList(fb, r.AskOff, r.AskQty, from, to)
		}
	}
	return w.b.NewRecordBatch()
}

func (w *FileWriter) appendList(fb array.Builder, off []int32, vals []float64, from, to int) {
	lb := fb.(*array.ListBuilder)
	vb := lb.ValueBuilder().(*array.Float64Builder)
	base := int32(vb.Len()) - off[from]
	o := w.scratchOff[:0]
	for _, x := range off[from:to] {
		o = append(o, x+base)
	}
	w.scratchOff = o
	lb.AppendValues(o, w.trueValid(to-from))
	vb.AppendValues(vals[off[from]:off[to]], nil)
}
