// Package tail prints the envelopes published on NATS subjects as JSON
// lines, for debugging a running pipeline: `depthcap tail
// md.binance.spot.diff.BTCUSDT`.
//
// It uses a core NATS subscription, so it sees messages as they are
// published (md.binance.<market>.<kind>.<SYMBOL>, without the partition
// token the MARKETDATA stream appends when it stores them), takes nothing
// from JetStream and acknowledges nothing. A tail that cannot keep up loses
// messages on its own subscription only (NATS slow-consumer handling); the
// count is reported at the end.
package tail

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
)

// DefaultLocalURL is where tail connects when NATS_URL is empty: the
// embedded server of a `depthcap run` or `depthcap demo` on this machine
// (NATS_EMBEDDED_LISTEN, default 127.0.0.1:4222). Tail never starts a
// server of its own: an empty private server would show nothing.
const DefaultLocalURL = "nats://127.0.0.1:4222"

// ErrNoServer reports a configuration that names no server tail can reach.
var ErrNoServer = errors.New("no NATS server to tail")

// URL returns the server to connect to: NATS_URL, else the embedded
// server's NATS_EMBEDDED_LISTEN address on this machine.
func URL(cfg bus.Config) (string, error) {
	if cfg.URL != "" {
		return cfg.URL, nil
	}
	listen := cfg.EmbeddedListen
	if listen == "" {
		return DefaultLocalURL, nil
	}
	if listen == "none" {
		return "", fmt.Errorf("%w: %w", ErrNoServer, svc.Invalid("NATS_URL", "", "the URL of the server to tail (NATS_EMBEDDED_LISTEN=none: the all-in-one's embedded server takes no outside clients)"))
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoServer, svc.Invalid("NATS_EMBEDDED_LISTEN", listen, "host:port or none"))
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, port), nil
}

// Line is one printed message.
type Line struct {
	Subject string `json:"subject"`
	MsgID   string `json:"msg_id,omitempty"` // Nats-Msg-Id header, when the publisher set one
	// Error is set when the message is not an envelope; Data then holds
	// the message in base64.
	Error string `json:"error,omitempty"`
	Data  string `json:"data_base64,omitempty"`

	Market            string   `json:"market,omitempty"`
	Kind              string   `json:"kind,omitempty"`
	Symbol            string   `json:"symbol,omitempty"`
	ReceivedTime      string   `json:"received_time,omitempty"`
	RequestTime       string   `json:"request_time,omitempty"`
	EventTime         string   `json:"event_time,omitempty"`
	TransactionTime   string   `json:"transaction_time,omitempty"`
	FirstUpdateID     *int64   `json:"first_update_id,omitempty"`
	FinalUpdateID     *int64   `json:"final_update_id,omitempty"`
	PrevFinalUpdateID *int64   `json:"prev_final_update_id,omitempty"`
	LastUpdateID      *int64   `json:"last_update_id,omitempty"`
	DepthLimit        int32    `json:"depth_limit,omitempty"`
	Source            string   `json:"source,omitempty"`
	Gap               *GapLine `json:"gap,omitempty"`
	// Payload is the raw frame as embedded JSON; PayloadBase64 holds it
	// instead with --raw, or when it is not valid JSON.
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadBase64 string          `json:"payload_base64,omitempty"`
}

// GapLine is a gap record's fields.
type GapLine struct {
	StreamKind   string `json:"stream_kind"`
	Reason       string `json:"reason"`
	AfterID      int64  `json:"after_id"`
	ResumePrevID int64  `json:"resume_prev_id"`
	StartTime    string `json:"start_time,omitempty"`
	EndTime      string `json:"end_time,omitempty"`
	FramesLost   int64  `json:"frames_lost"`
	Detail       string `json:"detail,omitempty"`
}

