package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/depthcap/depthcap/pkg/book"
	"github.com/depthcap/depthcap/pkg/md"
)

// Row is one row of any kind. Bids and Asks alias the reader's buffers and
// are valid until the next call to Next.
type Row struct {
	Kind  md.Kind
	File  int   // index of the file in the reader's inputs
	Index int64 // row number within its file

	ReceivedUs int64 // received_time, µs since the epoch
	EventUs    int64 // event_time (0 when null or absent)
	TxUs       int64 // transaction_time (futures; 0 when absent)
	RequestUs  int64 // request_time (snapshots; 0 when null)

	FirstID  int64 // first_update_id (U); HasFirst false when null (spot partials)
	FinalID  int64 // final_update_id (u; spot partials: lastUpdateId)
	PrevID   int64 // prev_final_update_id (pu, futures)
	HasFirst bool
	HasPrev  bool

	LastUpdateID int64 // last_update_id (snapshots)
	Limit        int32 // limit (snapshots; 0 when null)

	Bids, Asks []book.Level
}

// ID is the row's sequence id: u for diffs and partials, lastUpdateId for
// snapshots.
func (r *Row) ID() int64 {
	if r.Kind == md.Snapshot {
		return r.LastUpdateID
	}
	return r.FinalID
}

// Filter selects rows while reading.
type Filter struct {
	// MaxReceivedUs skips rows received after it (inclusive bound); 0 means
	// no bound. Row groups whose received_time minimum is above it are not
	// read at all.
	MaxReceivedUs int64
	// MinReceivedUs skips rows received before it; 0 means no bound. Row
	// groups whose received_time maximum is below it are not read.
	MinReceivedUs int64
	// MinID skips row groups whose sequence ids (final_update_id or
	// last_update_id) are all at or below it, using the row-group
	// statistics; rows of the groups read are not filtered. 0 means none.
	MinID int64
}

// BatchRows is the number of rows decoded at a time. Together with the
// writer's row groups (16384 rows) it bounds a reader's memory.
const BatchRows = 4096

// Column names (SCHEMA.md).
const (
	colRequestTime  = "request_time"
	colReceivedTime = "received_time"
	colEventTime    = "event_time"
	colTxTime       = "transaction_time"
	colFirstID      = "first_update_id"
	colFinalID      = "final_update_id"
	colPrevID       = "prev_final_update_id"
	colLastID       = "last_update_id"
	colLimit        = "limit"
	colBidPrices    = "bid_prices"
	colBidSizes     = "bid_sizes"
	colAskPrices    = "ask_prices"
	colAskSizes     = "ask_sizes"
)

var readCols = []string{colRequestTime, colReceivedTime, colEventTime, colTxTime, colFirstID, colFinalID, colPrevID,
	colLastID, colLimit, colBidPrices, colBidSizes, colAskPrices, colAskSizes}

// FileReader reads the rows of one Parquet file in file order, one row
// group (and within it BatchRows rows) at a time.
type FileReader struct {
	rel    string
	kind   md.Kind
	index  int // File in the rows
	filter Filter

	obj    Object
	pf     *file.Reader
	fr     *pqarrow.FileReader
	leaves []int // leaf column indices to read
	groups []int // row groups to read
	gi     int
	gstart []int64 // first row number of each row group

	rr     pqarrow.RecordReader
	rec    arrow.RecordBatch
	ri, rn int
	base   int64 // row number of the record's first row
	cols   recCols
	row    Row
}

type recCols struct {
	req, recv, ev, tx     *array.Timestamp
	first, final, prev    *array.Int64
	last                  *array.Int64
	limit                 *array.Int32
	bidPx, bidSz          *array.List
	askPx, askSz          *array.List
	bidPxV, bidSzV        []float64
	askPxV, askSzV        []float64
	hasEv, hasTx, hasPrev bool
}

