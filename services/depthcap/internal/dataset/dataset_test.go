package dataset

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/depthcap/depthcap/pkg/book"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality/qualitytest"
)

// TestParseName proves the file names of the layout (SCHEMA.md) are read,
// and that nothing else is taken for a data file.
func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		name   string
		period string
		start  string
		supp   int
		ok     bool
	}{
		{"2026-11-21.parquet", "2026-11-21", "2026-11-21T00:00:00Z", 0, true},
		{"2026-11-21.late1.parquet", "2026-11-21", "2026-11-21T00:00:00Z", 1, true},
		{"2026-11-21.late12.parquet", "2026-11-21", "2026-11-21T00:00:00Z", 12, true},
		{"2026-11-21T1300.parquet", "2026-11-21T1300", "2026-11-21T13:00:00Z", 0, true},
		{"2026-11-21T1300.late2.parquet", "2026-11-21T1300", "2026-11-21T13:00:00Z", 2, true},
		{"2026-11-21.gaps.json", "", "", 0, false},
		{"2026-11-21.late0.parquet", "", "", 0, false},
		{"2026-11-21.latex.parquet", "", "", 0, false},
		{"2026-13-21.parquet", "", "", 0, false},
		{"2026-11-21T25.parquet", "", "", 0, false},
		{".tmp-2026-11-21.parquet", "", "", 0, false},
	} {
		period, start, supp, err := ParseName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok %v", tc.name, err, tc.ok)
			continue
		}
		if !tc.ok {
			if !errors.Is(err, ErrBadName) {
				t.Errorf("%s: %v, want ErrBadName", tc.name, err)
			}
			continue
		}
		if period != tc.period || start.Format(time.RFC3339) != tc.start || supp != tc.supp {
			t.Errorf("%s: %s %s %d", tc.name, period, start.Format(time.RFC3339), supp)
		}
	}
}

