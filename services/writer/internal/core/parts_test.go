package core

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/manifest"
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
