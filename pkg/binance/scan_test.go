package binance

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

const (
	spotDiffFrame    = `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1622363903670,"s":"BTCUSDT","U":11294093710,"u":11294093726,"b":[["35743.98000000","0.00000000"],["35743.87000000","0.00001500"]],"a":[["35743.88000000","0.24000000"],["35743.97000000","0.00000000"]]}}`
	futuresDiffFrame = `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1622371244693,"T":1622371244687,"s":"BTCUSDT","U":475776377463,"u":475776380184,"pu":475776377452,"b":[["35729.77","1.600"],["35750.00","5.106"]],"a":[["35819.20","0.211"],["35820.31","0.001"]]}}`
	spotPartialData  = `{"lastUpdateId":17044571457,"bids":[["1782.00000000","6.48300000"],["1781.95000000","0.03000000"]],"asks":[["1782.01000000","15.46080000"],["1782.02000000","0.00780000"]]}`
	futuresRESTBody  = `{"lastUpdateId":1570223094073,"E":1654231622340,"T":1654231622320,"bids":[["30564.6","0.024"],["30561.1","0.003"],["30561.0","0.055"]],"asks":[["30569.5","0.141"],["30569.6","0.004"],["30569.7","0.067"]]}`
)

// dataOf returns the data value of a compact combined frame.
func dataOf(frame string) string {
	return frame[strings.Index(frame, `"data":`)+len(`"data":`) : len(frame)-1]
}

// want is the expected outcome of a scan.
type want struct {
	control Control
	stream  string
	data    string // "" means: do not check
	e, s    string
	E, T    int64
	U, u    int64
	pu, L   int64
	has     Field
	id      int64
	code    int64
	msg     string
}

func checkHeader(t *testing.T, h *Header, w want) {
	t.Helper()
	if h.Control != w.control {
		t.Errorf("Control = %v, want %v", h.Control, w.control)
	}
	if string(h.Stream) != w.stream {
		t.Errorf("Stream = %q, want %q", h.Stream, w.stream)
	}
	if w.data != "" && string(h.Data) != w.data {
		t.Errorf("Data = %s, want %s", h.Data, w.data)
	}
	if string(h.EventType) != w.e || string(h.Symbol) != w.s {
		t.Errorf("e, s = %q, %q, want %q, %q", h.EventType, h.Symbol, w.e, w.s)
	}
	if h.EventTime != w.E || h.TransactionTime != w.T || h.FirstUpdateID != w.U || h.FinalUpdateID != w.u ||
		h.PrevFinalUpdateID != w.pu || h.LastUpdateID != w.L {
		t.Errorf("E,T,U,u,pu,L = %d,%d,%d,%d,%d,%d, want %d,%d,%d,%d,%d,%d",
			h.EventTime, h.TransactionTime, h.FirstUpdateID, h.FinalUpdateID, h.PrevFinalUpdateID, h.LastUpdateID,
			w.E, w.T, w.U, w.u, w.pu, w.L)
	}
	if h.Has != w.has {
		t.Errorf("Has = %s, want %s", h.Has, w.has)
	}
	if h.ID != w.id || h.ErrCode != w.code || string(h.ErrMsg) != w.msg {
		t.Errorf("id, code, msg = %d, %d, %q, want %d, %d, %q", h.ID, h.ErrCode, h.ErrMsg, w.id, w.code, w.msg)
	}
}

const (
	spotDiffHas    = HasEventType | HasEventTime | HasSymbol | HasFirstUpdateID | HasFinalUpdateID | HasBids | HasAsks
	futuresDiffHas = spotDiffHas | HasTransactionTime | HasPrevFinalUpdateID
	frameHas       = HasStream | HasData
)

