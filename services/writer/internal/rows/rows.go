// Package rows holds the writer's in-memory row buffer: one exchange event
// per row, stored column-wise in plain Go slices so that appending a
// decoded event allocates nothing in steady state, and encoded into raw
// columnar chunks (chunk.go) for checkpoints and part files.
//
// Which columns a buffer uses depends on its Layout (market and kind); see
// SCHEMA.md for the Parquet columns each layout becomes.
package rows

import (
	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/md"
)

// Layout selects the columns of a market and kind.
type Layout struct {
	Market md.Market
	Kind   md.Kind
}

// Futures reports whether the layout carries the USD-M only columns
// (transaction_time, prev_final_update_id).
func (l Layout) Futures() bool { return l.Market == md.Futures }

// Rows is a column-wise buffer of events of one layout. Unused columns stay
// empty. Times are microseconds since the Unix epoch; 0 in ReqUs means
// "no request time" (null).
type Rows struct {
	N int

	RecvUs  []int64
	ReqUs   []int64 // snapshot only
	EventUs []int64 // diff, futures partial, futures snapshot
	TxUs    []int64 // futures only
	First   []int64 // U: diff, futures partial
	Final   []int64 // u: diff, partial (spot partial: lastUpdateId)
	Prev    []int64 // pu: futures diff and partial
	Last    []int64 // lastUpdateId: snapshot
	Limit   []int32 // snapshot

	// Level lists: row i's bids are BidPx[BidOff[i]:BidOff[i+1]].
	// The offset slices have N+1 entries once N > 0.
	BidOff, AskOff []int32
	BidPx, BidQty  []float64
	AskPx, AskQty  []float64
}

// Event is the data of one row, taken from the envelope and the decoded
// payload.
type Event struct {
	RecvNs, ReqNs int64
	Depth         *binance.Depth
	Limit         int32
}

// Reset empties r and keeps its capacity.
func (r *Rows) Reset() {
	r.N = 0
	r.RecvUs, r.ReqUs, r.EventUs, r.TxUs = r.RecvUs[:0], r.ReqUs[:0], r.EventUs[:0], r.TxUs[:0]
	r.First, r.Final, r.Prev, r.Last = r.First[:0], r.Final[:0], r.Prev[:0], r.Last[:0]
	r.Limit = r.Limit[:0]
	r.BidOff, r.AskOff = r.BidOff[:0], r.AskOff[:0]
	r.BidPx, r.BidQty, r.AskPx, r.AskQty = r.BidPx[:0], r.BidQty[:0], r.AskPx[:0], r.AskQty[:0]
}

// Free drops the buffers so that an idle key holds no memory.
func (r *Rows) Free() { *r = Rows{} }

// Bytes is the memory r holds (capacities), the figure the writer's memory
// budget counts.
func (r *Rows) Bytes() int64 {
	n := cap(r.RecvUs) + cap(r.ReqUs) + cap(r.EventUs) + cap(r.TxUs) +
		cap(r.First) + cap(r.Final) + cap(r.Prev) + cap(r.Last) +
		cap(r.BidPx) + cap(r.BidQty) + cap(r.AskPx) + cap(r.AskQty)
	m := cap(r.Limit) + cap(r.BidOff) + cap(r.AskOff)
	return int64(n)*8 + int64(m)*4
}

// Append adds one event. The caller has validated that the payload carries
// the fields the layout requires (binance.Seq.Check).
func (r *Rows) Append(l Layout, e *Event) {
	d := e.Depth
	r.RecvUs = append(r.RecvUs, floorDiv(e.RecvNs, 1000))
	switch l.Kind {
	case md.Snapshot:
		r.ReqUs = append(r.ReqUs, floorDiv(e.ReqNs, 1000))
		if l.Futures() {
			r.EventUs = append(r.EventUs, d.EventTime*1000)
			r.TxUs = append(r.TxUs, d.TransactionTime*1000)
		}
		r.Last = append(r.Last, d.LastUpdateID)
		r.Limit = append(r.Limit, e.Limit)
	default: // diff, partial
		if l.Kind == md.Partial && !l.Futures() {
			// Spot partial: {lastUpdateId,bids,asks}; no time, no U.
			r.Final = append(r.Final, d.LastUpdateID)
			break
		}
		r.EventUs = append(r.EventUs, d.EventTime*1000)
		r.First = append(r.First, d.FirstUpdateID)
		r.Final = append(r.Final, d.FinalUpdateID)
		if l.Futures() {
			r.TxUs = append(r.TxUs, d.TransactionTime*1000)
			r.Prev = append(r.Prev, d.PrevFinalUpdateID)
		}
	}
	if r.N == 0 {
		r.BidOff = append(r.BidOff[:0], 0)
		r.AskOff = append(r.AskOff[:0], 0)
	}
	for _, lv := range d.Bids {
		r.BidPx = append(r.BidPx, lv.Price)
		r.BidQty = append(r.BidQty, lv.Qty)
	}
	for _, lv := range d.Asks {
		r.AskPx = append(r.AskPx, lv.Price)
		r.AskQty = append(r.AskQty, lv.Qty)
	}
	r.BidOff = append(r.BidOff, int32(len(r.BidPx)))
	r.AskOff = append(r.AskOff, int32(len(r.AskPx)))
	r.N++
}

