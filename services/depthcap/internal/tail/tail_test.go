package tail

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/frames"
	"github.com/depthcap/depthcap/pkg/md"
)

// TestURL proves where tail connects: NATS_URL when set, else the local
// all-in-one's embedded server at NATS_EMBEDDED_LISTEN (a wildcard host
// becomes loopback), never a server of its own.
func TestURL(t *testing.T) {
	for _, tc := range []struct {
		url, listen string
		want        string
		wantErr     error
	}{
		{"nats://nats.example:4222", "none", "nats://nats.example:4222", nil},
		{"", "127.0.0.1:4222", "nats://127.0.0.1:4222", nil},
		{"", "", DefaultLocalURL, nil},
		{"", "0.0.0.0:5222", "nats://127.0.0.1:5222", nil},
		{"", "[::]:5222", "nats://127.0.0.1:5222", nil},
		{"", "10.1.2.3:4333", "nats://10.1.2.3:4333", nil},
		{"", "none", "", ErrNoServer},
		{"", "nonsense", "", ErrNoServer},
	} {
		got, err := URL(bus.Config{URL: tc.url, EmbeddedListen: tc.listen})
		if got != tc.want || !errors.Is(err, tc.wantErr) {
			t.Errorf("URL %q listen %q: %q, %v; want %q, %v", tc.url, tc.listen, got, err, tc.want, tc.wantErr)
		}
	}
}

// safeBuffer is a bytes.Buffer for one writer and one reader goroutine.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const spotFrame = `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000123,"s":"BTCUSDT","U":101,"u":105,"b":[["37000.01","1.5"]],"a":[["37000.02","0.00"]]}}`

// TestRun publishes a diff envelope (built from a frame the way ingest
// builds it), a REST snapshot envelope, a gap record, and bytes that are
// not an envelope, on core NATS, and proves tail prints each message on
// the subscribed wildcard as one JSON line with the envelope's fields and
// the payload as embedded JSON (or base64 with raw), and nothing from
// other subjects.
func TestRun(t *testing.T) {
	srv := bustest.RunServer(t)
	nc := bustest.Connect(t, srv.ClientURL())
	var diff envelope.Envelope
	var h binance.Header
	if err := frames.NewBuilder(md.Spot, "tokyo-1").Build([]byte(spotFrame), 1_700_000_000_200_000_123, &h, &diff); err != nil {
		t.Fatal(err)
	}
	snap := envelope.Envelope{Market: md.Spot, Kind: md.Snapshot, Symbol: "BTCUSDT", ReceivedNs: 1_700_000_001_000_000_000,
		RequestNs: 1_700_000_000_950_000_000, LastID: 104, Has: envelope.HasLast, Source: "rest-1", DepthLimit: 1000,
		Payload: []byte(`{"lastUpdateId":104,"bids":[["37000.01","1.5"]],"asks":[]}`)}
	gap := envelope.Envelope{Market: md.Spot, Kind: md.Gap, Symbol: "BTCUSDT", ReceivedNs: 1_700_000_002_000_000_000, Source: "tokyo-1",
		Has: envelope.HasGap, Gap: envelope.Gap{StreamKind: md.Diff, Reason: envelope.ReasonSequence, AfterID: 105, ResumePrevID: 110}}

	for _, raw := range []bool{false, true} {
		var out safeBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := Run(ctx, nc, Options{Subject: "md.binance.spot.>", Raw: raw, Count: 4, Out: &out}, ready)
			done <- err
		}()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("Run returned before subscribing: %v", err)
		}
		pub := func(subject string, data []byte, msgID string) {
			m := nats.NewMsg(subject)
			m.Data = data
			if msgID != "" {
				m.Header.Set(nats.MsgIdHdr, msgID)
			}
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		pub("md.binance.futures.diff.BTCUSDT", diff.AppendMarshal(nil), "") // not subscribed
		pub(md.Subject(md.Spot, md.Diff, "BTCUSDT"), diff.AppendMarshal(nil), "spot.diff.BTCUSDT.105")
		pub(md.Subject(md.Spot, md.Snapshot, "BTCUSDT"), snap.AppendMarshal(nil), "")
		pub(md.Subject(md.Spot, md.Gap, "BTCUSDT"), gap.AppendMarshal(nil), "")
		pub("md.binance.spot.junk", []byte("{not an envelope"), "")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		cancel()
		var lines []Line
		for _, s := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var l Line
			if err := json.Unmarshal([]byte(s), &l); err != nil {
				t.Fatalf("line %q: %v", s, err)
			}
			lines = append(lines, l)
		}
		if len(lines) != 4 {
			t.Fatalf("raw %v: %d lines:\n%s", raw, len(lines), out.String())
		}
		d := lines[0]
		if d.Subject != "md.binance.spot.diff.BTCUSDT" || d.MsgID != "spot.diff.BTCUSDT.105" || d.Market != "spot" || d.Kind != "diff" ||
			d.Symbol != "BTCUSDT" || d.Source != "tokyo-1" || *d.FirstUpdateID != 101 || *d.FinalUpdateID != 105 || d.PrevFinalUpdateID != nil ||
			d.EventTime != "2023-11-14T22:13:20.123Z" || d.ReceivedTime != "2023-11-14T22:13:20.200000123Z" {
			t.Errorf("diff line %+v", d)
		}
		if raw {
			b, err := base64.StdEncoding.DecodeString(d.PayloadBase64)
			if err != nil || string(b) != string(diff.Payload) || d.Payload != nil {
				t.Errorf("raw payload %q", d.PayloadBase64)
			}
		} else if !json.Valid(d.Payload) || !strings.Contains(string(d.Payload), `"u":105`) || d.PayloadBase64 != "" {
			t.Errorf("payload %s", d.Payload)
		}
		s := lines[1]
		if s.Kind != "snapshot" || *s.LastUpdateID != 104 || s.DepthLimit != 1000 || s.RequestTime != "2023-11-14T22:13:20.95Z" {
			t.Errorf("snapshot line %+v", s)
		}
		g := lines[2]
		if g.Kind != "gap" || g.Gap == nil || g.Gap.StreamKind != "diff" || g.Gap.Reason != "sequence" || g.Gap.AfterID != 105 || g.Gap.ResumePrevID != 110 {
			t.Errorf("gap line %+v %+v", g, g.Gap)
		}
		j := lines[3]
		if j.Subject != "md.binance.spot.junk" || !strings.HasPrefix(j.Error, "not a depthcap envelope") || j.Data == "" {
			t.Errorf("junk line %+v", j)
		}
	}
}

// TestRunStops proves Run works under a context without a deadline (as
// the command's) and returns when it ends.
func TestRunStops(t *testing.T) {
	nc := bustest.Connect(t, bustest.RunServer(t).ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, nc, Options{Subject: "md.>", Out: &bytes.Buffer{}}, ready)
		done <- err
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned before subscribing: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
