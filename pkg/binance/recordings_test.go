package binance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
)

// testdataDir is the shared Binance testdata, located relative to this
// package. A missing directory fails the test: every test here depends on
// real frames.
func testdataDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "testdata", "binance")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		tb.Fatalf("shared Binance testdata not found at %s (from pkg/binance): %v", dir, err)
	}
	return dir
}

// recordingFacts are the facts the testdata README states per file.
var recordingFacts = map[string]struct {
	frames    int
	snapshots int
	// bridgeAtNext: the first applicable event of every snapshot has
	// U == lastUpdateId+1 (spot_2021-10-12).
	bridgeAtNext bool
	// uEqualsL: how many snapshots' first applicable event has
	// u == lastUpdateId (-1: not stated).
	uEqualsL int
	// limit is the REST depth limit of the snapshots.
	limit int
}{
	"spot_2021-10-12_4sym.rec.gz":            {frames: 183, snapshots: 4, bridgeAtNext: true, uEqualsL: -1, limit: 1000},
	"spot_2021-08-14_4sym.rec.gz":            {frames: 578, snapshots: 4, uEqualsL: -1, limit: 5000},
	"futures_2021-07-22_4sym.rec.gz":         {frames: 859, snapshots: 4, uEqualsL: 3, limit: 1000},
	"futures_2021-04-17_4sym.rec.gz":         {frames: 1205, snapshots: 4, uEqualsL: -1, limit: 1000},
	"spot_ethusdt_2024-08-08T2354.rec.gz":    {frames: 79744, snapshots: 1, uEqualsL: -1, limit: 1000},
	"futures_ethusdt_2024-08-08T2354.rec.gz": {frames: 74655, snapshots: 1, uEqualsL: -1, limit: 1000},
}

// refFrame is the encoding/json view of a combined frame.
type refFrame struct {
	Stream string          `json:"stream"`
	Data   json.RawMessage `json:"data"`
}

type seqEvent struct{ U, u, pu int64 }

// TestRecordings walks every frame of every recording and proves, on real
// Binance data:
//   - every frame scans as a market-data frame, and the scanned Stream and
//     Data are byte-identical to what encoding/json finds (Data can be
//     published untouched);
//   - every depth frame decodes, passes Seq.Check for its market and kind,
//     and the decoder's levels equal an encoding/json + strconv reference
//     bit for bit; the scanned sequence fields equal the decoded ones;
//   - non-depth frames (aggTrade, trade, bookTicker) are ErrNotDepth;
//   - per symbol, every diff follows the previous one (spot U == prev u+1,
//     futures pu == prev u): the files have no gaps;
//   - every REST snapshot is a sane book (sorted, not crossed) of at most
//     the file's depth limit a side, some cut exactly at it, and the
//     market profile allows that limit;
//   - for every REST snapshot the first non-stale diff bridges it (spot
//     U <= lastUpdateId+1 <= u, futures U <= lastUpdateId <= u), with the
//     README's per-file facts (spot_2021-10-12: U == lastUpdateId+1;
//     futures_2021-07-22: 3 snapshots with u == lastUpdateId).
func TestRecordings(t *testing.T) {
	dir := testdataDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.rec.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(recordingFacts) {
		t.Fatalf("found %d recordings in %s, want %d", len(files), dir, len(recordingFacts))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			facts, ok := recordingFacts[name]
			if !ok {
				t.Fatalf("no facts for %s", name)
			}
			m, err := recording.MarketFromFileName(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DepthWeight(m, facts.limit); err != nil {
				t.Fatalf("the snapshots' limit is not allowed by the profile: %v", err)
			}
			walkRecording(t, path, m, facts.frames, facts.snapshots, facts.bridgeAtNext, facts.uEqualsL, facts.limit)
		})
	}
}

