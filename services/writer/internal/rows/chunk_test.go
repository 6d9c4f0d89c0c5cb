package rows

import (
	"errors"
	"reflect"
	"testing"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/md"
)

// TestChunkRoundTrip proves that encoded chunks decode to the exact rows
// (every column, float bits included), appended across several chunks,
// and that a damaged chunk is rejected with ErrCorrupt.
func TestChunkRoundTrip(t *testing.T) {
	l := Layout{Market: md.Futures, Kind: md.Diff}
	var all, a, b Rows
	d := binance.Depth{}
	for i := 0; i < 50; i++ {
		d.Seq = binance.Seq{EventTime: int64(1000 + i), TransactionTime: int64(999 + i), FirstUpdateID: int64(10 * i), FinalUpdateID: int64(10*i + 5), PrevFinalUpdateID: int64(10*i - 5)}
		d.Bids = append(d.Bids[:0], binance.Level{Price: 0.1 * float64(i), Qty: 3.0292})
		if i%3 == 0 {
			d.Asks = append(d.Asks[:0], binance.Level{Price: 2683.81, Qty: 0}, binance.Level{Price: 2683.82, Qty: 1e-8})
		} else {
			d.Asks = d.Asks[:0]
		}
		ev := Event{RecvNs: int64(i) * 1_000_003, Depth: &d}
		all.Append(l, &ev)
		if i < 20 {
			a.Append(l, &ev)
		} else {
			b.Append(l, &ev)
		}
	}
	var got Rows
	var scratch []byte
	var err error
	for _, src := range []*Rows{&a, &b} {
		if scratch, err = got.DecodeChunk(src.AppendChunk(nil), scratch); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(got, all) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, all)
	}
	ch := all.AppendChunk(nil)
	ch[len(ch)-1] ^= 1
	var r Rows
	if _, err := r.DecodeChunk(ch, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged chunk: %v", err)
	}
}
