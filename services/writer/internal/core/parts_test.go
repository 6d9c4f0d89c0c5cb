package core

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/manifest"
	"github.com/depthcap/depthcap/services/writer/internal/pq"
)

// bigSnapshotMsg is a spot REST snapshot of sym with 300 levels a side,
// so that a few of them pass the test core's PartBytes.
func bigSnapshotMsg(seq uint64, sym string, id int64, recvNs int64) Msg {
	var b strings.Builder
	b.WriteString(`{"lastUpdateId":` + itoa(id) + `,"bids":[`)
	for i := range 300 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`["` + itoa(int64(1000-i)) + `.5","` + itoa(int64(i+1)) + `"]`)
	}
	b.WriteString(`],"asks":[`)
	for i := range 300 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`["` + itoa(int64(1001+i)) + `.5","` + itoa(int64(i+2)) + `"]`)
	}
	b.WriteString(`]}`)
	return snapshotMsgOf(seq, sym, id, recvNs, recvNs, []byte(b.String()))
}

func partFiles(t *testing.T, c *Core) []string {
	t.Helper()
	entries, err := os.ReadDir(c.partDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// TestSharedPartFiles proves the version 4 part layout: a checkpoint
// writes one part file per period holding every spilled open file's run,
// sealing a period deletes its part file only, a restarted core reads the
// runs by byte range, and the sealed files hold every row.
func TestSharedPartFiles(t *testing.T) {
	dir := t.TempDir()
	sink := &fakeSink{}
	c := testCore(t, dir, sink)
	ctx := context.Background()
	syms := []string{"AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"}
	minute := int64(time.Minute)
	seq := uint64(0)
	for round := range 3 {
		for _, period := range []int64{0, minute} {
			for _, s := range syms {
				seq++
				if err := c.Handle(ctx, bigSnapshotMsg(seq, s, int64(seq), t0+period+int64(round)*int64(time.Second))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := c.Checkpoint(TriggerInterval); err != nil {
		t.Fatal(err)
	}
	parts := partFiles(t, c)
	if len(parts) != 2 {
		t.Fatalf("part files after a checkpoint with two open periods: %v, want one per period", parts)
	}
	spilled := 0
	for _, f := range c.st.files {
		for _, p := range f.parts {
			if p.len <= 0 || p.rows != 3 {
				t.Fatalf("%v: part %+v, want a byte range of 3 rows", f.key, p)
			}
			spilled++
		}
	}
	if spilled != 2*len(syms) {
		t.Fatalf("%d runs in part files, want %d (every open file past PartBytes)", spilled, 2*len(syms))
	}

	// Restart: the runs are found again by name and range.
	c.Close()
	c = testCore(t, dir, sink)
	if got := partFiles(t, c); !slices.Equal(got, parts) {
		t.Fatalf("after restart the part files are %v, want %v", got, parts)
	}
	// Pass the first period's end + grace: its files seal, its part file goes.
	seq++
	if err := c.Handle(ctx, bigSnapshotMsg(seq, syms[0], int64(seq), t0+minute+int64(11*time.Second))); err != nil {
		t.Fatal(err)
	}
	if len(sink.sealed) != len(syms) {
		t.Fatalf("sealed %v, want the first period's %d files", sink.sealed, len(syms))
	}
	left := partFiles(t, c)
	if len(left) != 1 || !slices.Contains(parts, left[0]) {
		t.Fatalf("part files after sealing the first period: %v, want one of %v", left, parts)
	}
	if err := c.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := partFiles(t, c); len(got) != 0 {
		t.Fatalf("part files after sealing everything: %v", got)
	}
	rows := 0
	for _, p := range sink.sealed {
		man, err := manifest.Read(filepath.Join(dir, filepath.FromSlash(manifest.Name(p))))
		if err != nil {
			t.Fatal(err)
		}
		rows += int(man.Rows)
	}
	if rows != int(seq) {
		t.Fatalf("%d rows in the sealed files' manifests, want %d", rows, seq)
	}
}

// TestReadPartVersion3 reads a part file as a version 3 checkpoint
// wrote it (one run, the whole file after the magic: len 0).
func TestReadPartVersion3(t *testing.T) {
	c := testCore(t, t.TempDir(), &fakeSink{})
	chunks := [][]byte{[]byte("one"), []byte("chunk two")}
	b := append([]byte(nil), partMagic...)
	for _, ch := range chunks {
		b = append(b, byte(len(ch)))
		b = append(b, ch...)
	}
	if err := os.WriteFile(filepath.Join(c.partDir, "7-0.part"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	if err := c.readPart(part{name: "7-0.part", rows: 2}, func(ch []byte) error { got = append(got, ch); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0]) != "one" || string(got[1]) != "chunk two" {
		t.Fatalf("chunks %q", got)
	}
}

// failAfter accepts n bytes, then fails.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

// TestEncodeToStreams proves that the streamed checkpoint (encodeTo, what
// Checkpoint writes) is byte for byte the buffered encoding, with inline
// chunks large enough to be written directly and small ones buffered,
// that the buffer stays near encFlush, and that a write error is returned.
func TestEncodeToStreams(t *testing.T) {
	// testCore's settings, with limits that keep every chunk inline.
	c, err := Open(context.Background(), Config{DataDir: t.TempDir(), Shard: "0-of-1", Period: time.Minute, Grace: 10 * time.Second,
		DedupRecent: 64, MemoryLimit: 16 << 20, PartBytes: 1 << 20, InlineLimit: 4 << 20, Parquet: pq.DefaultOptions(), Producer: "test", StoreClamp: time.Minute},
		&fakeSink{}, NewMetrics(nil), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()
	seq := uint64(0)
	for i := range 40 {
		seq++
		sym := "S" + itoa(int64(i%7)) + "USDT"
		if err := c.Handle(ctx, bigSnapshotMsg(seq, sym, int64(seq), t0+int64(i)*int64(time.Millisecond))); err != nil {
			t.Fatal(err)
		}
		if i%9 == 0 { // chunks of a few rows, some past encDirect, none spilled yet
			if err := c.Checkpoint(TriggerInterval); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range c.st.files {
		f.rows.Reset() // not encoded: what Checkpoint encodes is chunks and state
	}
	h := c.header()
	want := c.st.encode(h, nil)
	var big, small int
	for _, f := range c.st.files {
		for _, ch := range f.chunks {
			if len(ch) >= encDirect {
				big++
			} else {
				small++
			}
		}
	}
	if big == 0 {
		t.Fatalf("no inline chunk of %d bytes or more: the test does not cover direct writes", encDirect)
	}
	var got bytes.Buffer
	n, scratch, err := c.st.encodeTo(h, &got, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("streamed %d bytes, buffered %d: they differ (%d inline chunks written directly, %d buffered)", n, len(want), big, small)
	}
	if cap(scratch) > 2*encFlush+64<<10 {
		t.Fatalf("encoder buffer grew to %d bytes", cap(scratch))
	}
	if _, _, err := c.st.encodeTo(h, &failAfter{n: len(want) / 2}, nil); err == nil {
		t.Fatal("a failing writer: want an error")
	}
	if _, _, err := decodeState(want); err != nil {
		t.Fatal(err)
	}
}
