// Package dataset reads depthcap's Parquet files back (SCHEMA.md): the
// files of one market, kind, symbol and UTC day (main files and their
// late-event supplements, for any WRITER_PERIOD), their key-value metadata
// and gap manifests, and their rows, one row group at a time, so that the
// memory a reader holds does not grow with the size of a day.
//
// # Where the files come from
//
// A Store lists and opens files by their path relative to DATA_DIR
// (<market>/<kind_dir>/<SYMBOL>/<name>): Local reads a local DATA_DIR, S3
// downloads each object it opens from a bucket (S3_* settings, keys
// <S3_PREFIX>/<path>) into a private temporary directory first.
//
// # Order of rows
//
// Rows of one file are in stream order (the order JetStream stored them).
// A supplement (<period>.lateN.parquet) holds events that reached the
// writer after the period's main file was sealed: in stream order every one
// of its rows comes after all rows of the main file (the writer seals the
// main file before it opens a supplement; the files' depthcap.first_stream_seq
// and depthcap.last_stream_seq ranges show it), yet its events belong where
// their receive time puts them (a collector cut off from NATS, a replica
// far behind). The Reader therefore merges files by received_time: a k-way
// merge of files that are each read in their own stream order (no file is
// re-sorted), ties going to a diff before a partial before a snapshot, then
// to the file that comes first in stream order. Files are ranked in stream
// order by depthcap.first_stream_seq when every file of the set has a
// disjoint range in its metadata (Set.StreamOrdered), and by period then
// supplement number otherwise. With one file per period, the merged order
// of a kind is exactly stream order. The same merge joins the kinds of a
// day (diffs, partials, snapshots) and the tail of the day before.
package dataset

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/depthcap/depthcap/pkg/manifest"
	"github.com/depthcap/depthcap/pkg/md"
)

// ErrNoFiles reports that a store has no file of the requested market,
// kind, symbol and day.
var ErrNoFiles = errors.New("no files")

// ErrBadName reports a file name that does not follow the layout.
var ErrBadName = errors.New("not a depthcap file name")

// File is one Parquet file of a Set, with what its metadata and manifest
// say about it.
type File struct {
	Rel        string    // path relative to DATA_DIR (slash separated)
	Period     string    // the name's period: YYYY-MM-DD or YYYY-MM-DDTHHMM
	Start      time.Time // start of the period
	Supplement int       // 0 for the main file, N for .lateN

	Meta     map[string]string // Parquet key-value metadata (depthcap.*)
	Rows     int64             // rows in the file (Parquet footer)
	FirstSeq uint64            // depthcap.first_stream_seq (0 if absent)
	LastSeq  uint64            // depthcap.last_stream_seq

	Manifest    *manifest.Manifest // the <name>.gaps.json beside it; nil if absent or unreadable
	ManifestErr string             // why Manifest is nil, when a manifest was expected
}

// Set is the files of one market, kind, symbol and UTC day, in stream
// order (see the package documentation).
type Set struct {
	Market md.Market
	Kind   md.Kind
	Symbol string
	Day    time.Time // 00:00 UTC of the day
	Files  []File
	// StreamOrdered is true when the files were ranked by their
	// stream-sequence ranges from the metadata (all present and disjoint).
	StreamOrdered bool
}

// Rows is the number of rows over all files.
func (s *Set) Rows() int64 {
	var n int64
	for _, f := range s.Files {
		n += f.Rows
	}
	return n
}

// KindDir is the directory of a market, kind and symbol relative to DATA_DIR.
func KindDir(m md.Market, k md.Kind, symbol string) string {
	return path.Join(m.String(), k.Dir(), symbol)
}

// ParseName splits a Parquet file name of the layout: <period>.parquet or
// <period>.late<N>.parquet, where period is YYYY-MM-DD (24h periods) or
// YYYY-MM-DDTHHMM (the period's start).
func ParseName(name string) (period string, start time.Time, supplement int, err error) {
	base, ok := strings.CutSuffix(name, ".parquet")
	if !ok {
		return "", time.Time{}, 0, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	if i := strings.Index(base, ".late"); i >= 0 {
		n, err := strconv.Atoi(base[i+len(".late"):])
		if err != nil || n < 1 {
			return "", time.Time{}, 0, fmt.Errorf("%w: %q", ErrBadName, name)
		}
		supplement, base = n, base[:i]
	}
	layout := "2006-01-02"
	if len(base) > len(layout) {
		layout = "2006-01-02T1504"
	}
	start, err = time.Parse(layout, base)
	if err != nil || start.Format(layout) != base {
		return "", time.Time{}, 0, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return base, start.UTC(), supplement, nil
}

// ManifestName is the gap manifest of a Parquet file name.
func ManifestName(parquetName string) string { return manifest.Name(parquetName) }

// Day truncates t to 00:00 UTC of its day.
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Find lists the files of market m, kind k, symbol and the UTC day of day,
// reads their footers and manifests, and ranks them in stream order. It
// returns an error wrapping ErrNoFiles when there is none (fs.ErrNotExist
// of a missing directory included).
func Find(ctx context.Context, st Store, m md.Market, k md.Kind, symbol string, day time.Time) (*Set, error) {
	day = Day(day)
	set := &Set{Market: m, Kind: k, Symbol: symbol, Day: day}
	dir := KindDir(m, k, symbol)
	names, err := st.List(ctx, dir, day.Format("2006-01-02"))
	if errors.Is(err, fs.ErrNotExist) {
		return set, fmt.Errorf("%s %s: %w", dir, day.Format(time.DateOnly), ErrNoFiles)
	}
	if err != nil {
		return set, err
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, n := range names {
		period, start, supp, err := ParseName(n)
		if err != nil || !Day(start).Equal(day) {
			continue // manifests, temp files, other days
		}
		f := File{Rel: path.Join(dir, n), Period: period, Start: start, Supplement: supp}
		if err := readFooter(ctx, st, &f); err != nil {
			return set, err
		}
		man := ManifestName(n)
		if !have[man] {
			f.ManifestErr = "missing"
		} else if mf, err := readManifest(ctx, st, path.Join(dir, man)); err != nil {
			f.ManifestErr = err.Error()
		} else {
			f.Manifest = mf
		}
		set.Files = append(set.Files, f)
	}
	if len(set.Files) == 0 {
		return set, fmt.Errorf("%s %s: %w", dir, day.Format(time.DateOnly), ErrNoFiles)
	}
	set.rank()
	return set, nil
}

// rank orders the files in stream order: by first stream sequence when
// every file has a range and the ranges are disjoint, else by period and
// supplement.
func (s *Set) rank() {
	byName := func(i, j int) bool {
		a, b := s.Files[i], s.Files[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		return a.Supplement < b.Supplement
	}
	sort.SliceStable(s.Files, byName)
	ok := true
	for _, f := range s.Files {
		if f.FirstSeq == 0 || f.LastSeq < f.FirstSeq {
			ok = false
		}
	}
	if ok {
		bySeq := append([]File(nil), s.Files...)
		sort.SliceStable(bySeq, func(i, j int) bool { return bySeq[i].FirstSeq < bySeq[j].FirstSeq })
		for i := 1; i < len(bySeq); i++ {
			if bySeq[i].FirstSeq <= bySeq[i-1].LastSeq {
				ok = false
			}
		}
		if ok {
			s.Files = bySeq
		}
	}
	s.StreamOrdered = ok
}