func walkRecording(t *testing.T, path string, m md.Market, wantFrames, wantSnaps int, bridgeAtNext bool, wantUEqualsL, limit int) {
	r, err := recording.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	var (
		h       Header
		d       Depth
		frames  int
		nonDep  int
		links   int
		prev    = map[string]int64{}
		diffs   = map[string][]seqEvent{}
		snaps   = map[string][]int64{}
		levels  int
		nSnaps  int
		uEqualL int
		atLimit int
	)
	for {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames++
		if err := ScanFrame(f.JSON, &h); err != nil {
			t.Fatalf("line %d: %v", f.Line, err)
		}
		if h.Control != ControlNone {
			t.Fatalf("line %d: control %v on a market-data frame", f.Line, h.Control)
		}
		var ref refFrame
		if err := json.Unmarshal(f.JSON, &ref); err != nil {
			t.Fatalf("line %d: encoding/json: %v", f.Line, err)
		}
		if string(h.Stream) != ref.Stream || !bytes.Equal(h.Data, ref.Data) {
			t.Fatalf("line %d: scanned stream/data differ from encoding/json", f.Line)
		}

		info, err := ParseStreamName(h.Stream)
		if errors.Is(err, ErrNotDepth) {
			typ := ref.Stream[strings.IndexByte(ref.Stream, '@')+1:]
			if typ != "aggTrade" && typ != "trade" && typ != "bookTicker" {
				t.Fatalf("line %d: unexpected non-depth stream %q", f.Line, ref.Stream)
			}
			nonDep++
			continue
		}
		if err != nil {
			t.Fatalf("line %d: %v", f.Line, err)
		}
		sym := string(info.Symbol)

		if info.Kind == md.Snapshot {
			err = DecodeREST(h.Data, &d)
		} else {
			err = DecodeDepth(h.Data, &d)
		}
		if err != nil {
			t.Fatalf("line %d: %v", f.Line, err)
		}
		if err := d.Check(m, info.Kind); err != nil {
			t.Fatalf("line %d: %v", f.Line, err)
		}
		if err := h.Check(m, info.Kind); err != nil {
			t.Fatalf("line %d: scanned header: %v", f.Line, err)
		}
		if !sameScalars(&h.Seq, &d.Seq) {
			t.Fatalf("line %d: scanned %+v, decoded %+v", f.Line, h.Seq, d.Seq)
		}
		if d.Has&HasSymbol != 0 && string(d.Symbol) != string(AppendUpperSymbol(nil, info.Symbol)) {
			t.Fatalf("line %d: symbol %q in stream %q", f.Line, d.Symbol, h.Stream)
		}
		levels += len(d.Bids) + len(d.Asks)
		checkLevelsAgainstRef(t, f.Line, h.Data, &d)

		switch info.Kind {
		case md.Snapshot:
			nSnaps++
			snaps[sym] = append(snaps[sym], d.LastUpdateID)
			if checkBook(t, f.Line, &d, limit) {
				atLimit++
			}
		case md.Diff:
			if p, ok := prev[sym]; ok {
				if !Follows(m, p, d.FirstUpdateID, d.PrevFinalUpdateID) {
					t.Fatalf("line %d: %s: event U=%d pu=%d does not follow u=%d (missing (%d, %d])",
						f.Line, sym, d.FirstUpdateID, d.PrevFinalUpdateID, p, p, PrevLink(m, d.FirstUpdateID, d.PrevFinalUpdateID))
				}
				links++
			}
			prev[sym] = d.FinalUpdateID
			diffs[sym] = append(diffs[sym], seqEvent{d.FirstUpdateID, d.FinalUpdateID, d.PrevFinalUpdateID})
		default:
			t.Fatalf("line %d: unexpected kind %v in a recording", f.Line, info.Kind)
		}
	}

	if frames != wantFrames {
		t.Errorf("frames = %d, want %d", frames, wantFrames)
	}
	if nSnaps != wantSnaps {
		t.Errorf("snapshots = %d, want %d", nSnaps, wantSnaps)
	}
	if links == 0 {
		t.Error("no diff pairs checked")
	}
	if atLimit == 0 {
		t.Errorf("no snapshot has %d levels on a side", limit)
	}

	// The bridge: buffer every diff of the symbol (the 2024 futures snapshot
	// arrived after its bridging event), drop stale ones, and the first
	// remaining event must bridge the snapshot.
	for sym, ls := range snaps {
		for _, L := range ls {
			var first *seqEvent
			for i := range diffs[sym] {
				if !Stale(m, diffs[sym][i].u, L) {
					first = &diffs[sym][i]
					break
				}
			}
			if first == nil {
				t.Errorf("%s: no diff after snapshot %d", sym, L)
				continue
			}
			if !Bridges(m, first.U, first.u, L) {
				t.Errorf("%s: first applicable event [%d, %d] does not bridge lastUpdateId %d", sym, first.U, first.u, L)
			}
			if bridgeAtNext {
				if first.U != L+1 {
					t.Errorf("%s: first applicable U = %d, want lastUpdateId+1 = %d", sym, first.U, L+1)
				}
				if !containsU(diffs[sym], L) {
					t.Errorf("%s: lastUpdateId %d is no event's u", sym, L)
				}
				// The docs' wording "lastUpdateId within [U;u]" rejects
				// this event, which is the right one to apply.
				if FuturesBridges(first.U, first.u, L) {
					t.Errorf("%s: [%d, %d] contains lastUpdateId %d", sym, first.U, first.u, L)
				}
			}
			if first.u == L {
				uEqualL++
			}
		}
	}
	if wantUEqualsL >= 0 && uEqualL != wantUEqualsL {
		t.Errorf("snapshots whose first applicable event has u == lastUpdateId: %d, want %d", uEqualL, wantUEqualsL)
	}
	t.Logf("%d frames (%d non-depth), %d snapshots, %d diff links checked, %d levels compared",
		frames, nonDep, nSnaps, links, levels)
}