func TestScanFrame(t *testing.T) {
	tests := []struct {
		name    string
		frame   string
		want    want
		wantErr error
	}{
		{"spot diff", spotDiffFrame, want{stream: "btcusdt@depth@100ms", data: dataOf(spotDiffFrame),
			e: "depthUpdate", s: "BTCUSDT", E: 1622363903670, U: 11294093710, u: 11294093726, has: spotDiffHas | frameHas}, nil},
		{"futures diff", futuresDiffFrame, want{stream: "btcusdt@depth@100ms", e: "depthUpdate", s: "BTCUSDT",
			E: 1622371244693, T: 1622371244687, U: 475776377463, u: 475776380184, pu: 475776377452, has: futuresDiffHas | frameHas}, nil},
		{"spot partial", `{"stream":"ethusdt@depth20","data":` + spotPartialData + `}`,
			want{stream: "ethusdt@depth20", data: spotPartialData, L: 17044571457, has: HasLastUpdateID | HasBids | HasAsks | frameHas}, nil},
		{"futures partial pu -1", `{"stream":"runeusd_perp@depth5","data":{"e":"depthUpdate","E":1648006221596,"T":1648006221340,"s":"RUNEUSD_PERP","ps":"RUNEUSD","U":395028983849,"u":395028983849,"pu":-1,"b":[],"a":[["8.4400","2"]]}}`,
			want{stream: "runeusd_perp@depth5", e: "depthUpdate", s: "RUNEUSD_PERP", E: 1648006221596, T: 1648006221340,
				U: 395028983849, u: 395028983849, pu: -1, has: futuresDiffHas | frameHas}, nil},
		{"data before stream", `{"data":{"u":7,"U":5},"stream":"x@depth"}`,
			want{stream: "x@depth", data: `{"u":7,"U":5}`, U: 5, u: 7, has: HasFirstUpdateID | HasFinalUpdateID | frameHas}, nil},
		{"whitespace", " \n{ \"stream\" :\t\"x@depth\" ,\r\n \"data\" : { \"u\" : 7 , \"b\" : [ [ \"1\" , \"2\" ] ] } } \n",
			want{stream: "x@depth", data: `{ "u" : 7 , "b" : [ [ "1" , "2" ] ] }`, u: 7, has: HasFinalUpdateID | HasBids | frameHas}, nil},
		{"nested decoys", `{"stream":"x@depth","data":{"k":{"U":1,"u":2,"data":{}},"b":[["1","2",{"U":9,"pu":[1]}]],"a":[[]],"U":5,"u":6}}`,
			want{stream: "x@depth", U: 5, u: 6, has: HasFirstUpdateID | HasFinalUpdateID | HasBids | HasAsks | frameHas}, nil},
		{"keys inside strings", `{"stream":"x@depth","data":{"s":"B\"U\":7,\"u\":8}","x":"]}\\","u":6}}`,
			want{stream: "x@depth", s: `B\"U\":7,\"u\":8}`, u: 6, has: HasSymbol | HasFinalUpdateID | frameHas}, nil},
		{"escaped keys", `{"str\u0065am":"x@depth","data":{"\u0055":5,"p\u0075":4,"\/u":1}}`,
			want{stream: "x@depth", U: 5, pu: 4, has: HasFirstUpdateID | HasPrevFinalUpdateID | frameHas}, nil},
		{"non-ASCII escaped key is unknown", `{"stream":"x","data":{"\u00dc":"v","u":1}}`,
			want{stream: "x", u: 1, has: HasFinalUpdateID | frameHas}, nil},
		{"duplicate keys last wins", `{"stream":"a","stream":"b","data":{"u":1,"U":1},"data":{"u":2,"u":3}}`,
			want{stream: "b", data: `{"u":2,"u":3}`, u: 3, has: HasFinalUpdateID | frameHas}, nil},
		{"scalar b and a", `{"stream":"ethusdt@bookTicker","data":{"u":1,"b":"2683.8","a":"2683.81","s":"ETHUSDT"}}`,
			want{stream: "ethusdt@bookTicker", s: "ETHUSDT", u: 1, has: HasFinalUpdateID | HasSymbol | frameHas}, nil},
		{"array data", `{"stream":"!markPrice@arr","data":[{"e":"markPriceUpdate","E":1}]}`,
			want{stream: "!markPrice@arr", data: `[{"e":"markPriceUpdate","E":1}]`, has: frameHas}, nil},
		{"int64 range", `{"stream":"x","data":{"U":-9223372036854775808,"u":9223372036854775807,"E":0,"T":-0}}`,
			want{stream: "x", U: -1 << 63, u: 1<<63 - 1, has: HasFirstUpdateID | HasFinalUpdateID | HasEventTime | HasTransactionTime | frameHas}, nil},
		{"unknown keys of every type", `{"x":[1,{"a":null}],"stream":"x","y":true,"data":{"n":null,"f":false,"z":-1.5e-3,"o":{},"l":[]},"w":"\ud83d\ude00"}`,
			want{stream: "x", data: `{"n":null,"f":false,"z":-1.5e-3,"o":{},"l":[]}`, has: frameHas}, nil},
		{"control keys in a data frame are ignored", `{"stream":"x","data":{"u":1},"result":null,"id":"abc","E":1.5}`,
			want{stream: "x", u: 1, has: HasFinalUpdateID | frameHas}, nil},

		{"subscribe reply", `{"result":null,"id":1}`, want{control: ControlResult, data: `{"result":null,"id":1}`, id: 1, has: HasID}, nil},
		{"list subscriptions", `{"result":["btcusdt@depth"],"id":3}`, want{control: ControlResult, id: 3, has: HasID}, nil},
		{"reply with string id", `{"result":null,"id":"51e2affb"}`, want{control: ControlResult}, nil},
		{"error reply", `{"error":{"code":2,"msg":"Invalid request: unknown variant"},"id":7}`,
			want{control: ControlError, id: 7, code: 2, msg: "Invalid request: unknown variant", has: HasID | HasErrCode | HasErrMsg}, nil},
		{"error reply null id", `{"error":{"code":-1121,"msg":"Invalid symbol."},"id":null}`,
			want{control: ControlError, code: -1121, msg: "Invalid symbol.", has: HasErrCode | HasErrMsg}, nil},
		{"error reply as string", `{"error":"boom","id":1}`, want{control: ControlError, id: 1, has: HasID}, nil},
		{"flat error", `{"code": 0, "msg": "Unknown property","id": 5}`,
			want{control: ControlError, id: 5, msg: "Unknown property", has: HasID | HasErrCode | HasErrMsg}, nil},
		{"shutdown event", `{"event":{"e":"serverShutdown","E":1770123456789}}`,
			want{control: ControlShutdown, e: "serverShutdown", E: 1770123456789, has: HasEventType | HasEventTime}, nil},
		{"shutdown bare", `{"e":"serverShutdown","E":1770123456789}`,
			want{control: ControlShutdown, e: "serverShutdown", E: 1770123456789, has: HasEventType | HasEventTime}, nil},
		{"shutdown combined", `{"stream":"btcusdt@depth","data":{"e":"serverShutdown","E":1}}`,
			want{control: ControlShutdown, stream: "btcusdt@depth", e: "serverShutdown", E: 1, has: HasEventType | HasEventTime | frameHas}, nil},

		{"empty", ``, want{}, ErrMalformed},
		{"spaces", `   `, want{}, ErrMalformed},
		{"empty object", `{}`, want{}, ErrMalformed},
		{"unknown object", `{"foo":1}`, want{}, ErrMalformed},
		{"other event", `{"event":{"e":"somethingElse"}}`, want{}, ErrMalformed},
		{"array", `[]`, want{}, ErrMalformed},
		{"missing data", `{"stream":"x@depth"}`, want{}, ErrMalformed},
		{"missing stream", `{"data":{"u":1}}`, want{}, ErrMalformed},
		{"stream not string", `{"stream":5,"data":{}}`, want{}, ErrMalformed},
		{"data not object", `{"stream":"x","data":"y"}`, want{}, ErrMalformed},
		{"data null", `{"stream":"x","data":null}`, want{}, ErrMalformed},
		{"U as string", `{"stream":"x","data":{"U":"5"}}`, want{}, ErrMalformed},
		{"U null", `{"stream":"x","data":{"U":null}}`, want{}, ErrMalformed},
		{"U float", `{"stream":"x","data":{"U":1.5}}`, want{}, ErrMalformed},
		{"U float zero", `{"stream":"x","data":{"U":1.0}}`, want{}, ErrMalformed},
		{"U exponent", `{"stream":"x","data":{"U":1e3}}`, want{}, ErrMalformed},
		{"u overflow", `{"stream":"x","data":{"u":9223372036854775808}}`, want{}, ErrMalformed},
		{"u underflow", `{"stream":"x","data":{"u":-9223372036854775809}}`, want{}, ErrMalformed},
		{"u huge", `{"stream":"x","data":{"u":123456789012345678901234567890}}`, want{}, ErrMalformed},
		{"u leading zero", `{"stream":"x","data":{"u":01}}`, want{}, ErrMalformed},
		{"u plus sign", `{"stream":"x","data":{"u":+1}}`, want{}, ErrMalformed},
		{"u minus only", `{"stream":"x","data":{"u":-}}`, want{}, ErrMalformed},
		{"e not string", `{"stream":"x","data":{"e":5}}`, want{}, ErrMalformed},
		{"s not string", `{"stream":"x","data":{"s":["BTC"]}}`, want{}, ErrMalformed},
		{"lastUpdateId string", `{"stream":"x","data":{"lastUpdateId":"1"}}`, want{}, ErrMalformed},
		{"trailing data", spotDiffFrame + `x`, want{}, ErrMalformed},
		{"two objects", `{"result":null,"id":1}{"result":null,"id":2}`, want{}, ErrMalformed},
		{"bad escape", `{"stream":"x\q","data":{}}`, want{}, ErrMalformed},
		{"bad unicode escape", `{"stream":"x\u12g4","data":{}}`, want{}, ErrMalformed},
		{"control char in string", "{\"stream\":\"x\ty\",\"data\":{}}", want{}, ErrMalformed},
		{"unterminated string in levels", `{"stream":"x","data":{"b":[["1,"2"]]}}`, want{}, ErrMalformed},
		{"mismatched brackets", `{"stream":"x","data":{"b":[["1","2"}]}}`, want{}, ErrMalformed},
		{"missing comma in levels", `{"stream":"x","data":{"b":[["1" "2"]]}}`, want{}, ErrMalformed},
		{"trailing comma in levels", `{"stream":"x","data":{"b":[["1","2"],]}}`, want{}, ErrMalformed},
		{"trailing comma in object", `{"stream":"x","data":{"u":1,}}`, want{}, ErrMalformed},
		{"bad number in skipped value", `{"stream":"x","data":{"z":1.}}`, want{}, ErrMalformed},
		{"bad literal", `{"stream":"x","data":{"z":nul}}`, want{}, ErrMalformed},
		{"bad literal in array", `{"stream":"x","data":{"b":[tru]}}`, want{}, ErrMalformed},
		{"key not string", `{stream:"x","data":{}}`, want{}, ErrMalformed},
		{"missing colon", `{"stream" "x","data":{}}`, want{}, ErrMalformed},
		{"nesting too deep", `{"stream":"x","data":{"b":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}}`, want{}, ErrMalformed},
		{"invalid JSON in a control frame", `{"result":null,"id":1,"x":[}`, want{}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Header
			h.Stream = []byte("stale") // ScanFrame must reset h
			err := ScanFrame([]byte(tt.frame), &h)
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "scan frame: ") {
					t.Errorf("error %q lacks context", err)
				}
				return
			}
			checkHeader(t, &h, tt.want)
		})
	}
}

