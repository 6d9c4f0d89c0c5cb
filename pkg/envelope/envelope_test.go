package envelope

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	depthcapv1 "github.com/depthcap/depthcap/pkg/gen/depthcap/v1"
	"github.com/depthcap/depthcap/pkg/md"
)

var samples = []Envelope{
	{Market: md.Spot, Kind: md.Diff, Symbol: "BTCUSDT", ReceivedNs: 1633998512063356900, EventMs: 1633998512068,
		FirstID: 499869750, FinalID: 499869752, Has: HasFirst | HasFinal, Source: "host-a/eu/1",
		Payload: []byte(`{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT","U":499869750,"u":499869752,"b":[["0.35130000","6195.00000000"]],"a":[]}`)},
	{Market: md.Futures, Kind: md.Diff, Symbol: "ETHUSDT", ReceivedNs: 1, EventMs: 2, TxMs: 3,
		FirstID: 10, FinalID: 20, PrevID: 0, Has: HasFirst | HasFinal | HasPrev, Payload: []byte("{}")},
	{Market: md.Spot, Kind: md.Partial, Symbol: "BNBUSDT", ReceivedNs: 5, LastID: 77, Has: HasLast, DepthLimit: 20, Payload: []byte(`{"lastUpdateId":77}`)},
	{Market: md.Futures, Kind: md.Snapshot, Symbol: "BTCUSDT", ReceivedNs: 9, RequestNs: 8, EventMs: 7, TxMs: 6, LastID: 1 << 40, Has: HasLast, DepthLimit: 1000, Payload: []byte(`{"lastUpdateId":1}`)},
	{Market: md.Spot, Kind: md.Gap, Symbol: "BTCUSDT", ReceivedNs: 11, Source: "a", Has: HasGap,
		Gap: Gap{StreamKind: md.Diff, Reason: ReasonBufferOverflow, AfterID: 100, ResumePrevID: 150, StartNs: 1, EndNs: 2, FramesLost: 7, Detail: "publish buffer full"}},
	{Market: md.Spot, Kind: md.Diff, Symbol: "X", ReceivedNs: -1, FinalID: -5, Has: HasFinal, DepthLimit: -3},
}

// TestMarshalMatchesProto proves that the hand-written encoder writes the
// same bytes as the generated code (deterministic marshal), so any protobuf
// consumer using the published .proto decodes what we publish.
func TestMarshalMatchesProto(t *testing.T) {
	for i, e := range samples {
		got := e.AppendMarshal(nil)
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(e.ToProto())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("sample %d: AppendMarshal\n got %x\nwant %x", i, got, want)
		}
	}
}

// TestRoundTrip proves Unmarshal(AppendMarshal(e)) == e and that the
// generated decoder reads the same values.
func TestRoundTrip(t *testing.T) {
	for i, e := range samples {
		b := e.AppendMarshal(nil)
		var got Envelope
		if err := Unmarshal(b, &got); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(e)) {
			t.Errorf("sample %d: round trip\n got %+v\nwant %+v", i, got, e)
		}
		var p depthcapv1.Envelope
		if err := proto.Unmarshal(b, &p); err != nil {
			t.Fatalf("sample %d: proto.Unmarshal: %v", i, err)
		}
		if fp := FromProto(&p); !reflect.DeepEqual(normalize(fp), normalize(e)) {
			t.Errorf("sample %d: generated decode\n got %+v\nwant %+v", i, fp, e)
		}
	}
}

func normalize(e Envelope) Envelope {
	if len(e.Payload) == 0 {
		e.Payload = nil
	}
	return e
}

