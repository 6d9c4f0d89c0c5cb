package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality/qualitytest"
)

// run runs the command line and returns the exit status, stdout and
// stderr.
func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestVerifyMutations damages a real recording (spot NKNUSDT of
// 2021-10-12, 150 diffs after one snapshot) in one way per case, imports it
// with the real importer and writer (or damages the sealed file), and runs
// `depthcap verify --json`. It proves the exit status (0 clean, 1 found)
// and that each damage is reported exactly: a lost frame as the one gap it
// leaves (ids, from the rows and the writer's manifest), a row deleted from
// a sealed file as a gap the manifest does not know, a changed quantity in
// a diff as a mismatch at that price with the next snapshot, and a bid put
// above the best ask as a crossed book at that event.
func TestVerifyMutations(t *testing.T) {
	const symbol = "NKNUSDT"
	recName := "spot_2021-10-12_4sym.rec.gz"
	lines := qualitytest.ReadLines(t, qualitytest.Recording(recName))
	const k = 60 // the event the damage is done to
	_, evs := qualitytest.Follow(t, md.Spot, symbol, lines, func(i int) bool { return i == k })
	if len(evs) < 140 {
		t.Fatalf("%d events", len(evs))
	}
	ev := evs[k]
	without := func(drop int) []qualitytest.Line {
		out := append([]qualitytest.Line(nil), lines[:drop]...)
		return append(out, lines[drop+1:]...)
	}
	replace := func(i int, js string) []qualitytest.Line {
		out := append([]qualitytest.Line(nil), lines...)
		out[i].JSON = js
		return out
	}
	level := func(l [][2]string) (float64, string) {
		p, _ := strconv.ParseFloat(l[0][0], 64)
		return p, l[0][1]
	}
	// The true snapshot after event k, received with event k+1: it must
	// disagree with a book that took a changed quantity at event k.
	snapAfterK := func(ls []qualitytest.Line) []qualitytest.Line {
		b, a := ev.After.Top(1000)
		return append(ls, qualitytest.Line{RecvNs: evs[k+1].Recv + 1, JSON: qualitytest.SnapshotFrame(md.Spot, symbol, ev.Frame.Final, b, a, 0)})
	}
	f := ev.Frame
	// Diff rows of NKNUSDT are in stream order: event k is this row of the
	// file; with it lost, the row after the gap takes its place.
	const diffFile = "spot/diff_orderbooks/" + symbol + "/2021-10-12.parquet"
	row := int64(0)
	for _, l := range lines[:ev.Line] {
		if fr, ok := qualitytest.Decode(t, l.JSON); ok && fr.Kind == md.Diff && fr.Symbol == symbol {
			row++
		}
	}
	var altered qualitytest.Frame
	var alteredPrice float64
	var alteredSide string
	if len(f.Bids) > 0 {
		altered = f
		altered.Bids = append([][2]string{{f.Bids[0][0], "999.0"}}, f.Bids[1:]...)
		alteredPrice, _ = level(f.Bids)
		alteredSide = "bid"
	} else {
		altered = f
		altered.Asks = append([][2]string{{f.Asks[0][0], "999.0"}}, f.Asks[1:]...)
		alteredPrice, _ = level(f.Asks)
		alteredSide = "ask"
	}
	// A bid at the best ask of the book after event k crosses it.
	_, asks := ev.After.Top(1)
	crossing := f
	crossing.Bids = append([][2]string{{asks[0][0], "1.0"}}, f.Bids...)

	for _, tc := range []struct {
		name    string
		lines   []qualitytest.Line
		damage  func(t *testing.T, data string) // after import
		code    int
		check   func(t *testing.T, r *quality.Report)
		problem string
	}{
		{name: "clean", lines: lines, code: ExitOK, check: func(t *testing.T, r *quality.Report) {
			if !r.Clean() || len(r.Gaps) != 0 {
				t.Errorf("problems %v gaps %v", r.Problems, r.Gaps)
			}
		}},
		{name: "lost frame", lines: without(ev.Line), code: ExitFound, problem: "1 gaps", check: func(t *testing.T, r *quality.Report) {
			if len(r.Gaps) != 1 {
				t.Fatalf("gaps %+v", r.Gaps)
			}
			g := r.Gaps[0]
			if g.Kind != "diff" || g.AfterID != evs[k-1].Frame.Final || g.ResumePrevID != f.Final || g.Source != "chain+manifest" ||
				*g.MissingIDs != f.Final-evs[k-1].Frame.Final || g.Manifest == "" {
				t.Errorf("gap %+v, want after %d resume %d from the chain and the manifest", g, evs[k-1].Frame.Final, f.Final)
			}
			if g.RestoredTime != nil {
				t.Errorf("restored at %v: no snapshot follows the gap", g.RestoredTime)
			}
			if g.ResumeRow == nil || *g.ResumeRow != (quality.RowRef{File: diffFile, Row: row}) {
				t.Errorf("resume row %+v, want row %d of %s", g.ResumeRow, row, diffFile)
			}
		}},
		{name: "row deleted from the sealed file", lines: lines, code: ExitFound, problem: "1 gaps",
			damage: func(t *testing.T, data string) {
				qualitytest.DeleteRow(t, filepath.Join(data, diffFile), row)
			},
			check: func(t *testing.T, r *quality.Report) {
				if len(r.Gaps) != 1 {
					t.Fatalf("gaps %+v", r.Gaps)
				}
				g := r.Gaps[0]
				if g.AfterID != evs[k-1].Frame.Final || g.ResumePrevID != f.Final || g.Source != "chain" || g.Reasons[0] != "not in the manifests" ||
					g.ResumeRow == nil || g.ResumeRow.Row != row {
					t.Errorf("gap %+v, want after %d resume %d at row %d seen by the chain only", g, evs[k-1].Frame.Final, f.Final, row)
				}
			}},
		{name: "changed quantity", lines: snapAfterK(replace(ev.Line, qualitytest.DiffFrame(md.Spot, symbol, altered.U, altered.Final, 0, altered.Bids, altered.Asks, altered.E))),
			code: ExitFound, problem: "1 snapshot mismatches", check: func(t *testing.T, r *quality.Report) {
				s := r.Snapshots
				if s.Compared != 1 || s.Mismatched != 1 || len(r.Gaps) != 0 {
					t.Fatalf("snapshots %+v gaps %v", s, r.Gaps)
				}
				c := s.Checks[0]
				want := fmt.Sprintf("%s %v: book 999", alteredSide, alteredPrice)
				if c.Match || c.Diffs != 1 || !strings.HasPrefix(c.FirstDiff, want) || c.LastUpdateID != f.Final {
					t.Errorf("check %+v, want one diff starting %q", c, want)
				}
			}},
		{name: "same snapshot, intact diffs", lines: snapAfterK(lines), code: ExitOK, check: func(t *testing.T, r *quality.Report) {
			if s := r.Snapshots; s.Compared != 1 || s.Matched != 1 {
				t.Errorf("snapshots %+v", s)
			}
		}},
		{name: "crossed book", lines: replace(ev.Line, qualitytest.DiffFrame(md.Spot, symbol, crossing.U, crossing.Final, 0, crossing.Bids, crossing.Asks, crossing.E)),
			code: ExitFound, problem: "events leaving the book crossed", check: func(t *testing.T, r *quality.Report) {
				if len(r.Crossed) != 1 {
					t.Fatalf("crossed %+v", r.Crossed)
				}
				c := r.Crossed[0]
				ask, _ := strconv.ParseFloat(asks[0][0], 64)
				if c.StartID != f.Final || c.Bid.Price != ask || c.Ask.Price != ask {
					t.Errorf("crossing %+v, want from event %d with bid %v", c, f.Final, ask)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			rec := filepath.Join(dir, recName)
			qualitytest.WriteLines(t, rec, tc.lines)
			data := filepath.Join(dir, "data")
			qualitytest.Import(t, data, rec)
			if tc.damage != nil {
				tc.damage(t, data)
			}
			code, out, errOut := run("verify", "--market", "spot", "--symbol", symbol, "--date", "2021-10-12", "--data", data, "--json")
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", code, tc.code, out, errOut)
			}
			var r quality.Report
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("json: %v\n%s", err, out)
			}
			if tc.problem != "" && !strings.Contains(strings.Join(r.Problems, "; "), tc.problem) {
				t.Errorf("problems %v, want %q", r.Problems, tc.problem)
			}
			tc.check(t, &r)
			// Every readable manifest carries the writer's quality
			// summary, reported beside verify's findings (as sealed:
			// a row deleted afterwards does not change it).
			for _, f := range r.Files {
				if f.Manifest != "ok" {
					continue
				}
				q := f.WriterQuality
				if q == nil || q.GapCount != f.ManifestGaps || q.Rows == 0 || (f.Kind == "diff") != (q.Bridge != nil) {
					t.Errorf("%s: writer quality %+v, want the manifest's (%d gaps, rows, bridge for diffs)", f.Path, q, f.ManifestGaps)
				}
			}
			// The table form says the same verdict.
			code2, text, _ := run("verify", "--market", "spot", "--symbol", symbol, "--date", "2021-10-12", "--data", data)
			if code2 != tc.code || (tc.code == ExitOK) != strings.Contains(text, "verdict: CLEAN") {
				t.Errorf("table: exit %d\n%s", code2, text)
			}
			if !strings.Contains(text, "writer quality (manifests, at seal):") || !strings.Contains(text, "snapshots bridged") {
				t.Errorf("table without the writer's quality summary:\n%s", text)
			}
		})
	}
}

// TestVerifyUsage proves the usage errors exit 2 with a message, and a
// day without files exits 1.
func TestVerifyUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"verify"}, ExitUsage, "--market"},
		{[]string{"verify", "--market", "options", "--symbol", "BTCUSDT", "--date", "2026-11-21"}, ExitUsage, "want spot or futures"},
		{[]string{"verify", "--market", "spot", "--symbol", "BTC/USDT", "--date", "2026-11-21"}, ExitUsage, "--symbol"},
		{[]string{"verify", "--market", "spot", "--symbol", "BTCUSDT", "--date", "21.11.2026"}, ExitUsage, "--date"},
		{[]string{"verify", "--market", "spot", "--symbol", "BTCUSDT", "--date", "2026-11-21", "extra"}, ExitUsage, "unexpected"},
		{[]string{"verify", "--bogus"}, ExitUsage, "flag provided but not defined"},
		{[]string{"verify", "--market", "spot", "--symbol", "BTCUSDT", "--date", "2026-11-21", "--data", dir}, ExitFound, "no data"},
		{[]string{"verify", "-h"}, ExitOK, "exit status"},
	} {
		code, _, errOut := run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, want %d; stderr %q should contain %q", tc.args, code, tc.code, errOut, tc.msg)
		}
	}
}