// OpenFile opens the file rel of kind k from st; index is copied into
// every Row.File.
func OpenFile(ctx context.Context, st Store, rel string, k md.Kind, index int, f Filter) (*FileReader, error) {
	obj, err := st.Open(ctx, rel)
	if err != nil {
		return nil, err
	}
	r := &FileReader{rel: rel, kind: k, index: index, filter: f, obj: obj}
	if err := r.init(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// allocator allocates the decoded batches (tests swap in a checked one).
var allocator memory.Allocator = memory.DefaultAllocator

func (r *FileReader) init() error {
	pf, err := file.NewParquetReader(r.obj, file.WithReadProps(parquet.NewReaderProperties(allocator)))
	if err != nil {
		return fmt.Errorf("parquet %s: %w", r.rel, err)
	}
	r.pf = pf
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: BatchRows}, allocator)
	if err != nil {
		return fmt.Errorf("parquet %s: %w", r.rel, err)
	}
	r.fr = fr
	sc := pf.MetaData().Schema
	for _, name := range readCols {
		leaf := name
		switch name {
		case colBidPrices, colBidSizes, colAskPrices, colAskSizes:
			leaf = name + ".list.element"
		}
		if i := sc.ColumnIndexByName(leaf); i >= 0 {
			r.leaves = append(r.leaves, i)
		}
	}
	if sc.ColumnIndexByName(colReceivedTime) < 0 {
		return fmt.Errorf("parquet %s: no %s column", r.rel, colReceivedTime)
	}
	recvLeaf := sc.ColumnIndexByName(colReceivedTime)
	idLeaf := sc.ColumnIndexByName(colFinalID)
	if r.kind == md.Snapshot {
		idLeaf = sc.ColumnIndexByName(colLastID)
	}
	n := pf.NumRowGroups()
	r.gstart = make([]int64, n+1)
	for g := range n {
		rg := pf.MetaData().RowGroup(g)
		r.gstart[g+1] = r.gstart[g] + rg.NumRows()
		if lo, hi, ok := int64Stats(rg, recvLeaf); ok {
			if r.filter.MaxReceivedUs != 0 && lo > r.filter.MaxReceivedUs || r.filter.MinReceivedUs != 0 && hi < r.filter.MinReceivedUs {
				continue
			}
		}
		if r.filter.MinID != 0 && idLeaf >= 0 {
			if _, hi, ok := int64Stats(rg, idLeaf); ok && hi <= r.filter.MinID {
				continue
			}
		}
		r.groups = append(r.groups, g)
	}
	return nil
}

// int64Stats returns the min and max of an int64 column chunk when the
// file has them.
func int64Stats(rg *metadata.RowGroupMetaData, leaf int) (lo, hi int64, ok bool) {
	if leaf < 0 {
		return 0, 0, false
	}
	cc, err := rg.ColumnChunk(leaf)
	if err != nil {
		return 0, 0, false
	}
	if set, err := cc.StatsSet(); err != nil || !set {
		return 0, 0, false
	}
	st, err := cc.Statistics()
	if err != nil || st == nil || !st.HasMinMax() {
		return 0, 0, false
	}
	s, isInt := st.(*metadata.Int64Statistics)
	if !isInt {
		return 0, 0, false
	}
	return s.Min(), s.Max(), true
}

// Next returns the next row, or io.EOF.
func (r *FileReader) Next(ctx context.Context) (*Row, error) {
	for {
		if r.rec != nil && r.ri < r.rn {
			i := r.ri
			r.ri++
			if r.fill(i) {
				return &r.row, nil
			}
			continue
		}
		if err := r.nextRecord(ctx); err != nil {
			return nil, err
		}
	}
}

func (r *FileReader) releaseRecord() {
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
}

// nextRecord loads the next batch, opening the next row group as needed.
func (r *FileReader) nextRecord(ctx context.Context) error {
	if r.rec != nil {
		r.base += int64(r.rn)
	}
	r.releaseRecord()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.rr != nil {
			if r.rr.Next() {
				rec := r.rr.RecordBatch()
				rec.Retain()
				r.rec, r.ri, r.rn = rec, 0, int(rec.NumRows())
				if err := r.bind(rec); err != nil {
					return err
				}
				return nil
			}
			err := r.rr.Err()
			r.rr.Release()
			r.rr = nil
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("parquet %s: %w", r.rel, err)
			}
		}
		if r.gi >= len(r.groups) {
			return io.EOF
		}
		g := r.groups[r.gi]
		r.gi++
		rr, err := r.fr.GetRecordReader(ctx, r.leaves, []int{g})
		if err != nil {
			return fmt.Errorf("parquet %s row group %d: %w", r.rel, g, err)
		}
		r.rr = rr
		r.base = r.gstart[g]
	}
}