// AppendRows appends rows [from, to) of src, which has the same layout.
func (r *Rows) AppendRows(src *Rows, from, to int) {
	if to <= from {
		return
	}
	cp := func(dst, s []int64) []int64 {
		if len(s) == 0 {
			return dst
		}
		return append(dst, s[from:to]...)
	}
	r.RecvUs = cp(r.RecvUs, src.RecvUs)
	r.ReqUs = cp(r.ReqUs, src.ReqUs)
	r.EventUs = cp(r.EventUs, src.EventUs)
	r.TxUs = cp(r.TxUs, src.TxUs)
	r.First = cp(r.First, src.First)
	r.Final = cp(r.Final, src.Final)
	r.Prev = cp(r.Prev, src.Prev)
	r.Last = cp(r.Last, src.Last)
	if len(src.Limit) > 0 {
		r.Limit = append(r.Limit, src.Limit[from:to]...)
	}
	r.BidOff, r.BidPx, r.BidQty = appendLists(r.N, r.BidOff, r.BidPx, r.BidQty, src.BidOff, src.BidPx, src.BidQty, from, to)
	r.AskOff, r.AskPx, r.AskQty = appendLists(r.N, r.AskOff, r.AskPx, r.AskQty, src.AskOff, src.AskPx, src.AskQty, from, to)
	r.N += to - from
}

// Discard removes the first n rows, keeping the capacity.
func (r *Rows) Discard(n int) {
	if n <= 0 {
		return
	}
	if n >= r.N {
		r.Reset()
		return
	}
	cut := func(s []int64) []int64 {
		if len(s) == 0 {
			return s
		}
		return s[:copy(s, s[n:])]
	}
	r.RecvUs, r.ReqUs, r.EventUs, r.TxUs = cut(r.RecvUs), cut(r.ReqUs), cut(r.EventUs), cut(r.TxUs)
	r.First, r.Final, r.Prev, r.Last = cut(r.First), cut(r.Final), cut(r.Prev), cut(r.Last)
	if len(r.Limit) > 0 {
		r.Limit = r.Limit[:copy(r.Limit, r.Limit[n:])]
	}
	r.BidOff, r.BidPx, r.BidQty = discardList(r.BidOff, r.BidPx, r.BidQty, n)
	r.AskOff, r.AskPx, r.AskQty = discardList(r.AskOff, r.AskPx, r.AskQty, n)
	r.N -= n
}

func discardList(off []int32, px, qty []float64, n int) ([]int32, []float64, []float64) {
	k := off[n]
	px = px[:copy(px, px[k:])]
	qty = qty[:copy(qty, qty[k:])]
	off = off[:copy(off, off[n:])]
	for i := range off {
		off[i] -= k
	}
	return off, px, qty
}

func appendLists(n int, off []int32, px, qty []float64, soff []int32, spx, sqty []float64, from, to int) ([]int32, []float64, []float64) {
	if n == 0 {
		off = append(off[:0], 0)
	}
	lo, hi := soff[from], soff[to]
	base := int32(len(px)) - lo
	for _, o := range soff[from+1 : to+1] {
		off = append(off, o+base)
	}
	return off, append(px, spx[lo:hi]...), append(qty, sqty[lo:hi]...)
}

// SeqID is row i's exchange sequence id: u for diffs and partials
// (lastUpdateId for spot partials), lastUpdateId for snapshots.
func (r *Rows) SeqID(i int) int64 {
	if len(r.Last) > 0 {
		return r.Last[i]
	}
	return r.Final[i]
}

// FirstID is row i's lowest update id: U where the layout has it, else
// SeqID.
func (r *Rows) FirstID(i int) int64 {
	if len(r.First) > 0 {
		return r.First[i]
	}
	return r.SeqID(i)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