// TestScanFrameNestingLimit: nesting up to maxDepth, counted from the top
// level, is accepted; one more is not.
func TestScanFrameNestingLimit(t *testing.T) {
	nest := func(n int) []byte { // n levels in all: the frame and data objects count
		return []byte(`{"stream":"x","data":{"z":` + strings.Repeat("[", n-2) + strings.Repeat("]", n-2) + `}}`)
	}
	var h Header
	if err := ScanFrame(nest(maxDepth), &h); err != nil {
		t.Fatal(err)
	}
	if err := ScanFrame(nest(maxDepth+1), &h); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	if nesting(nest(maxDepth)) != maxDepth || !refValid(nest(maxDepth)) || refValid(nest(maxDepth+1)) {
		t.Fatal("the reference counts nesting differently")
	}
	deepObj := []byte(`{"stream":"x","data":{"z":` + strings.Repeat(`{"a":`, maxDepth-1) + `1` + strings.Repeat("}", maxDepth-1) + `}}`)
	if err := ScanFrame(deepObj, &h); !errors.Is(err, ErrMalformed) {
		t.Fatalf("objects nested %d deep: err = %v, want ErrMalformed", maxDepth+1, err)
	}
}

// TestScanFrameTruncated: every proper prefix of real frames is rejected as
// malformed, never accepted and never a panic.
func TestScanFrameTruncated(t *testing.T) {
	for _, frame := range []string{spotDiffFrame, futuresDiffFrame, `{"result":null,"id":1}`,
		`{"event":{"e":"serverShutdown","E":1}}`, `{"error":{"code":2,"msg":"x"},"id":1}`} {
		for i := 0; i < len(frame); i++ {
			var h Header
			if err := ScanFrame([]byte(frame[:i]), &h); !errors.Is(err, ErrMalformed) {
				t.Fatalf("prefix %q: err = %v, want ErrMalformed", frame[:i], err)
			}
		}
	}
}