func TestUnmarshalRejects(t *testing.T) {
	good := samples[0].AppendMarshal(nil)
	bad := func(mut func(*depthcapv1.Envelope)) []byte {
		p := samples[0].ToProto()
		mut(p)
		b, err := proto.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"ok", good, nil},
		{"truncated", good[:len(good)-3], ErrMalformed},
		{"garbage", []byte{0xff, 0xff, 0xff}, ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"other exchange", bad(func(p *depthcapv1.Envelope) { p.Exchange = "kraken" }), ErrMalformed},
		{"no market", bad(func(p *depthcapv1.Envelope) { p.Market = 0 }), ErrMalformed},
		{"bad kind", bad(func(p *depthcapv1.Envelope) { p.Kind = 99 }), ErrMalformed},
		{"lower-case symbol", bad(func(p *depthcapv1.Envelope) { p.Symbol = "btcusdt" }), ErrMalformed},
		{"symbol with dot", bad(func(p *depthcapv1.Envelope) { p.Symbol = "BTC.USDT" }), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Envelope
			err := Unmarshal(tt.in, &e)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Unmarshal err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestMsgID(t *testing.T) {
	tests := []struct {
		e       Envelope
		want    string
		wantErr error
	}{
		{samples[0], "spot.diff.BTCUSDT.499869752", nil},
		{samples[1], "futures.diff.ETHUSDT.20", nil},
		{samples[2], "spot.partial.BNBUSDT.77", nil},
		{samples[3], "futures.snapshot.BTCUSDT.1099511627776", nil},
		{samples[4], "spot.gap.BTCUSDT.100.diff.150.a", nil},
		{Envelope{Market: md.Spot, Kind: md.Diff, Symbol: "A"}, "", ErrMalformed},
	}
	for _, tt := range tests {
		got, err := tt.e.AppendMsgID(nil)
		if !errors.Is(err, tt.wantErr) {
			t.Fatalf("%+v: err = %v, want %v", tt.e, err, tt.wantErr)
		}
		if err == nil && string(got) != tt.want {
			t.Errorf("AppendMsgID = %q, want %q", got, tt.want)
		}
	}
}

// FuzzUnmarshal checks that Unmarshal never panics and, when it accepts
// input, agrees with the generated decoder, and that re-encoding what it
// decoded is stable.
func FuzzUnmarshal(f *testing.F) {
	for _, e := range samples {
		f.Add(e.AppendMarshal(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Envelope
		if err := Unmarshal(b, &e); err != nil {
			return
		}
		var p depthcapv1.Envelope
		if err := proto.Unmarshal(b, &p); err != nil {
			// The generated decoder also validates UTF-8 in strings; ours
			// only requires a valid symbol. Anything else must agree.
			return
		}
		if got, want := normalize(e), normalize(FromProto(&p)); !reflect.DeepEqual(got, want) {
			t.Fatalf("decoders disagree\n ours %+v\n gen  %+v", got, want)
		}
		b2 := e.AppendMarshal(nil)
		var e2 Envelope
		if err := Unmarshal(b2, &e2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(e2), normalize(e)) {
			t.Fatalf("re-encode unstable\n %+v\n %+v", e2, e)
		}
	})
}

// FuzzRoundTrip builds envelopes from fuzzed fields and checks byte
// equality with proto.Marshal plus a lossless round trip.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(1), uint8(1), "BTCUSDT", int64(1), int64(2), int64(3), int64(4), int64(5), uint8(3), "src", []byte("{}"), int32(20))
	f.Fuzz(func(t *testing.T, m, k uint8, sym string, recv, req, first, final, last int64, has uint8, src string, payload []byte, limit int32) {
		e := Envelope{Market: md.Market(m%2 + 1), Kind: md.Kind(k%3 + 1), Symbol: sym, ReceivedNs: recv, RequestNs: req,
			FirstID: first, FinalID: final, LastID: last, Has: has & (HasFirst | HasFinal | HasLast), Source: src, Payload: payload, DepthLimit: limit}
		if !md.ValidSymbol(sym) {
			return
		}
		// Values without their presence bit are not encoded.
		if e.Has&HasFirst == 0 {
			e.FirstID = 0
		}
		if e.Has&HasFinal == 0 {
			e.FinalID = 0
		}
		if e.Has&HasLast == 0 {
			e.LastID = 0
		}
		b := e.AppendMarshal(nil)
		if want, err := (proto.MarshalOptions{Deterministic: true}).Marshal(e.ToProto()); err == nil && !bytes.Equal(b, want) {
			t.Fatalf("bytes differ from proto.Marshal")
		}
		var got Envelope
		if err := Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(e)) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, e)
		}
	})
}

func BenchmarkAppendMarshal(b *testing.B) {
	e := samples[0]
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Payload)))
	for b.Loop() {
		buf = e.AppendMarshal(buf[:0])
	}
}

func BenchmarkProtoMarshal(b *testing.B) {
	p := samples[0].ToProto()
	b.ReportAllocs()
	b.SetBytes(int64(len(p.Payload)))
	for b.Loop() {
		if _, err := proto.Marshal(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	buf := samples[0].AppendMarshal(nil)
	var e Envelope
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if err := Unmarshal(buf, &e); err != nil {
			b.Fatal(err)
		}
	}
}
