package dataset

import (
	"context"
	"errors"
	"io"

	"github.com/depthcap/depthcap/pkg/md"
)

// Input is one Set to read with its Filter.
type Input struct {
	Set    *Set
	Filter Filter
}

// Reader merges the rows of several Sets (kinds, days) by received_time:
// a k-way merge of the files, each read in its own stream order. Ties go
// to a diff, then a partial, then a snapshot, then to the earlier Input and
// the file earlier in its Set's stream order. At most one batch
// (BatchRows rows of one row group) per file is decoded at a time.
type Reader struct {
	files []mergedFile
	open  []*mergeHead
	last  *mergeHead
}

type mergedFile struct {
	set  *Set
	file *File
}

type mergeHead struct {
	fr   *FileReader
	row  *Row
	rank int
}

// Open opens every file of the inputs. Close the Reader when done.
func Open(ctx context.Context, st Store, inputs ...Input) (*Reader, error) {
	r := &Reader{}
	for _, in := range inputs {
		if in.Set == nil {
			continue
		}
		for i := range in.Set.Files {
			f := &in.Set.Files[i]
			idx := len(r.files)
			r.files = append(r.files, mergedFile{set: in.Set, file: f})
			fr, err := OpenFile(ctx, st, f.Rel, in.Set.Kind, idx, in.Filter)
			if err != nil {
				r.Close()
				return nil, err
			}
			h := &mergeHead{fr: fr, rank: idx}
			r.open = append(r.open, h)
			if err := r.advance(ctx, h); err != nil {
				r.Close()
				return nil, err
			}
		}
	}
	return r, nil
}

// File returns the Set and File of a Row.File index.
func (r *Reader) File(i int) (*Set, *File) { return r.files[i].set, r.files[i].file }

// advance reads h's next row; at the end h is closed and removed.
func (r *Reader) advance(ctx context.Context, h *mergeHead) error {
	row, err := h.fr.Next(ctx)
	if errors.Is(err, io.EOF) {
		h.fr.Close()
		for i, o := range r.open {
			if o == h {
				r.open = append(r.open[:i], r.open[i+1:]...)
				break
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	h.row = row
	return nil
}

// kindOrder breaks receive-time ties between kinds: a diff before a
// partial frame (which may be taken at the diff's id) before a snapshot.
func kindOrder(k md.Kind) int {
	switch k {
	case md.Diff:
		return 0
	case md.Partial:
		return 1
	default:
		return 2
	}
}

func less(a, b *mergeHead) bool {
	if a.row.ReceivedUs != b.row.ReceivedUs {
		return a.row.ReceivedUs < b.row.ReceivedUs
	}
	if ka, kb := kindOrder(a.row.Kind), kindOrder(b.row.Kind); ka != kb {
		return ka < kb
	}
	return a.rank < b.rank
}

// Next returns the next row in merged order, or io.EOF. The row is valid
// until the next call.
func (r *Reader) Next(ctx context.Context) (*Row, error) {
	if r.last != nil {
		h := r.last
		r.last = nil
		if err := r.advance(ctx, h); err != nil {
			return nil, err
		}
	}
	if len(r.open) == 0 {
		return nil, io.EOF
	}
	best := r.open[0]
	for _, h := range r.open[1:] {
		if less(h, best) {
			best = h
		}
	}
	r.last = best
	return best.row, nil
}

// Close closes every file still open.
func (r *Reader) Close() {
	for _, h := range r.open {
		h.fr.Close()
	}
	r.open = nil
	r.last = nil
}
