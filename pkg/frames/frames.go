// Package frames turns raw Binance websocket frames into envelopes, the
// one way every collector (spot-ws, futures-ws, depthcap import) does it, so
// that the same exchange event always yields the same envelope and dedup id.
package frames

import (
	"errors"
	"fmt"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
)

// ErrControl is returned for control frames (subscribe replies, errors,
// serverShutdown): Header.Control says which. They are not market data.
var ErrControl = errors.New("control frame")

// ErrSymbolMismatch reports a frame whose "s" field disagrees with its
// stream name.
var ErrSymbolMismatch = errors.New("symbol does not match the stream name")

// Builder builds envelopes for one market. It caches upper-case symbols so
// that building allocates nothing in steady state. Not safe for concurrent
// use; give each reader its own.
type Builder struct {
	Market md.Market
	Source string

	upper map[string]string // lower-case stream symbol -> symbol
	buf   []byte
}

// NewBuilder returns a Builder for market m stamping source.
func NewBuilder(m md.Market, source string) *Builder {
	return &Builder{Market: m, Source: source, upper: make(map[string]string)}
}

// Symbol returns the upper-case symbol for a lower-case stream symbol.
func (b *Builder) Symbol(lower []byte) string {
	if s, ok := b.upper[string(lower)]; ok {
		return s
	}
	b.buf = binance.AppendUpperSymbol(b.buf[:0], lower)
	s := string(b.buf)
	if len(b.upper) > 100000 { // bound the cache; symbols are a few thousand
		clear(b.upper)
	}
	b.upper[string(lower)] = s
	return s
}

// Build scans a combined-stream frame ({"stream":...,"data":{...}}) and
// fills env. It reads only routing and sequence fields; the payload is the
// data object's bytes, untouched, aliasing frame. Errors:
//   - ErrControl for control frames (h.Control says which),
//   - binance.ErrNotDepth for streams depthcap does not capture,
//   - errors wrapping binance.ErrMalformed, binance.ErrImpossibleValue,
//     binance.ErrMissingField, binance.ErrBadStream or ErrSymbolMismatch
//     for bad input, which belongs in the dead-letter subject.
func (b *Builder) Build(frame []byte, recvNs int64, h *binance.Header, env *envelope.Envelope) error {
	if err := binance.ScanFrame(frame, h); err != nil {
		return err
	}
	if h.Control != binance.ControlNone {
		return ErrControl
	}
	if h.Has&binance.HasStream == 0 || h.Has&binance.HasData == 0 {
		return fmt.Errorf("build envelope: %w: not a combined-stream frame", binance.ErrMalformed)
	}
	info, err := binance.ParseStreamName(h.Stream)
	if err != nil {
		return err
	}
	return b.fill(info, recvNs, h, env)
}

// BuildData is Build for a bare data object received on a raw /ws/<stream>
// connection, whose stream name is known from the connection.
func (b *Builder) BuildData(stream, data []byte, recvNs int64, h *binance.Header, env *envelope.Envelope) error {
	if err := binance.ScanData(data, h); err != nil {
		return err
	}
	if h.Control != binance.ControlNone {
		return ErrControl
	}
	info, err := binance.ParseStreamName(stream)
	if err != nil {
		return err
	}
	return b.fill(info, recvNs, h, env)
}

func (b *Builder) fill(info binance.StreamInfo, recvNs int64, h *binance.Header, env *envelope.Envelope) error {
	if err := h.Check(b.Market, info.Kind); err != nil {
		return err
	}
	sym := b.Symbol(info.Symbol)
	if h.Has&binance.HasSymbol != 0 && string(h.Symbol) != sym {
		return fmt.Errorf("build envelope %s: %w: s=%q", sym, ErrSymbolMismatch, h.Symbol)
	}
	*env = envelope.Envelope{
		Market:     b.Market,
		Kind:       info.Kind,
		Symbol:     sym,
		ReceivedNs: recvNs,
		EventMs:    h.EventTime,
		TxMs:       h.TransactionTime,
		Source:     b.Source,
		Payload:    h.Data,
		DepthLimit: int32(info.Levels),
	}
	if h.Has&binance.HasFirstUpdateID != 0 {
		env.FirstID, env.Has = h.FirstUpdateID, env.Has|envelope.HasFirst
	}
	if h.Has&binance.HasFinalUpdateID != 0 {
		env.FinalID, env.Has = h.FinalUpdateID, env.Has|envelope.HasFinal
	}
	if h.Has&binance.HasPrevFinalUpdateID != 0 {
		env.PrevID, env.Has = h.PrevFinalUpdateID, env.Has|envelope.HasPrev
	}
	if h.Has&binance.HasLastUpdateID != 0 {
		env.LastID, env.Has = h.LastUpdateID, env.Has|envelope.HasLast
	}
	return nil
}
