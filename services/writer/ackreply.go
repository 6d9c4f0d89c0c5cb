package writer

import (
	"errors"
	"strings"
)

// ErrAckReply reports a message whose reply subject is not a JetStream
// ack subject.
var ErrAckReply = errors.New("not a JetStream ack reply subject")

// parseAckReply reads the stream sequence, the store timestamp (ns) and
// the consumer's num_pending (messages not yet delivered when this one
// was, -1 if the token is not a number: it only feeds a gauge) of a
// JetStream message from its reply subject, without allocating
// (jetstream.Msg.Metadata allocates its result). The formats are those
// nats.go parses:
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>
//	$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>[.<token>...]
//
// (9 tokens, or at least 11).
func parseAckReply(reply string) (seq uint64, storeNs, pending int64, err error) {
	rest, ok := strings.CutPrefix(reply, "$JS.ACK.")
	if !ok {
		return 0, 0, -1, ErrAckReply
	}
	tokens := strings.Count(reply, ".") + 1
	// Token index of <sseq> after "$JS.ACK.".
	var sseqAt int
	switch {
	case tokens == 9:
		sseqAt = 3
	case tokens >= 11:
		sseqAt = 5
	default:
		return 0, 0, -1, ErrAckReply
	}
	var tok [4]string // sseq, cseq, tm, pending
	for i := 0; i < sseqAt+4; i++ {
		t, r, _ := strings.Cut(rest, ".")
		if i >= sseqAt {
			tok[i-sseqAt] = t
		}
		rest = r
	}
	seq, ok1 := parseUint(tok[0])
	ts, ok2 := parseUint(tok[2])
	if !ok1 || !ok2 || seq == 0 || ts > 1<<63-1 {
		return 0, 0, -1, ErrAckReply
	}
	pending = -1
	if n, ok := parseUint(tok[3]); ok && n <= 1<<63-1 {
		pending = int64(n)
	}
	return seq, int64(ts), pending, nil
}

// parseUint parses a non-empty decimal number that fits in a uint64.
func parseUint(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return 0, false
		}
		if n > (1<<64-1-uint64(d))/10 { // overflow
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	return n, true
}
