package core

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/manifest"
	"github.com/depthcap/depthcap/pkg/md"
)

// readManifestFile reads the manifest of a sealed file (path relative to
// dir, as FileSealed names it).
func readManifestFile(t *testing.T, dir, rel string) manifest.Manifest {
	t.Helper()
	m, err := manifest.Read(filepath.Join(dir, manifest.Name(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return *m
}

// TestPartialGapReports proves the rule for collector gap reports of
// streams without a chain (partials): a report of source S over (a, b]
// is covered when no other source reported an overlapping range and
// either another source delivered a row with an id in (a, b], or one
// other source delivered rows on both sides (<= a and > b). Otherwise it
// stays a gap (detected_by collector, counted in gap_count).
func TestPartialGapReports(t *testing.T) {
	type step struct {
		src        string // "" for B's report
		id         int64  // frame id, or report after_id
		resume     int64  // report resume_prev_id
		reportedBy string
		reason     envelope.GapReason
	}
	frame := func(src string, id int64) step { return step{src: src, id: id} }
	report := func(src string, after, resume int64) step {
		return step{reportedBy: src, id: after, resume: resume, reason: envelope.ReasonDisconnect}
	}
	overflow := func(src string, after, resume int64) step {
		return step{reportedBy: src, id: after, resume: resume, reason: envelope.ReasonBufferOverflow}
	}
	tests := []struct {
		name        string
		market      md.Market
		steps       []step
		wantGaps    [][2]int64 // (after, resume] of the gaps, in order
		wantCovered int
	}{
		{"spot: the other replica delivered frames inside the range", md.Spot, []step{
			frame("A", 100), frame("B", 110), frame("A", 120), frame("A", 130), report("B", 110, 139), frame("B", 140), frame("A", 150)},
			nil, 1},
		{"the frame inside arrives after the report", md.Spot, []step{
			frame("A", 100), frame("B", 110), report("B", 110, 139), frame("B", 140), frame("A", 125), frame("A", 150)},
			nil, 1},
		{"futures: nothing inside, the other replica delivered on both sides", md.Futures, []step{
			frame("A", 480), frame("B", 500), report("B", 500, 599), frame("B", 600), frame("A", 620)},
			nil, 1},
		{"futures: the other replica's frame before the range arrives late", md.Futures, []step{
			frame("B", 500), report("B", 500, 599), frame("B", 600), frame("A", 480), frame("B", 610), frame("A", 620)},
			nil, 1},
		{"a single collector's disconnect is a hole", md.Spot, []step{
			frame("B", 100), frame("B", 110), report("B", 110, 139), frame("B", 140)},
			[][2]int64{{110, 139}}, 0},
		{"the other replica delivered only before the range", md.Futures, []step{
			frame("A", 480), frame("B", 500), report("B", 500, 599), frame("B", 600), frame("B", 700)},
			[][2]int64{{500, 599}}, 0},
		{"the reporter's own frames inside do not count", md.Spot, []step{
			frame("B", 100), frame("B", 150), frame("B", 250), overflow("B", 100, 300), frame("B", 310)},
			[][2]int64{{100, 300}}, 0},
		{"both replicas missed part of the range: both stay gaps", md.Spot, []step{
			frame("A", 100), frame("A", 130), frame("B", 140), frame("B", 150),
			report("A", 130, 189), frame("A", 190), frame("A", 200),
			report("B", 150, 209), frame("B", 210), frame("A", 220)},
			[][2]int64{{130, 189}, {150, 209}}, 0},
		{"an overlapping report of the straddling replica arrives later", md.Futures, []step{
			frame("A", 480), frame("B", 500), report("B", 500, 599), frame("B", 600),
			frame("A", 650), report("A", 480, 649)},
			[][2]int64{{500, 599}, {480, 649}}, 0},
		{"two disjoint reports of both replicas are both covered", md.Spot, []step{
			frame("A", 100), frame("B", 110), frame("A", 120), report("B", 110, 129), frame("B", 130),
			frame("B", 140), frame("B", 150), report("A", 130, 159), frame("A", 160), frame("B", 170)},
			nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sink := &fakeSink{}
			c := testCore(t, dir, sink)
			ctx := context.Background()
			for i, s := range tt.steps {
				seq := uint64(i + 1)
				recv := t0 + int64(i)*int64(100*time.Millisecond)
				var m Msg
				switch {
				case s.reportedBy != "":
					m = partialGapMsg(seq, tt.market, "ABCUSDT", s.reportedBy, s.reason, s.id, s.resume, recv)
				case tt.market == md.Spot:
					m = spotPartialMsg(seq, "ABCUSDT", s.src, s.id, recv)
				default:
					m = futuresPartialMsg(seq, "ABCUSDT", s.src, s.id, recv)
				}
				if err := c.Handle(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.SealAll(ctx); err != nil {
				t.Fatal(err)
			}
			if len(sink.sealed) != 1 {
				t.Fatalf("sealed %v, want one file", sink.sealed)
			}
			m := readManifestFile(t, dir, sink.sealed[0])
			var got [][2]int64
			for _, g := range m.Gaps {
				got = append(got, [2]int64{g.AfterID, g.ResumePrevID})
				if g.DetectedBy != "collector" || len(g.Reports) != 1 {
					t.Errorf("gap %+v", g)
				}
			}
			if len(got) != len(tt.wantGaps) || m.GapCount != len(tt.wantGaps) {
				t.Fatalf("gaps %v (gap_count %d), want %v", got, m.GapCount, tt.wantGaps)
			}
			for i := range got {
				if got[i] != tt.wantGaps[i] {
					t.Fatalf("gaps %v, want %v", got, tt.wantGaps)
				}
			}
			if len(m.Covered) != tt.wantCovered {
				t.Fatalf("covered %+v, want %d", m.Covered, tt.wantCovered)
			}
		})
	}
}

// TestCheckpointV1 proves that a checkpoint written by the version 1
// writer (testdata/checkpoint-v1, from v1Msgs) is read: the stream
// position, the open files' rows and the recent ids carry over, and the
// partial gap reports it held become claims decided at seal. Its ids have
// no sources, so they are no evidence: B's spot report (110, 139] is
// covered by A's frame 135 arriving after the upgrade, while B's USD-M
// report (500, 599] stays a gap although A's 450 (before the upgrade) and
// 700 (after) straddle it.
func TestCheckpointV1(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("testdata/checkpoint-v1")
	if err != nil {
		t.Fatal(err)
	}
	sd := filepath.Join(dir, ".writer", "0-of-1")
	if err := os.MkdirAll(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sd, ckptName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	sink := &fakeSink{}
	c := testCore(t, dir, sink)
	if c.LastSeq() != uint64(len(v1Msgs())) {
		t.Fatalf("last seq %d, want %d", c.LastSeq(), len(v1Msgs()))
	}
	ctx := context.Background()
	at := t0 + int64(20*100*time.Millisecond)
	for _, m := range []Msg{
		spotPartialMsg(11, "ABCUSDT", "A", 120, at), // a duplicate of a row before the upgrade
		spotPartialMsg(12, "ABCUSDT", "A", 135, at),
		futuresPartialMsg(13, "XYZUSDT", "A", 700, at),
	} {
		if err := c.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		rows    int64
		gaps    [][2]int64
		covered int
	}{
		"spot/partial_orderbooks/ABCUSDT/2025-03-01T1200.parquet":    {6, nil, 1},
		"futures/partial_orderbooks/XYZUSDT/2025-03-01T1200.parquet": {4, [][2]int64{{500, 599}}, 0},
	}
	if len(sink.sealed) != len(want) {
		t.Fatalf("sealed %v", sink.sealed)
	}
	for _, rel := range sink.sealed {
		w, ok := want[rel]
		if !ok {
			t.Fatalf("sealed %s", rel)
		}
		m := readManifestFile(t, dir, rel)
		var gaps [][2]int64
		for _, g := range m.Gaps {
			gaps = append(gaps, [2]int64{g.AfterID, g.ResumePrevID})
		}
		if m.Rows != w.rows || len(m.Covered) != w.covered || m.GapCount != len(w.gaps) || len(gaps) != len(w.gaps) || (len(gaps) > 0 && gaps[0] != w.gaps[0]) {
			t.Errorf("%s: rows %d, gaps %v, covered %+v; want %d rows, gaps %v, %d covered", rel, m.Rows, gaps, m.Covered, w.rows, w.gaps, w.covered)
		}
	}
}

// TestCheckpointVersion proves that a checkpoint of an unknown (newer)
// format is refused with ErrCheckpointVersion and the versions this
// writer reads.
func TestCheckpointVersion(t *testing.T) {
	b := newState().encode(header{shard: "0-of-1", periodNs: int64(time.Minute)}, nil)
	if _, _, err := decodeState(b); err != nil {
		t.Fatal(err)
	}
	b[len(ckptMagic)] = ckptVersion + 1 // one-byte uvarint
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	_, _, err := decodeState(b)
	if !errors.Is(err, ErrCheckpointVersion) || !strings.Contains(err.Error(), "versions 1 to "+itoa(ckptVersion)) {
		t.Fatalf("err = %v, want ErrCheckpointVersion", err)
	}
}