func nsTime(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func msTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

func ptr(v int64) *int64 { return &v }

// Decode turns a message into a Line; raw keeps the payload in base64.
func Decode(subject string, data []byte, msgID string, raw bool) Line {
	l := Line{Subject: subject, MsgID: msgID}
	var e envelope.Envelope
	if err := envelope.Unmarshal(data, &e); err != nil || !e.Market.Valid() && !e.Kind.Valid() {
		l.Error = "not a depthcap envelope"
		if err != nil {
			l.Error += ": " + err.Error()
		}
		l.Data = base64.StdEncoding.EncodeToString(data)
		return l
	}
	if e.Market != md.MarketUnknown {
		l.Market = e.Market.String()
	}
	if e.Kind != md.KindUnknown {
		l.Kind = e.Kind.String()
	}
	l.Symbol, l.Source, l.DepthLimit = e.Symbol, e.Source, e.DepthLimit
	l.ReceivedTime, l.RequestTime = nsTime(e.ReceivedNs), nsTime(e.RequestNs)
	l.EventTime, l.TransactionTime = msTime(e.EventMs), msTime(e.TxMs)
	if e.Has&envelope.HasFirst != 0 {
		l.FirstUpdateID = ptr(e.FirstID)
	}
	if e.Has&envelope.HasFinal != 0 {
		l.FinalUpdateID = ptr(e.FinalID)
	}
	if e.Has&envelope.HasPrev != 0 {
		l.PrevFinalUpdateID = ptr(e.PrevID)
	}
	if e.Has&envelope.HasLast != 0 {
		l.LastUpdateID = ptr(e.LastID)
	}
	if e.Has&envelope.HasGap != 0 {
		g := e.Gap
		l.Gap = &GapLine{StreamKind: g.StreamKind.String(), Reason: g.Reason.String(), AfterID: g.AfterID, ResumePrevID: g.ResumePrevID,
			StartTime: nsTime(g.StartNs), EndTime: nsTime(g.EndNs), FramesLost: g.FramesLost, Detail: g.Detail}
	}
	if len(e.Payload) > 0 {
		if !raw && json.Valid(e.Payload) {
			l.Payload = append(json.RawMessage(nil), e.Payload...)
		} else {
			l.PayloadBase64 = base64.StdEncoding.EncodeToString(e.Payload)
		}
	}
	return l
}

// Options configure Run.
type Options struct {
	Subject string // subject or wildcard
	Raw     bool   // payload as base64
	Count   int    // stop after this many messages; 0 runs until ctx ends
	Out     io.Writer
	Log     *zap.Logger
}

// Stats is what a Run printed and lost.
type Stats struct {
	Printed int
	Dropped int // messages NATS dropped because the tail was too slow
}

// queue bounds the messages waiting to be printed.
const queue = 65536

// Run subscribes to opts.Subject on nc and writes one JSON line per
// message to opts.Out until ctx ends or opts.Count messages are printed.
// ready, when not nil, is closed once the subscription is registered with
// the server.
func Run(ctx context.Context, nc *nats.Conn, opts Options, ready chan<- struct{}) (Stats, error) {
	var st Stats
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	ch := make(chan *nats.Msg, queue)
	sub, err := nc.ChanSubscribe(opts.Subject, ch)
	if err != nil {
		return st, fmt.Errorf("subscribe %q: %w", opts.Subject, err)
	}
	defer func() {
		if n, err := sub.Dropped(); err == nil {
			st.Dropped = n
		}
		_ = sub.Unsubscribe()
	}()
	// The subscription is registered once the server answers a flush
	// (FlushWithContext needs a deadline).
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		return st, fmt.Errorf("subscribe %q: %w", opts.Subject, err)
	}
	opts.Log.Info("tail subscribed", zap.String("subject", opts.Subject), zap.String("url", nc.ConnectedUrlRedacted()))
	if ready != nil {
		close(ready)
	}
	enc := json.NewEncoder(opts.Out)
	for {
		select {
		case <-ctx.Done():
			return st, nil
		case m := <-ch:
			if err := enc.Encode(Decode(m.Subject, m.Data, m.Header.Get(nats.MsgIdHdr), opts.Raw)); err != nil {
				return st, fmt.Errorf("write: %w", err)
			}
			st.Printed++
			if opts.Count > 0 && st.Printed >= opts.Count {
				return st, nil
			}
		}
	}
}