// TestScanFrameSubslices proves Stream, Data and the string fields alias
// the frame, so the data can be published untouched without a copy.
func TestScanFrameSubslices(t *testing.T) {
	frame := []byte(futuresDiffFrame)
	var h Header
	if err := ScanFrame(frame, &h); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"Stream": h.Stream, "Data": h.Data, "EventType": h.EventType, "Symbol": h.Symbol} {
		if !within(b, frame) {
			t.Errorf("%s is not a subslice of the frame", name)
		}
		if cap(b) != len(b) {
			t.Errorf("%s has spare capacity: appending would overwrite the frame", name)
		}
	}
}

// within reports whether b lies inside buf's memory.
func within(b, buf []byte) bool {
	if len(b) == 0 {
		return true
	}
	p, s := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return p >= s && p+uintptr(len(b)) <= s+uintptr(len(buf))
}

func TestScanData(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    want
		wantErr error
	}{
		{"spot REST body", spotPartialData, want{data: spotPartialData, L: 17044571457, has: HasLastUpdateID | HasBids | HasAsks | HasData}, nil},
		{"futures REST body", futuresRESTBody, want{L: 1570223094073, E: 1654231622340, T: 1654231622320,
			has: HasLastUpdateID | HasEventTime | HasTransactionTime | HasBids | HasAsks | HasData}, nil},
		{"raw diff frame", dataOf(futuresDiffFrame), want{e: "depthUpdate", s: "BTCUSDT",
			E: 1622371244693, T: 1622371244687, U: 475776377463, u: 475776380184, pu: 475776377452, has: futuresDiffHas | HasData}, nil},
		{"surrounding space", " {\"u\":1} \n", want{data: `{"u":1}`, u: 1, has: HasFinalUpdateID | HasData}, nil},
		{"subscribe reply", `{"result":null,"id":1}`, want{control: ControlResult, id: 1, has: HasID | HasData}, nil},
		{"REST error body", `{"code":-1121,"msg":"Invalid symbol."}`,
			want{control: ControlError, code: -1121, msg: "Invalid symbol.", has: HasErrCode | HasErrMsg | HasData}, nil},
		{"error reply", `{"error":{"code":2,"msg":"bad"},"id":9}`,
			want{control: ControlError, id: 9, code: 2, msg: "bad", has: HasID | HasErrCode | HasErrMsg | HasData}, nil},
		{"shutdown bare", `{"e":"serverShutdown","E":5}`, want{control: ControlShutdown, e: "serverShutdown", E: 5, has: HasEventType | HasEventTime | HasData}, nil},
		{"shutdown event", `{"event":{"E":6,"e":"serverShutdown"}}`, want{control: ControlShutdown, e: "serverShutdown", E: 6, has: HasEventType | HasEventTime | HasData}, nil},
		{"open interest body", `{"symbol":"BTCUSDT","openInterest":"84617.188","time":1654336844754}`, want{has: HasData}, nil},

		{"array", `[{"u":1}]`, want{}, ErrMalformed},
		{"empty", ``, want{}, ErrMalformed},
		{"truncated", `{"lastUpdateId":1,"bids":[["1","2"]`, want{}, ErrMalformed},
		{"wrong type", `{"lastUpdateId":true}`, want{}, ErrMalformed},
		{"trailing", `{"u":1}}`, want{}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Header
			err := ScanData([]byte(tt.data), &h)
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "scan data: ") {
					t.Errorf("error %q lacks context", err)
				}
				return
			}
			if tt.want.data == "" {
				tt.want.data = tt.data
			}
			checkHeader(t, &h, tt.want)
		})
	}
}