// TestRank proves the stream-order ranking of a day's files: by
// first_stream_seq when every file has a range and they are disjoint,
// else by period and supplement.
func TestRank(t *testing.T) {
	day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	f := func(rel string, start time.Time, supp int, first, last uint64) File {
		return File{Rel: rel, Start: start, Supplement: supp, FirstSeq: first, LastSeq: last}
	}
	for _, tc := range []struct {
		name    string
		files   []File
		want    []string
		ordered bool
	}{
		{"disjoint ranges", []File{f("a.late1", day, 1, 500, 600), f("b", day, 0, 1, 400), f("c.late2", day, 2, 401, 450)},
			[]string{"b", "c.late2", "a.late1"}, true},
		{"overlapping ranges", []File{f("a.late1", day, 1, 1, 600), f("b", day, 0, 1, 400)}, []string{"b", "a.late1"}, false},
		{"no ranges", []File{f("x.late1", day, 1, 0, 0), f("y", day.Add(time.Hour), 0, 0, 0), f("z", day, 0, 0, 0)},
			[]string{"z", "x.late1", "y"}, false},
	} {
		s := &Set{Files: tc.files}
		s.rank()
		var got []string
		for _, f := range s.Files {
			got = append(got, f.Rel)
		}
		if len(got) != len(tc.want) || s.StreamOrdered != tc.ordered {
			t.Errorf("%s: %v ordered %v", tc.name, got, s.StreamOrdered)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
}

// TestRowsMatchRecording imports two real recordings (one spot, one USD-M)
// with the real writer, in row groups of 16 rows, and reads every symbol's
// diff and snapshot rows back. It proves every recorded depth frame comes
// back as one row with its receive time, ids and every level exactly as
// the exchange's decimal strings parse, in stream order, across row-group
// and batch boundaries.
func TestRowsMatchRecording(t *testing.T) {
	t.Setenv("WRITER_ROW_GROUP_ROWS", "16")
	dir := t.TempDir()
	recs := []string{qualitytest.Recording("spot_2021-10-12_4sym.rec.gz"), qualitytest.Recording("futures_2021-07-22_4sym.rec.gz")}
	qualitytest.Import(t, dir, recs...)
	ctx := context.Background()
	st := Local(dir)
	checked := 0
	for _, rec := range recs {
		m, err := recording.MarketFromFileName(rec)
		if err != nil {
			t.Fatal(err)
		}
		// Frames per symbol and kind, in recorded order.
		want := map[string][]qualitytest.Frame{}
		recv := map[string][]int64{}
		var day time.Time
		for _, l := range qualitytest.ReadLines(t, rec) {
			f, ok := qualitytest.Decode(t, l.JSON)
			if !ok {
				continue
			}
			k := f.Symbol + "/" + f.Kind.String()
			want[k] = append(want[k], f)
			recv[k] = append(recv[k], l.RecvNs/1000)
			day = time.Unix(0, l.RecvNs)
		}
		for k, frames := range want {
			sym, kindName, _ := cut(k)
			kind, _ := md.ParseKind(kindName)
			set, err := Find(ctx, st, m, kind, sym, day)
			if err != nil {
				t.Fatal(err)
			}
			if set.Rows() != int64(len(frames)) || set.Files[0].Manifest == nil {
				t.Fatalf("%s: %d rows in the footers, %d frames; manifest %v", k, set.Rows(), len(frames), set.Files[0].ManifestErr)
			}
			r, err := Open(ctx, st, Input{Set: set})
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range frames {
				row, err := r.Next(ctx)
				if err != nil {
					t.Fatalf("%s row %d: %v", k, i, err)
				}
				if row.Index != int64(i) || row.ReceivedUs != recv[k][i] || row.Kind != kind {
					t.Fatalf("%s row %d: index %d recv %d kind %s, want %d %s", k, i, row.Index, row.ReceivedUs, row.Kind, recv[k][i], kind)
				}
				switch kind {
				case md.Snapshot:
					if row.LastUpdateID != f.LastUpdateID {
						t.Fatalf("%s row %d: lastUpdateId %d, want %d", k, i, row.LastUpdateID, f.LastUpdateID)
					}
				default:
					if row.FirstID != f.U || row.FinalID != f.Final || row.HasPrev != (m == md.Futures) || row.PrevID != f.PU {
						t.Fatalf("%s row %d: %d %d %d, want %d %d %d", k, i, row.FirstID, row.FinalID, row.PrevID, f.U, f.Final, f.PU)
					}
				}
				sameLevels(t, k, "bids", row.Bids, f.Bids)
				sameLevels(t, k, "asks", row.Asks, f.Asks)
				checked++
			}
			if _, err := r.Next(ctx); !errors.Is(err, io.EOF) {
				t.Fatalf("%s: after the last row: %v", k, err)
			}
			r.Close()
		}
	}
	if checked < 900 {
		t.Fatalf("checked %d rows", checked)
	}
}

func cut(k string) (string, string, bool) {
	for i := range k {
		if k[i] == '/' {
			return k[:i], k[i+1:], true
		}
	}
	return k, "", false
}

func sameLevels(t *testing.T, k, side string, got []book.Level, want [][2]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s %s: %d levels, want %d", k, side, len(got), len(want))
	}
	for i, w := range want {
		p, _ := strconv.ParseFloat(w[0], 64)
		q, _ := strconv.ParseFloat(w[1], 64)
		if got[i].Price != p || got[i].Qty != q {
			t.Fatalf("%s %s[%d]: %v, want %s x %s", k, side, i, got[i], w[0], w[1])
		}
	}
}

// TestFiltersAndMemory proves the filters (receive-time bounds on rows,
// an update-id floor on row groups) and that a reader holds one batch at
// a time and releases it: the peak of decoded memory while reading a file
// of many row groups is a small fraction of the rows' size, and nothing of
// the reader's is left allocated after Close.
func TestFiltersAndMemory(t *testing.T) {
	t.Setenv("WRITER_ROW_GROUP_ROWS", "64")
	dir := t.TempDir()
	qualitytest.Import(t, dir, qualitytest.DepthOnly(t, qualitytest.Recording("spot_ethusdt_2024-08-08T2354.rec.gz"), t.TempDir()))
	ctx := context.Background()
	st := Local(dir)
	day := time.Date(2024, 8, 8, 0, 0, 0, 0, time.UTC)
	set, err := Find(ctx, st, md.Spot, md.Diff, "ETHUSDT", day)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ recv, final int64 }
	readAll := func(f Filter) []row {
		r, err := Open(ctx, st, Input{Set: set, Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []row
		for {
			x, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, row{x.ReceivedUs, x.FinalID})
		}
	}

	checked := memory.NewCheckedAllocator(memory.NewGoAllocator())
	allocator = checked
	defer func() { allocator = memory.DefaultAllocator }()
	r, err := Open(ctx, st, Input{Set: set})
	if err != nil {
		t.Fatal(err)
	}
	var levelBytes, peak int
	for {
		x, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		levelBytes += 16 * (len(x.Bids) + len(x.Asks))
		peak = max(peak, checked.CurrentAlloc())
	}
	r.Close()
	// arrow-go v18.8.0 never frees the 64-byte miniblock-width buffer of
	// each DELTA_BINARY_PACKED column chunk it decodes (the writer encodes
	// times and ids that way): allow exactly that, nothing else.
	groups := int((set.Rows() + 63) / 64)
	if left := checked.CurrentAlloc(); left > 64*groups*8 {
		checked.AssertSize(t, 0)
	}
	t.Logf("peak decoded memory %d B while reading %d B of levels in row groups of 64 rows", peak, levelBytes)
	if peak*10 > levelBytes {
		t.Errorf("peak decoded memory %d B for %d B of levels: not bounded by row groups", peak, levelBytes)
	}
	allocator = memory.DefaultAllocator

	all := readAll(Filter{})
	if int64(len(all)) != set.Rows() || len(all) < 3000 {
		t.Fatalf("%d rows, footers say %d", len(all), set.Rows())
	}
	mid := all[len(all)/2]
	upTo := readAll(Filter{MaxReceivedUs: mid.recv})
	from := readAll(Filter{MinReceivedUs: mid.recv})
	n := 0
	for _, x := range all {
		if x.recv <= mid.recv {
			n++
		}
	}
	eq := 0
	for _, x := range all {
		if x.recv == mid.recv {
			eq++
		}
	}
	if len(upTo) != n || len(from) != len(all)-n+eq {
		t.Errorf("receive-time bounds: %d rows up to the middle (want %d), %d from it", len(upTo), n, len(from))
	}
	byID := readAll(Filter{MinID: mid.final})
	if len(byID) >= len(all)/2+64 || len(byID) < len(all)/2-1 || byID[len(byID)-1] != all[len(all)-1] {
		t.Errorf("MinID %d: %d of %d rows read: whole row groups below the id should be skipped, none above", mid.final, len(byID), len(all))
	}
	for _, x := range byID[64:] {
		if x.final <= mid.final {
			t.Fatalf("row %d at or below the floor read past the first row group", x.final)
		}
	}
}

// TestFindMissing proves a missing symbol or day is ErrNoFiles, and that
// files of other days and other names in the directory are ignored.
func TestFindMissing(t *testing.T) {
	dir := t.TempDir()
	sym := filepath.Join(dir, "spot", "diff_orderbooks", "BTCUSDT")
	if err := os.MkdirAll(sym, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"2026-11-20.parquet.tmp", "notes.txt", "2026-11-21.gaps.json"} {
		if err := os.WriteFile(filepath.Join(sym, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	day := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"BTCUSDT", "ETHUSDT"} {
		if _, err := Find(ctx, Local(dir), md.Spot, md.Diff, s, day); !errors.Is(err, ErrNoFiles) {
			t.Errorf("%s: %v, want ErrNoFiles", s, err)
		}
	}
}
