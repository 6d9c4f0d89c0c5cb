package book

import (
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
)

func loadedBook(b *testing.B, w *workload) *Book {
	b.Helper()
	bk := new(Book)
	if err := bk.Load(w.bids, w.asks); err != nil {
		b.Fatal(err)
	}
	return bk
}

// BenchmarkApply measures single level updates on a book of 5,000 levels per
// side, for each update mix (see mixes), in steady state: the workload's
// stream is cyclic, so the book's size and shape stay put.
func BenchmarkApply(b *testing.B) {
	for _, m := range mixes {
		b.Run(m.name, func(b *testing.B) {
			w := newWorkload(1, 5000, 1<<16, m)
			bk := loadedBook(b, w)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				o := w.ops[i]
				if err := bk.Apply(o.side, o.price, o.qty); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(w.ops) {
					i = 0
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

// BenchmarkSyncerApply measures whole diff events of 40 levels (the spot
// ETHUSDT recording averages 42, USD-M 65) through Syncer.Apply on a live
// spot book of 5,000 levels per side: the rule check, the level updates,
// the crossed check and the copy into retention.
func BenchmarkSyncerApply(b *testing.B) {
	for _, m := range mixes {
		b.Run(m.name, func(b *testing.B) {
			const per = 40
			w := newWorkload(1, 5000, 1<<15, m)
			evs := w.events(per)
			s, err := NewSyncer(Config{Market: md.Spot})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.LoadSnapshot(0, w.bids, w.asks); err != nil {
				b.Fatal(err)
			}
			id := int64(0)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				u := evs[i]
				u.First, u.Final = id+1, id+per
				id += per
				if out, err := s.Apply(u); out != Applied || err != nil {
					b.Fatalf("Apply: %s %v", out, err)
				}
				if i++; i == len(evs) {
					i = 0
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

// BenchmarkTopN20 measures the best 20 levels of both sides into reused
// buffers.
func BenchmarkTopN20(b *testing.B) {
	w := newWorkload(1, 5000, 16, mixes[0])
	bk := loadedBook(b, w)
	bids, asks := make([]Level, 0, 20), make([]Level, 0, 20)
	b.ReportAllocs()
	for b.Loop() {
		bids, asks = bk.TopN(20, bids, asks)
	}
	if len(bids) != 20 || len(asks) != 20 {
		b.Fatal("short top")
	}
}

// BenchmarkAggregate measures bucketing a 5,000-level book (0.01 grid,
// about 70 USD deep per side) into 0.1, 1 and 10 USD buckets: the best 20
// buckets, and every bucket.
func BenchmarkAggregate(b *testing.B) {
	w := newWorkload(1, 5000, 16, mixes[0])
	bk := loadedBook(b, w)
	for _, c := range []struct {
		name string
		tick float64
		n    int
	}{{"0.1/top20", 0.1, 20}, {"1/top20", 1, 20}, {"10/all", 10, 0}, {"1/all", 1, 0}} {
		b.Run(c.name, func(b *testing.B) {
			bids, asks := make([]Level, 0, 1000), make([]Level, 0, 1000)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				bids, asks, err = bk.Aggregate(c.tick, c.n, bids, asks)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoad measures loading a 5,000-level-per-side snapshot in exchange
// order into a reused book.
func BenchmarkLoad(b *testing.B) {
	w := newWorkload(1, 5000, 16, mixes[0])
	var bk Book
	b.ReportAllocs()
	for b.Loop() {
		if err := bk.Load(w.bids, w.asks); err != nil {
			b.Fatal(err)
		}
	}
}