// TestScanAllocs proves the fast path allocates nothing, on data frames and
// on control frames.
func TestScanAllocs(t *testing.T) {
	frames := [][]byte{[]byte(spotDiffFrame), []byte(futuresDiffFrame), []byte(`{"result":null,"id":1}`),
		[]byte(`{"event":{"e":"serverShutdown","E":1}}`), []byte(`{"str\u0065am":"x","data":{}}`)}
	body := []byte(futuresRESTBody)
	var h Header
	allocs := testing.AllocsPerRun(100, func() {
		for _, f := range frames {
			if err := ScanFrame(f, &h); err != nil {
				panic(err)
			}
		}
		if err := ScanData(body, &h); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run, want 0", allocs)
	}
}

func TestFieldString(t *testing.T) {
	tests := []struct {
		f    Field
		want string
	}{
		{0, ""},
		{HasFirstUpdateID | HasFinalUpdateID | HasPrevFinalUpdateID, "U,u,pu"},
		{HasLastUpdateID | HasBids | HasAsks, "lastUpdateId,bids,asks"},
		{HasStream | HasErrMsg, "stream,msg"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%#x.String() = %q, want %q", uint32(tt.f), got, tt.want)
		}
	}
}

func TestControlString(t *testing.T) {
	for c, want := range map[Control]string{ControlNone: "none", ControlResult: "result", ControlError: "error",
		ControlShutdown: "serverShutdown", Control(9): "unknown"} {
		if got := c.String(); got != want {
			t.Errorf("Control(%d).String() = %q, want %q", c, got, want)
		}
	}
}