func (r *FileReader) bind(rec arrow.RecordBatch) error {
	c := recCols{}
	sc := rec.Schema()
	col := func(name string) arrow.Array {
		if idx := sc.FieldIndices(name); len(idx) > 0 {
			return rec.Column(idx[0])
		}
		return nil
	}
	ts := func(name string) *array.Timestamp {
		a, _ := col(name).(*array.Timestamp)
		return a
	}
	i64 := func(name string) *array.Int64 {
		a, _ := col(name).(*array.Int64)
		return a
	}
	list := func(name string) (*array.List, []float64, error) {
		l, ok := col(name).(*array.List)
		if !ok {
			return nil, nil, fmt.Errorf("parquet %s: column %s is not list<double>", r.rel, name)
		}
		v, ok := l.ListValues().(*array.Float64)
		if !ok {
			return nil, nil, fmt.Errorf("parquet %s: column %s is not list<double>", r.rel, name)
		}
		return l, v.Float64Values(), nil
	}
	c.req, c.recv, c.ev, c.tx = ts(colRequestTime), ts(colReceivedTime), ts(colEventTime), ts(colTxTime)
	c.first, c.final, c.prev, c.last = i64(colFirstID), i64(colFinalID), i64(colPrevID), i64(colLastID)
	c.limit, _ = col(colLimit).(*array.Int32)
	c.hasEv, c.hasTx, c.hasPrev = c.ev != nil, c.tx != nil, c.prev != nil
	if c.recv == nil {
		return fmt.Errorf("parquet %s: %s is not a timestamp column", r.rel, colReceivedTime)
	}
	if r.kind == md.Snapshot && c.last == nil || r.kind != md.Snapshot && c.final == nil {
		return fmt.Errorf("parquet %s: no sequence id column for kind %s", r.rel, r.kind)
	}
	var err error
	if c.bidPx, c.bidPxV, err = list(colBidPrices); err != nil {
		return err
	}
	if c.bidSz, c.bidSzV, err = list(colBidSizes); err != nil {
		return err
	}
	if c.askPx, c.askPxV, err = list(colAskPrices); err != nil {
		return err
	}
	if c.askSz, c.askSzV, err = list(colAskSizes); err != nil {
		return err
	}
	r.cols = c
	return nil
}

// fill decodes row i of the current record into r.row; false when the
// filter skips it.
func (r *FileReader) fill(i int) bool {
	c := &r.cols
	recv := int64(c.recv.Value(i))
	if r.filter.MaxReceivedUs != 0 && recv > r.filter.MaxReceivedUs || recv < r.filter.MinReceivedUs {
		return false
	}
	row := &r.row
	*row = Row{Kind: r.kind, File: r.index, Index: r.base + int64(i), ReceivedUs: recv, Bids: row.Bids[:0], Asks: row.Asks[:0]}
	optTs := func(a *array.Timestamp) int64 {
		if a == nil || a.IsNull(i) {
			return 0
		}
		return int64(a.Value(i))
	}
	row.EventUs, row.TxUs, row.RequestUs = optTs(c.ev), optTs(c.tx), optTs(c.req)
	if c.first != nil && c.first.IsValid(i) {
		row.FirstID, row.HasFirst = c.first.Value(i), true
	}
	if c.final != nil {
		row.FinalID = c.final.Value(i)
	}
	if c.prev != nil && c.prev.IsValid(i) {
		row.PrevID, row.HasPrev = c.prev.Value(i), true
	}
	if c.last != nil {
		row.LastUpdateID = c.last.Value(i)
	}
	if c.limit != nil && c.limit.IsValid(i) {
		row.Limit = c.limit.Value(i)
	}
	row.Bids = appendLevels(row.Bids, c.bidPx, c.bidPxV, c.bidSz, c.bidSzV, i)
	row.Asks = appendLevels(row.Asks, c.askPx, c.askPxV, c.askSz, c.askSzV, i)
	return true
}

func appendLevels(dst []book.Level, px *array.List, pxv []float64, sz *array.List, szv []float64, i int) []book.Level {
	ps, pe := px.ValueOffsets(i)
	ss, se := sz.ValueOffsets(i)
	n := min(pe-ps, se-ss) // equal in valid files
	for j := range n {
		dst = append(dst, book.Level{Price: pxv[ps+j], Qty: szv[ss+j]})
	}
	return dst
}

// Close releases the reader.
func (r *FileReader) Close() {
	r.releaseRecord()
	if r.rr != nil {
		r.rr.Release()
		r.rr = nil
	}
	if r.pf != nil {
		_ = r.pf.Close() // closes r.obj
		r.pf, r.obj = nil, nil
	}
	if r.obj != nil {
		_ = r.obj.Close()
		r.obj = nil
	}
}
