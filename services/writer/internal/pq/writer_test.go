package pq

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
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
