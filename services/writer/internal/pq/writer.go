package pq

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

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
	// DictPageSize is the dictionary size (bytes, per column chunk) past
	// which a dictionary-encoded column falls back to PLAIN for the rest
	// of the row group.
	DictPageSize int64
	// PageV1 writes DataPageV1 pages, whose repetition and definition
	// levels are compressed with the values (V2 leaves them raw).
	PageV1 bool

	// NoLevelStats leaves the min/max statistics out of the level
	// columns (a list element's row-group range is of no use to readers'
	// filters).
	NoLevelStats bool
	// Mem allocates the Parquet writer's buffers.
	Mem memory.Allocator
}

// DefaultOptions are the measured defaults (docs/ARCHITECTURE.md).
func DefaultOptions() Options {
	return Options{ZstdLevel: 1, RowGroupRows: 16384, PriceEnc: EncDict, SizeEnc: EncDict, IntEnc: EncDelta,
		DataPageSize: 1 << 20, DictPageSize: 4 << 20, PageV1: true}
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
	if o.DictPageSize > 0 {
		p = append(p, parquet.WithDictionaryPageSizeLimit(o.DictPageSize))
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
		if o.NoLevelStats && path != f.Name {
			p = append(p, parquet.WithStatsFor(path, false))
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

// layoutSchema is what every file of a layout shares: the Parquet schema
// (pqarrow's mapping of the Arrow schema, so that Arrow readers get the
// same types as from pqarrow) and the serialized Arrow schema that
// pqarrow.WithStoreSchema would store under "ARROW:schema".
type layoutSchema struct {
	arrow     *arrow.Schema
	parquet   *schema.Schema
	arrowMeta string
	err       error
}

var (
	schemaMu    sync.Mutex
	schemaCache = map[rows.Layout]*layoutSchema{}
)

func schemaFor(l rows.Layout) (*layoutSchema, error) {
	schemaMu.Lock()
	defer schemaMu.Unlock()
	if s := schemaCache[l]; s != nil {
		return s, s.err
	}
	s := &layoutSchema{arrow: Schema(l)}
	s.parquet, s.err = pqarrow.ToParquet(s.arrow, parquet.NewWriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if s.err == nil {
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(s.arrow))
		s.err = w.Close()
		s.arrowMeta = base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	schemaCache[l] = s
	return s, s.err
}

// FileWriter writes rows of one layout and symbol to a Parquet stream in
// row groups of exactly Options.RowGroupRows rows (the last one may be
// shorter), whatever the sizes of the WriteRows calls: the output bytes
// depend only on the rows.
//
// It drives arrow-go's low-level column writers directly from the row
// buffer's columns (no Arrow arrays in between): each row group is one
// WriteBatch call per column, so page cuts, dictionaries and statistics
// are a function of the row group's rows.
type FileWriter struct {
	layout  rows.Layout
	symbol  parquet.ByteArray
	opts    Options
	schema  *layoutSchema
	fw      *file.Writer
	pending rows.Rows

	rows             int64
	firstID, lastID  int64
	times            TimeRange
	closed, haveRows bool
	scratch          []byte // decompression buffer of version 1 chunks

	// scratch, reused across row groups
	def, rep []int16 // list levels (shared by prices and sizes)
	optDef   []int16 // nullable scalar columns
	optI64   []int64
	optI32   []int32
	symbols  []parquet.ByteArray
}

// NewFileWriter starts a Parquet stream on w. w must not be an io.Closer
// that the caller wants to keep open: pass a wrapper (see NoClose).
func NewFileWriter(w io.Writer, l rows.Layout, symbol string, opts Options) (*FileWriter, error) {
	if opts.RowGroupRows <= 0 {
		return nil, fmt.Errorf("parquet writer: row group rows %d", opts.RowGroupRows)
	}
	ls, err := schemaFor(l)
	if err != nil {
		return nil, fmt.Errorf("parquet schema: %w", err)
	}
	meta := metadata.NewKeyValueMetadata()
	if err := meta.Append("ARROW:schema", ls.arrowMeta); err != nil {
		return nil, fmt.Errorf("parquet metadata: %w", err)
	}
	fw, err := file.NewParquetWriterWithError(w, ls.parquet.Root(), file.WithWriterProps(opts.props(ls.arrow)), file.WithWriteMetadata(meta))
	if err != nil {
		return nil, fmt.Errorf("parquet writer: %w", err)
	}
	return &FileWriter{layout: l, symbol: parquet.ByteArray(symbol), opts: opts, schema: ls, fw: fw}, nil
}

// NoClose hides the Close method of a writer, so that the Parquet
// writer's Close does not close a file the caller must still fsync.
type NoClose struct{ W io.Writer }

func (n NoClose) Write(p []byte) (int, error) { return n.W.Write(p) }

// WriteRows appends rows [from, to) of r.
func (w *FileWriter) WriteRows(r *rows.Rows, from, to int) error {
	if w.closed {
		return errors.New("parquet writer: closed")
	}
	for i := from; i < to; i++ {
		w.track(r, i)
	}
	rg := w.opts.RowGroupRows
	for w.pending.N == 0 && to-from >= rg {
		// A whole row group straight from the source.
		if err := w.writeGroup(r, from, from+rg); err != nil {
			return err
		}
		from += rg
	}
	w.pending.AppendRows(r, from, to)
	return w.flushFull()
}

// WriteChunk appends the rows of an encoded chunk (rows.AppendChunk),
// decoding it straight into the pending row group.
func (w *FileWriter) WriteChunk(chunk []byte) error {
	if w.closed {
		return errors.New("parquet writer: closed")
	}
	n0 := w.pending.N
	var err error
	if w.scratch, err = w.pending.DecodeChunk(chunk, w.scratch); err != nil {
		return err
	}
	for i := n0; i < w.pending.N; i++ {
		w.track(&w.pending, i)
	}
	return w.flushFull()
}

// flushFull writes every complete row group of the pending rows and
// keeps the rest.
func (w *FileWriter) flushFull() error {
	rg := w.opts.RowGroupRows
	from := 0
	for w.pending.N-from >= rg {
		if err := w.writeGroup(&w.pending, from, from+rg); err != nil {
			return err
		}
		from += rg
	}
	w.pending.Discard(from)
	return nil
}

func (w *FileWriter) track(r *rows.Rows, i int) {
	first, last := r.FirstID(i), r.SeqID(i)
	if !w.haveRows {
		w.firstID, w.lastID, w.haveRows = first, last, true
	}
	w.firstID = min(w.firstID, first)
	w.lastID = max(w.lastID, last)
	t := &w.times
	recv := r.RecvUs[i]
	if w.rows == 0 {
		t.MinRecvUs, t.MaxRecvUs = recv, recv
	}
	t.MinRecvUs, t.MaxRecvUs = min(t.MinRecvUs, recv), max(t.MaxRecvUs, recv)
	if len(r.EventUs) > 0 {
		ev := r.EventUs[i]
		if t.MinEventUs == 0 || ev < t.MinEventUs {
			t.MinEventUs = ev
		}
		t.MaxEventUs = max(t.MaxEventUs, ev)
	}
	w.rows++
}

// TimeRange is the span of the rows' times, microseconds since the Unix
// epoch; the event times are 0 for layouts without them (spot partials
// and snapshots).
type TimeRange struct {
	MinRecvUs, MaxRecvUs   int64
	MinEventUs, MaxEventUs int64
}

// Times is the span of the times of the rows written so far.
func (w *FileWriter) Times() TimeRange { return w.times }

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
	if err := w.flushPending(); err != nil {
		w.Abort()
		return err
	}
	w.closed = true
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
	_ = w.fw.Close()
}

// writeGroup writes rows [from, to) of r as one row group: one
// WriteBatch per column, in schema order.
func (w *FileWriter) writeGroup(r *rows.Rows, from, to int) error {
	rg, err := w.fw.AppendRowGroupChecked()
	if err != nil {
		return fmt.Errorf("parquet row group: %w", err)
	}
	n := to - from
	listsReady := [2]bool{}
	for _, f := range w.schema.arrow.Fields() {
		cw, err := rg.NextColumn()
		if err != nil {
			return fmt.Errorf("parquet column %s: %w", f.Name, err)
		}
		switch f.Name {
		case ColRequestTime:
			err = w.writeOptInt64(cw, r.ReqUs[from:to])
		case ColReceivedTime:
			err = writeInt64(cw, r.RecvUs[from:to])
		case ColEventTime:
			if len(r.EventUs) == 0 {
				err = w.writeNulls(cw, n)
			} else {
				err = writeInt64(cw, r.EventUs[from:to])
			}
		case ColTransactionTime:
			err = writeInt64(cw, r.TxUs[from:to])
		case ColSymbol:
			err = w.writeSymbol(cw, n)
		case ColFirstUpdateID:
			if len(r.First) == 0 {
				err = w.writeNulls(cw, n)
			} else {
				err = writeInt64(cw, r.First[from:to])
			}
		case ColFinalUpdateID:
			err = writeInt64(cw, r.Final[from:to])
		case ColPrevFinalID:
			err = writeInt64(cw, r.Prev[from:to])
		case ColLastUpdateID:
			err = writeInt64(cw, r.Last[from:to])
		case ColLimit:
			err = w.writeOptInt32(cw, r.Limit[from:to])
		case ColBidPrices, ColBidSizes:
			if !listsReady[0] {
				w.listLevels(cw, r.BidOff, from, to)
				listsReady[0], listsReady[1] = true, false
			}
			vals := r.BidPx
			if f.Name == ColBidSizes {
				vals = r.BidQty
			}
			err = w.writeList(cw, vals[r.BidOff[from]:r.BidOff[to]])
		case ColAskPrices, ColAskSizes:
			if !listsReady[1] {
				w.listLevels(cw, r.AskOff, from, to)
				listsReady[0], listsReady[1] = false, true
			}
			vals := r.AskPx
			if f.Name == ColAskSizes {
				vals = r.AskQty
			}
			err = w.writeList(cw, vals[r.AskOff[from]:r.AskOff[to]])
		default:
			err = fmt.Errorf("no writer for column %s", f.Name)
		}
		if err != nil {
			return fmt.Errorf("parquet column %s: %w", f.Name, err)
		}
	}
	if err := rg.Close(); err != nil {
		return fmt.Errorf("parquet row group: %w", err)
	}
	return nil
}

func writeInt64(cw file.ColumnChunkWriter, vals []int64) error {
	_, err := cw.(*file.Int64ColumnChunkWriter).WriteBatch(vals, nil, nil)
	return err
}

// writeOptInt64 writes a nullable column where 0 means null.
func (w *FileWriter) writeOptInt64(cw file.ColumnChunkWriter, vals []int64) error {
	def, dense := w.optDef[:0], w.optI64[:0]
	for _, v := range vals {
		if v == 0 {
			def = append(def, 0)
			continue
		}
		def = append(def, 1)
		dense = append(dense, v)
	}
	w.optDef, w.optI64 = def, dense
	_, err := cw.(*file.Int64ColumnChunkWriter).WriteBatch(dense, def, nil)
	return err
}

// writeOptInt32 writes a nullable int32 column where 0 means null.
func (w *FileWriter) writeOptInt32(cw file.ColumnChunkWriter, vals []int32) error {
	def, dense := w.optDef[:0], w.optI32[:0]
	for _, v := range vals {
		if v == 0 {
			def = append(def, 0)
			continue
		}
		def = append(def, 1)
		dense = append(dense, v)
	}
	w.optDef, w.optI32 = def, dense
	_, err := cw.(*file.Int32ColumnChunkWriter).WriteBatch(dense, def, nil)
	return err
}

// writeNulls writes n nulls to a nullable column.
func (w *FileWriter) writeNulls(cw file.ColumnChunkWriter, n int) error {
	def := w.optDef[:0]
	for range n {
		def = append(def, 0)
	}
	w.optDef = def
	var err error
	switch c := cw.(type) {
	case *file.Int64ColumnChunkWriter:
		_, err = c.WriteBatch(nil, def, nil)
	case *file.Int32ColumnChunkWriter:
		_, err = c.WriteBatch(nil, def, nil)
	default:
		err = fmt.Errorf("nulls for %T", cw)
	}
	return err
}

func (w *FileWriter) writeSymbol(cw file.ColumnChunkWriter, n int) error {
	if len(w.symbols) < n {
		w.symbols = make([]parquet.ByteArray, n)
		for i := range w.symbols {
			w.symbols[i] = w.symbol
		}
	}
	_, err := cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(w.symbols[:n], nil, nil)
	return err
}

// listLevels fills the definition and repetition levels of rows
// [from, to) of a list column with offsets off: an empty list is one
// level (def 0), each element of a list is one level (def max: present,
// not null), the first of a row with rep 0.
func (w *FileWriter) listLevels(cw file.ColumnChunkWriter, off []int32, from, to int) {
	maxDef := cw.Descr().MaxDefinitionLevel()
	def, rep := w.def[:0], w.rep[:0]
	for i := from; i < to; i++ {
		k := int(off[i+1] - off[i])
		if k == 0 {
			def, rep = append(def, 0), append(rep, 0)
			continue
		}
		def, rep = append(def, maxDef), append(rep, 0)
		for j := 1; j < k; j++ {
			def, rep = append(def, maxDef), append(rep, 1)
		}
	}
	w.def, w.rep = def, rep
}

func (w *FileWriter) writeList(cw file.ColumnChunkWriter, vals []float64) error {
	_, err := cw.(*file.Float64ColumnChunkWriter).WriteBatch(vals, w.def, w.rep)
	return err
}