// checkBook checks a decoded REST snapshot: at most limit levels a side,
// bids strictly descending, asks strictly ascending, and the book not
// crossed. It catches swapped sides and misread prices. It reports whether
// the limit cut a side (illiquid books can have fewer levels).
func checkBook(t *testing.T, line int, d *Depth, limit int) bool {
	t.Helper()
	if len(d.Bids) > limit || len(d.Asks) > limit {
		t.Fatalf("line %d: %d bids, %d asks for limit %d", line, len(d.Bids), len(d.Asks), limit)
	}
	for i := 1; i < len(d.Bids); i++ {
		if d.Bids[i].Price >= d.Bids[i-1].Price {
			t.Fatalf("line %d: bids not descending at %d", line, i)
		}
	}
	for i := 1; i < len(d.Asks); i++ {
		if d.Asks[i].Price <= d.Asks[i-1].Price {
			t.Fatalf("line %d: asks not ascending at %d", line, i)
		}
	}
	if len(d.Bids) > 0 && len(d.Asks) > 0 && d.Bids[0].Price >= d.Asks[0].Price {
		t.Fatalf("line %d: crossed book %v / %v", line, d.Bids[0], d.Asks[0])
	}
	return len(d.Bids) == limit || len(d.Asks) == limit
}

func containsU(ev []seqEvent, u int64) bool {
	for _, e := range ev {
		if e.u == u {
			return true
		}
	}
	return false
}

// sameScalars compares the scalar fields and the presence mask.
func sameScalars(a, b *Seq) bool {
	const seqFields = HasEventType | HasEventTime | HasTransactionTime | HasSymbol | HasFirstUpdateID |
		HasFinalUpdateID | HasPrevFinalUpdateID | HasLastUpdateID | HasBids | HasAsks
	return a.Has&seqFields == b.Has&seqFields && string(a.EventType) == string(b.EventType) && string(a.Symbol) == string(b.Symbol) &&
		a.EventTime == b.EventTime && a.TransactionTime == b.TransactionTime &&
		a.FirstUpdateID == b.FirstUpdateID && a.FinalUpdateID == b.FinalUpdateID &&
		a.PrevFinalUpdateID == b.PrevFinalUpdateID && a.LastUpdateID == b.LastUpdateID
}

