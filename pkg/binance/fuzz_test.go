package binance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
)

// seedFrames returns real frames for the fuzz corpora: the first frames of
// every stream of every recording (small ones, so the fuzzer stays fast),
// every single message, and hand-made control and edge-case frames.
func seedFrames(tb testing.TB) [][]byte {
	tb.Helper()
	dir := testdataDir(tb)
	files, err := filepath.Glob(filepath.Join(dir, "*.rec.gz"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no recordings in %s: %v", dir, err)
	}
	var out [][]byte
	for _, path := range files {
		r, err := recording.Open(path)
		if err != nil {
			tb.Fatal(err)
		}
		perStream := map[string]int{}
		for n := 0; n < 2000; n++ {
			f, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				tb.Fatal(err)
			}
			var h Header
			if ScanFrame(f.JSON, &h) != nil || len(f.JSON) > 8<<10 {
				continue
			}
			if perStream[string(h.Stream)]++; perStream[string(h.Stream)] <= 8 {
				out = append(out, bytes.Clone(f.JSON))
			}
		}
		r.Close()
	}
	fh, err := os.Open(filepath.Join(dir, "single_messages.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var msg singleMessage
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			tb.Fatal(err)
		}
		out = append(out, []byte(msg.Raw))
	}
	for _, s := range []string{
		`{"result":null,"id":1}`,
		`{"result":["btcusdt@depth"],"id":3}`,
		`{"error":{"code":2,"msg":"Invalid request"},"id":7}`,
		`{"code":-1121,"msg":"Invalid symbol."}`,
		`{"event":{"e":"serverShutdown","E":1770123456789}}`,
		`{"e":"serverShutdown","E":1770123456789}`,
		`{"stream":"x@depth","data":{"e":"serverShutdown","E":1}}`,
		`{"data":{"u":7,"U":5},"stream":"x@depth"}`,
		`{"str\u0065am":"x@depth","data":{"\u0055":5,"p\u0075":4}}`,
		`{"stream":"x","data":{"U":-9223372036854775808,"u":9223372036854775807}}`,
		`{"stream":"x","data":{"s":"B\"U\":7","k":{"U":1},"b":[["1","2",{"U":9}]],"u":6}}`,
		`{"stream":"a","stream":"b","data":{"u":1},"data":{"u":2,"u":3}}`,
		`{"u":1,"b":[["0.00000001","0"]],"a":[["1e5","1"]]}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

var frameHasBits = HasStream | HasData

const seqBits = HasEventType | HasEventTime | HasTransactionTime | HasSymbol | HasFirstUpdateID |
	HasFinalUpdateID | HasPrevFinalUpdateID | HasLastUpdateID | HasBids | HasAsks

// sameSeqAsRef compares a scanned Seq with the reference's: presence bits
// and every integer; e and s where the reference saw them.
func sameSeqAsRef(t *testing.T, got *Seq, ref *Depth) {
	t.Helper()
	if got.Has&seqBits != ref.Has&seqBits {
		t.Fatalf("Has = %s, reference %s", got.Has&seqBits, ref.Has&seqBits)
	}
	if got.EventTime != ref.EventTime || got.TransactionTime != ref.TransactionTime ||
		got.FirstUpdateID != ref.FirstUpdateID || got.FinalUpdateID != ref.FinalUpdateID ||
		got.PrevFinalUpdateID != ref.PrevFinalUpdateID || got.LastUpdateID != ref.LastUpdateID {
		t.Fatalf("E,T,U,u,pu,lastUpdateId = %d,%d,%d,%d,%d,%d, encoding/json %d,%d,%d,%d,%d,%d",
			got.EventTime, got.TransactionTime, got.FirstUpdateID, got.FinalUpdateID, got.PrevFinalUpdateID, got.LastUpdateID,
			ref.EventTime, ref.TransactionTime, ref.FirstUpdateID, ref.FinalUpdateID, ref.PrevFinalUpdateID, ref.LastUpdateID)
	}
	if string(got.EventType) != string(ref.EventType) || string(got.Symbol) != string(ref.Symbol) {
		t.Fatalf("e, s = %q, %q, reference %q, %q", got.EventType, got.Symbol, ref.EventType, ref.Symbol)
	}
}

// FuzzScanFrame holds ScanFrame and ScanData to these properties:
//   - they never panic, and every error wraps ErrMalformed;
//   - on success the whole input is valid JSON (encoding/json.Valid), and
//     Data is a subslice of the input that is valid JSON;
//   - for a market-data frame, Stream, Data and the scanned e, s, E, T, U,
//     u, pu and lastUpdateId equal what encoding/json decodes, last
//     duplicate winning;
//   - conversely, every frame the encoding/json reference reads as a
//     market-data frame scans successfully (no false rejections).
func FuzzScanFrame(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var h Header
		err := ScanFrame(frame, &h)
		refStream, refData, refSeq, refOK := refFrameScan(frame)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if refOK {
				t.Fatalf("encoding/json reads a market-data frame, ScanFrame says %v", err)
			}
		} else {
			if !refValid(frame) {
				t.Fatal("ScanFrame accepted invalid JSON")
			}
			if !within(h.Data, frame) || !json.Valid(h.Data) {
				t.Fatalf("Data %q is not a valid JSON subslice of the frame", h.Data)
			}
			if h.Has&frameHasBits == frameHasBits {
				if !refOK {
					t.Fatal("ScanFrame found a market-data frame, encoding/json does not")
				}
				if !bytes.Equal(h.Data, refData) {
					t.Fatalf("Data = %q, encoding/json %q", h.Data, refData)
				}
				// encoding/json unescapes and replaces invalid UTF-8;
				// Stream is the raw contents.
				if bytes.IndexByte(h.Stream, '\\') < 0 && utf8.Valid(h.Stream) && string(h.Stream) != refStream {
					t.Fatalf("Stream = %q, encoding/json %q", h.Stream, refStream)
				}
				sameSeqAsRef(t, &h.Seq, refSeq)
			} else if h.Control == ControlNone {
				t.Fatal("neither a market-data frame nor a control frame")
			}
			if h.Has&HasID != 0 {
				checkRefID(t, frame, h.ID)
			}
		}

		// ScanData on the same bytes.
		var hd Header
		errData := ScanData(frame, &hd)
		var refPay *Depth
		if refValid(frame) {
			if ms, err := refMembers(frame); err == nil {
				refPay, _ = refPayload(ms, false)
			}
		}
		if errData != nil {
			if !errors.Is(errData, ErrMalformed) {
				t.Fatalf("ScanData error %v does not wrap ErrMalformed", errData)
			}
			if refPay != nil {
				t.Fatalf("encoding/json reads a payload, ScanData says %v", errData)
			}
			return
		}
		if refPay == nil {
			t.Fatal("ScanData accepted what encoding/json rejects")
		}
		if !within(hd.Data, frame) || !json.Valid(hd.Data) {
			t.Fatalf("ScanData Data %q is not a valid JSON subslice", hd.Data)
		}
		if hd.Control != ControlShutdown {
			sameSeqAsRef(t, &hd.Seq, refPay)
		}
	})
}

// checkRefID compares a control reply's id with encoding/json's.
func checkRefID(t *testing.T, frame []byte, id int64) {
	t.Helper()
	ms, err := refMembers(frame)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	var ok bool
	for _, m := range ms {
		if m.key == "id" {
			want, ok = refInt(m.raw)
		}
	}
	if !ok || want != id {
		t.Fatalf("id = %d, encoding/json %d (%v)", id, want, ok)
	}
}

// FuzzDecodeDepth holds DecodeDepth to the encoding/json reference decoder
// (refDecode): both accept or both reject, and on success every scalar and
// every level value agree bit for bit. Errors wrap ErrMalformed or
// ErrImpossibleValue, and ScanData reads the same scalars.
func FuzzDecodeDepth(f *testing.F) {
	for _, s := range seedFrames(f) {
		var h Header
		if ScanFrame(s, &h) == nil && h.Has&HasData != 0 && h.Data[0] == '{' {
			f.Add(bytes.Clone(h.Data))
		} else {
			f.Add(s)
		}
	}
	for _, s := range []string{
		`{"u":1,"b":[["NaN","1"]],"a":[]}`,
		`{"u":1,"b":[["0","1"]],"a":[]}`,
		`{"u":1,"b":[["1","2","3"]],"a":[]}`,
		`{"u":1,"b":[["1\u002e5","1"]],"a":[]}`,
		`{"U":5,"u":4,"b":[],"a":[]}`,
		`{"u":1,"b":[["0.1000000000000000055511151231257827","9007199254740993"]],"a":[]}`,
	} {
		f.Add([]byte(s))
	}
	var d Depth // reused across inputs, as the writer does
	f.Fuzz(func(t *testing.T, data []byte) {
		err := DecodeDepth(data, &d)
		ref, refErr := refDecode(data)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("DecodeDepth: %v, reference: %v", err, refErr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrImpossibleValue) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrImpossibleValue", err)
			}
			return
		}
		sameSeqAsRef(t, &d.Seq, ref)
		if !sameLevels(d.Bids, ref.Bids) || !sameLevels(d.Asks, ref.Asks) {
			t.Fatalf("levels %v / %v, reference %v / %v", d.Bids, d.Asks, ref.Bids, ref.Asks)
		}
		var h Header
		if err := ScanData(data, &h); err != nil {
			t.Fatalf("DecodeDepth accepts, ScanData says %v", err)
		}
		if h.Control == ControlNone && !sameScalars(&h.Seq, &d.Seq) {
			t.Fatalf("ScanData %+v, DecodeDepth %+v", h.Seq, d.Seq)
		}
	})
}

// FuzzParseStreamName: never panics; errors are ErrNotDepth or
// ErrBadStream; an accepted name is rebuilt exactly from its parts by the
// stream builders, its symbol aliases the input and upper-cases to a valid
// md symbol.
func FuzzParseStreamName(f *testing.F) {
	for _, s := range seedFrames(f) {
		var h Header
		if ScanFrame(s, &h) == nil {
			f.Add(string(h.Stream))
		}
	}
	for _, s := range []string{"btcusdt@depth20@100ms", "btcusdt@depth@0ms", "nknusdt@depthSnapshot", "币安人生usdt@depth",
		"btcusdt@depth7", "BTCUSDT@depth", "!bookTicker", "@depth", "btcusdt@depth@10000ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		b := []byte(name)
		info, err := ParseStreamName(b)
		if err != nil {
			if !errors.Is(err, ErrNotDepth) && !errors.Is(err, ErrBadStream) {
				t.Fatalf("error %v is neither ErrNotDepth nor ErrBadStream", err)
			}
			return
		}
		if !within(info.Symbol, b) || !within(info.Speed, b) {
			t.Fatal("Symbol or Speed does not alias the name")
		}
		var rebuilt string
		switch info.Kind {
		case md.Diff:
			rebuilt = DiffStream(string(info.Symbol), string(info.Speed))
		case md.Partial:
			rebuilt = PartialStream(string(info.Symbol), info.Levels, string(info.Speed))
			if info.Levels != 5 && info.Levels != 10 && info.Levels != 20 {
				t.Fatalf("levels %d", info.Levels)
			}
		case md.Snapshot:
			rebuilt = string(info.Symbol) + "@depthSnapshot"
		default:
			t.Fatalf("kind %v", info.Kind)
		}
		if rebuilt != name {
			t.Fatalf("rebuilt %q from %q", rebuilt, name)
		}
		if up := string(AppendUpperSymbol(nil, info.Symbol)); !md.ValidSymbol(up) {
			t.Fatalf("symbol %q upper-cases to invalid %q", info.Symbol, up)
		}
		if len(info.Speed) > 0 {
			if _, err := strconv.Atoi(string(info.Speed[:len(info.Speed)-2])); err != nil {
				t.Fatalf("speed %q", info.Speed)
			}
		}
	})
}

// FuzzParseDecimal holds parseDecimal to its definition: a string matching
// digits ['.' digits] converts to strconv.ParseFloat's bits (or is out of
// range for both); anything else is rejected.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0", "2683.80000000", "0.00000001", "9007199254740993", "1234567890123456789.5",
		"0.1000000000000000055511151231257827", "1.", ".1", "-1", "1e5", "NaN", "00.0100", "1" + string(make([]byte, 400))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return
		}
		got, reason := parseDecimal([]byte(s))
		if !decimalRE.MatchString(s) {
			if reason == "" {
				t.Fatalf("%q accepted", s)
			}
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if (err != nil) != (reason != "") {
			t.Fatalf("%q: reason %q, ParseFloat %v", s, reason, err)
		}
		if err == nil && math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%q: %v, ParseFloat %v", s, got, want)
		}
	})
}
