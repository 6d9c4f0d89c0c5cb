package writer

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
)

// refAckReply is a straightforward reading of the formats nats.go's
// parser accepts (jetstream/internal/parser): the reference the fast
// parser is checked against.
func refAckReply(reply string) (uint64, int64, int64, bool) {
	t := strings.Split(reply, ".")
	if len(t) < 2 || t[0] != "$JS" || t[1] != "ACK" {
		return 0, 0, -1, false
	}
	var sseq, tm, np string
	switch {
	case len(t) == 9:
		sseq, tm, np = t[5], t[7], t[8]
	case len(t) >= 11:
		sseq, tm, np = t[7], t[9], t[10]
	default:
		return 0, 0, -1, false
	}
	s, err1 := strconv.ParseUint(sseq, 10, 64)
	ts, err2 := strconv.ParseInt(tm, 10, 64)
	if err1 != nil || err2 != nil || s == 0 || ts < 0 || strings.ContainsAny(sseq+tm, "+-") {
		return 0, 0, -1, false
	}
	pending, err := strconv.ParseInt(np, 10, 64)
	if err != nil || pending < 0 || strings.ContainsAny(np, "+-") {
		pending = -1
	}
	return s, ts, pending, true
}

// TestParseAckReply proves that the allocation-free reply parser reads
// the stream sequence, store time and num_pending of both ack subject
// formats, reports an unreadable num_pending as -1, and rejects
// everything else with ErrAckReply.
func TestParseAckReply(t *testing.T) {
	tests := []struct {
		name    string
		reply   string
		seq     uint64
		ts      int64
		pending int64
		wantErr error
	}{
		{"v1", "$JS.ACK.MARKETDATA.writer-0-of-1.1.42.7.1700000000123456789.3", 42, 1700000000123456789, 3, nil},
		{"v2", "$JS.ACK._.ABCHASH.MARKETDATA.writer-0-of-1.2.43.8.1700000000123456790.0.XyZ", 43, 1700000000123456790, 0, nil},
		{"v2 without token", "$JS.ACK.hub.ABCHASH.MARKETDATA.writer.1.44.9.1700000000000000000.12345", 44, 1700000000000000000, 12345, nil},
		{"v2 extra tokens", "$JS.ACK.hub.H.S.C.1.45.9.17.0.r.x.y", 45, 17, 0, nil},
		{"pending max", "$JS.ACK.S.C.1.5.7.17.9223372036854775807", 5, 17, 1<<63 - 1, nil},
		{"pending overflow", "$JS.ACK.S.C.1.5.7.17.9223372036854775808", 5, 17, -1, nil},
		{"pending not a number", "$JS.ACK.S.C.1.5.7.17.x", 5, 17, -1, nil},
		{"pending empty", "$JS.ACK.S.C.1.5.7.17.", 5, 17, -1, nil},
		{"10 tokens", "$JS.ACK.a.b.S.C.1.45.9.17", 0, 0, -1, ErrAckReply},
		{"8 tokens", "$JS.ACK.S.C.1.45.9.17", 0, 0, -1, ErrAckReply},
		{"not an ack", "_INBOX.abc.def", 0, 0, -1, ErrAckReply},
		{"empty", "", 0, 0, -1, ErrAckReply},
		{"bad seq", "$JS.ACK.S.C.1.4x.7.17.3", 0, 0, -1, ErrAckReply},
		{"zero seq", "$JS.ACK.S.C.1.0.7.17.3", 0, 0, -1, ErrAckReply},
		{"empty time", "$JS.ACK.S.C.1.5.7..3", 0, 0, -1, ErrAckReply},
		{"seq overflow", "$JS.ACK.S.C.1.18446744073709551616.7.17.3", 0, 0, -1, ErrAckReply},
		{"time overflow", "$JS.ACK.S.C.1.5.7.9223372036854775808.3", 0, 0, -1, ErrAckReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, ts, pending, err := parseAckReply(tt.reply)
			if !errors.Is(err, tt.wantErr) || seq != tt.seq || ts != tt.ts || pending != tt.pending {
				t.Fatalf("parseAckReply = %d, %d, %d, %v; want %d, %d, %d, %v", seq, ts, pending, err, tt.seq, tt.ts, tt.pending, tt.wantErr)
			}
			rs, rts, rp, ok := refAckReply(tt.reply)
			if ok != (err == nil) || rs != seq || rts != ts || rp != pending {
				t.Fatalf("reference parser = %d, %d, %d, %v", rs, rts, rp, ok)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _, _ = parseAckReply(tests[1].reply) }); n != 0 {
		t.Errorf("parseAckReply allocates %v times", n)
	}
}

// TestParseAckReplyServer proves agreement with jetstream.Msg.Metadata on
// messages delivered by a real JetStream server.
func TestParseAckReplyServer(t *testing.T) {
	s := bustest.RunServer(t)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := js.Publish(ctx, "t.x", []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckAllPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(5, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		seq, ts, pending, err := parseAckReply(m.Reply())
		if err != nil || seq != meta.Sequence.Stream || ts != meta.Timestamp.UnixNano() || pending != int64(meta.NumPending) {
			t.Fatalf("%s: parsed %d, %d, %d, %v; Metadata says %d, %d, %d", m.Reply(), seq, ts, pending, err,
				meta.Sequence.Stream, meta.Timestamp.UnixNano(), meta.NumPending)
		}
		if want := int64(4 - n); pending != want {
			t.Fatalf("message %d: num_pending %d, want %d", n, pending, want)
		}
		if n == 0 {
			metaAllocs := testing.AllocsPerRun(100, func() { _, _ = m.Metadata() })
			ours := testing.AllocsPerRun(100, func() { _, _, _, _ = parseAckReply(m.Reply()) })
			if ours != 0 {
				t.Errorf("parseAckReply allocates %v times per message", ours)
			}
			t.Logf("allocations per message: jetstream.Msg.Metadata %v, parseAckReply %v", metaAllocs, ours)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("%d messages, want 5", n)
	}
}

// FuzzParseAckReply proves that the parser never panics and agrees with
// the reference reading on any input.
func FuzzParseAckReply(f *testing.F) {
	f.Add("$JS.ACK.MARKETDATA.writer-0-of-1.1.42.7.1700000000123456789.3")
	f.Add("$JS.ACK._.ABCHASH.MARKETDATA.writer-0-of-1.2.43.8.1700000000123456790.0.XyZ")
	f.Add("$JS.ACK.S.C.1.18446744073709551615.7.9223372036854775807.3")
	f.Fuzz(func(t *testing.T, reply string) {
		seq, ts, pending, err := parseAckReply(reply)
		rs, rts, rp, ok := refAckReply(reply)
		if ok != (err == nil) || (ok && (rs != seq || rts != ts || rp != pending)) {
			t.Fatalf("%q: parsed %d, %d, %d, %v; reference %d, %d, %d, %v", reply, seq, ts, pending, err, rs, rts, rp, ok)
		}
	})
}