// checkLevelsAgainstRef decodes data with the encoding/json reference and
// requires identical levels, bit for bit.
func checkLevelsAgainstRef(t *testing.T, line int, data []byte, d *Depth) {
	t.Helper()
	ref, err := refDecode(data)
	if err != nil {
		t.Fatalf("line %d: reference decoder: %v", line, err)
	}
	if !sameLevels(ref.Bids, d.Bids) || !sameLevels(ref.Asks, d.Asks) {
		t.Fatalf("line %d: levels differ from the reference decoder", line)
	}
}

// singleMessage is a line of single_messages.jsonl.
type singleMessage struct {
	Kind   string `json:"msg_kind(test mod)"`
	Market string `json:"market(test fn)"`
	Raw    string `json:"raw"`
}

// TestSingleMessages runs all 51 single real messages: every one scans (the
// combined ones with ScanFrame, REST bodies with ScanData) with Data
// byte-identical to the data value; depth messages (l2_event, l2_topk,
// l2_snapshot) decode, pass Seq.Check as USD-M-shaped (linear and inverse)
// or spot payloads, and agree with the reference decoder; the others are
// ErrNotDepth streams or bodies without depth fields.
func TestSingleMessages(t *testing.T) {
	f, err := os.Open(filepath.Join(testdataDir(t), "single_messages.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var n, depth int
	for sc.Scan() {
		n++
		var msg singleMessage
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		raw := []byte(msg.Raw)
		m := md.Futures // linear_* are USD-M; inverse_* (coin-M) share its shapes
		if msg.Market == "spot" {
			m = md.Spot
		}
		var h Header
		var d Depth
		isDepth := strings.HasPrefix(msg.Kind, "l2_")
		if isDepth {
			depth++
		}

		if msg.Kind == "l2_snapshot" || msg.Kind == "open_interest" {
			// REST bodies.
			if err := ScanData(raw, &h); err != nil || h.Control != ControlNone || !bytes.Equal(h.Data, raw) {
				t.Fatalf("line %d: ScanData: %v, control %v", n, err, h.Control)
			}
			err := DecodeREST(raw, &d)
			if !isDepth {
				if !errors.Is(err, ErrMissingField) {
					t.Fatalf("line %d: %s body decoded as depth: %v", n, msg.Kind, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("line %d: %v", n, err)
			}
			if err := d.Check(m, md.Snapshot); err != nil {
				t.Fatalf("line %d: %v", n, err)
			}
			checkLevelsAgainstRef(t, n, raw, &d)
			continue
		}

		if err := ScanFrame(raw, &h); err != nil || h.Control != ControlNone {
			t.Fatalf("line %d: ScanFrame: %v, control %v", n, err, h.Control)
		}
		var ref refFrame
		if err := json.Unmarshal(raw, &ref); err != nil {
			t.Fatal(err)
		}
		if string(h.Stream) != ref.Stream || !bytes.Equal(h.Data, ref.Data) {
			t.Fatalf("line %d: scanned stream/data differ from encoding/json", n)
		}
		info, err := ParseStreamName(h.Stream)
		if !isDepth {
			if !errors.Is(err, ErrNotDepth) {
				t.Fatalf("line %d: %s stream %q: err = %v, want ErrNotDepth", n, msg.Kind, h.Stream, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		wantKind := md.Diff
		if msg.Kind == "l2_topk" {
			wantKind = md.Partial
		}
		if info.Kind != wantKind {
			t.Fatalf("line %d: kind %v, want %v", n, info.Kind, wantKind)
		}
		if err := DecodeDepth(h.Data, &d); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if err := d.Check(m, info.Kind); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if !sameScalars(&h.Seq, &d.Seq) {
			t.Fatalf("line %d: scanned %+v, decoded %+v", n, h.Seq, d.Seq)
		}
		if _, ok := d.DedupID(m, info.Kind); !ok {
			t.Fatalf("line %d: no dedup id", n)
		}
		checkLevelsAgainstRef(t, n, h.Data, &d)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 51 || depth != 16 {
		t.Fatalf("read %d messages (%d depth), want 51 (16 depth)", n, depth)
	}
}
