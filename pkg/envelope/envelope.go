// Package envelope encodes and decodes the depthcap event envelope
// (proto/depthcap/v1/envelope.proto) on the hot path.
//
// The generated types in pkg/gen/depthcap/v1 are the reference and what
// outside consumers use. This package writes the same wire bytes without
// allocating (AppendMarshal into a reused buffer) and reads them without
// copying (Unmarshal aliases the input). Tests prove byte equality with
// proto.Marshal and agreement with proto.Unmarshal.
package envelope

import (
	"errors"
	"fmt"
	"strconv"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/depthcap/depthcap/pkg/md"
)

// Field numbers, as in envelope.proto.
const (
	fExchange        = 1
	fMarket          = 2
	fKind            = 3
	fSymbol          = 4
	fReceivedTimeNs  = 5
	fRequestTimeNs   = 6
	fEventTimeMs     = 7
	fTxTimeMs        = 8
	fFirstUpdateID   = 9
	fFinalUpdateID   = 10
	fPrevFinalUpdate = 11
	fLastUpdateID    = 12
	fSource          = 13
	fPayload         = 14
	fGap             = 15
	fDepthLimit      = 16

	gStreamKind   = 1
	gReason       = 2
	gAfterID      = 3
	gResumePrevID = 4
	gStartTimeNs  = 5
	gEndTimeNs    = 6
	gFramesLost   = 7
	gDetail       = 8
)

// Presence bits for the optional sequence ids.
const (
	HasFirst uint8 = 1 << iota // U
	HasFinal                   // u
	HasPrev                    // pu
	HasLast                    // lastUpdateId
	HasGap                     // Gap is set
)

// GapReason says why events are missing; values match depthcap.v1.GapReason.
type GapReason uint8

// Gap reasons.
const (
	ReasonUnknown        GapReason = 0
	ReasonSequence       GapReason = 1
	ReasonDisconnect     GapReason = 2
	ReasonBufferOverflow GapReason = 3
)

func (r GapReason) String() string {
	switch r {
	case ReasonSequence:
		return "sequence"
	case ReasonDisconnect:
		return "disconnect"
	case ReasonBufferOverflow:
		return "buffer_overflow"
	default:
		return "unknown"
	}
}

// Gap mirrors depthcap.v1.Gap: the missing events are those whose final
// update id u satisfies AfterID < u <= ResumePrevID.
type Gap struct {
	StreamKind   md.Kind
	Reason       GapReason
	AfterID      int64
	ResumePrevID int64
	StartNs      int64
	EndNs        int64
	FramesLost   int64
	Detail       string
}

// Envelope is the hot-path form of depthcap.v1.Envelope.
type Envelope struct {
	Market     md.Market
	Kind       md.Kind
	Symbol     string
	ReceivedNs int64
	RequestNs  int64
	EventMs    int64
	TxMs       int64
	FirstID    int64 // U, valid when Has&HasFirst
	FinalID    int64 // u, valid when Has&HasFinal
	PrevID     int64 // pu, valid when Has&HasPrev
	LastID     int64 // lastUpdateId, valid when Has&HasLast
	Has        uint8
	Source     string
	Payload    []byte
	DepthLimit int32
	Gap        Gap // valid when Has&HasGap
}

// SeqID is the exchange sequence id used for the dedup id: u for diffs
// and futures partials, lastUpdateId for spot partials and REST snapshots.
// ok is false when the envelope carries neither.
func (e *Envelope) SeqID() (id int64, ok bool) {
	switch {
	case e.Kind == md.Snapshot && e.Has&HasLast != 0:
		return e.LastID, true
	case e.Has&HasFinal != 0:
		return e.FinalID, true
	case e.Has&HasLast != 0:
		return e.LastID, true
	}
	return 0, false
}

// AppendMarshal appends the protobuf encoding of e to dst. It allocates
// only when dst must grow. Fields are written in field-number order and
// zero scalars are omitted, so the bytes equal proto.Marshal's.
func (e *Envelope) AppendMarshal(dst []byte) []byte {
	dst = appendString(dst, fExchange, md.Exchange)
	dst = appendVarint(dst, fMarket, uint64(e.Market))
	dst = appendVarint(dst, fKind, uint64(e.Kind))
	dst = appendString(dst, fSymbol, e.Symbol)
	dst = appendVarint(dst, fReceivedTimeNs, uint64(e.ReceivedNs))
	dst = appendVarint(dst, fRequestTimeNs, uint64(e.RequestNs))
	dst = appendVarint(dst, fEventTimeMs, uint64(e.EventMs))
	dst = appendVarint(dst, fTxTimeMs, uint64(e.TxMs))
	if e.Has&HasFirst != 0 {
		dst = appendPresent(dst, fFirstUpdateID, uint64(e.FirstID))
	}
	if e.Has&HasFinal != 0 {
		dst = appendPresent(dst, fFinalUpdateID, uint64(e.FinalID))
	}
	if e.Has&HasPrev != 0 {
		dst = appendPresent(dst, fPrevFinalUpdate, uint64(e.PrevID))
	}
	if e.Has&HasLast != 0 {
		dst = appendPresent(dst, fLastUpdateID, uint64(e.LastID))
	}
	dst = appendString(dst, fSource, e.Source)
	if len(e.Payload) > 0 {
		dst = protowire.AppendTag(dst, fPayload, protowire.BytesType)
		dst = protowire.AppendBytes(dst, e.Payload)
	}
	if e.Has&HasGap != 0 {
		dst = protowire.AppendTag(dst, fGap, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(e.Gap.size()))
		dst = e.Gap.appendMarshal(dst)
	}
	dst = appendVarint(dst, fDepthLimit, uint64(int64(e.DepthLimit)))
	return dst
}

func (g *Gap) size() int {
	n := sizeVarint(gStreamKind, uint64(g.StreamKind)) + sizeVarint(gReason, uint64(g.Reason)) +
		sizeVarint(gAfterID, uint64(g.AfterID)) + sizeVarint(gResumePrevID, uint64(g.ResumePrevID)) +
		sizeVarint(gStartTimeNs, uint64(g.StartNs)) + sizeVarint(gEndTimeNs, uint64(g.EndNs)) +
		sizeVarint(gFramesLost, uint64(g.FramesLost))
	if g.Detail != "" {
		n += protowire.SizeTag(gDetail) + protowire.SizeBytes(len(g.Detail))
	}
	return n
}

func (g *Gap) appendMarshal(dst []byte) []byte {
	dst = appendVarint(dst, gStreamKind, uint64(g.StreamKind))
	dst = appendVarint(dst, gReason, uint64(g.Reason))
	dst = appendVarint(dst, gAfterID, uint64(g.AfterID))
	dst = appendVarint(dst, gResumePrevID, uint64(g.ResumePrevID))
	dst = appendVarint(dst, gStartTimeNs, uint64(g.StartNs))
	dst = appendVarint(dst, gEndTimeNs, uint64(g.EndNs))
	dst = appendVarint(dst, gFramesLost, uint64(g.FramesLost))
	return appendString(dst, gDetail, g.Detail)
}

func sizeVarint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendVarint(dst []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, v)
}

// appendPresent writes an optional field even when it is zero.
func appendPresent(dst []byte, num protowire.Number, v uint64) []byte {
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, v)
}

func appendString(dst []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// ErrMalformed is returned for bytes that are not a valid envelope.
var ErrMalformed = errors.New("malformed envelope")

// Unmarshal decodes b into e without copying: e.Payload, e.Symbol,
// e.Source and e.Gap.Detail alias b and are valid only while b is neither
// modified nor reused. Unknown fields are skipped (forward compatibility).
func Unmarshal(b []byte, e *Envelope) error {
	*e = Envelope{}
	var exchange string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: tag: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %w", ErrMalformed, num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case fMarket:
				e.Market = md.Market(v)
			case fKind:
				e.Kind = md.Kind(v)
			case fReceivedTimeNs:
				e.ReceivedNs = int64(v)
			case fRequestTimeNs:
				e.RequestNs = int64(v)
			case fEventTimeMs:
				e.EventMs = int64(v)
			case fTxTimeMs:
				e.TxMs = int64(v)
			case fFirstUpdateID:
				e.FirstID, e.Has = int64(v), e.Has|HasFirst
			case fFinalUpdateID:
				e.FinalID, e.Has = int64(v), e.Has|HasFinal
			case fPrevFinalUpdate:
				e.PrevID, e.Has = int64(v), e.Has|HasPrev
			case fLastUpdateID:
				e.LastID, e.Has = int64(v), e.Has|HasLast
			case fDepthLimit:
				e.DepthLimit = int32(v)
			}
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %w", ErrMalformed, num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case fExchange:
				exchange = unsafeString(v)
			case fSymbol:
				e.Symbol = unsafeString(v)
			case fSource:
				e.Source = unsafeString(v)
			case fPayload:
				e.Payload = v
			case fGap:
				if err := unmarshalGap(v, &e.Gap); err != nil {
					return err
				}
				e.Has |= HasGap
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %w", ErrMalformed, num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	if exchange != md.Exchange {
		return fmt.Errorf("%w: exchange %q, want %q", ErrMalformed, exchange, md.Exchange)
	}
	if !e.Market.Valid() {
		return fmt.Errorf("%w: market %d", ErrMalformed, e.Market)
	}
	if !e.Kind.Valid() {
		return fmt.Errorf("%w: kind %d", ErrMalformed, e.Kind)
	}
	if !md.ValidSymbol(e.Symbol) {
		return fmt.Errorf("%w: symbol %q", ErrMalformed, e.Symbol)
	}
	return nil
}

func unmarshalGap(b []byte, g *Gap) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: gap tag: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("%w: gap field %d: %w", ErrMalformed, num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case gStreamKind:
				g.StreamKind = md.Kind(v)
			case gReason:
				g.Reason = GapReason(v)
			case gAfterID:
				g.AfterID = int64(v)
			case gResumePrevID:
				g.ResumePrevID = int64(v)
			case gStartTimeNs:
				g.StartNs = int64(v)
			case gEndTimeNs:
				g.EndNs = int64(v)
			case gFramesLost:
				g.FramesLost = int64(v)
			}
			continue
		}
		if typ == protowire.BytesType && num == gDetail {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("%w: gap detail: %w", ErrMalformed, protowire.ParseError(n))
			}
			b = b[n:]
			g.Detail = unsafeString(v)
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return fmt.Errorf("%w: gap field %d: %w", ErrMalformed, num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}

func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// AppendMsgID appends the envelope's dedup id (Nats-Msg-Id) to dst:
// <market>.<kind>.<SYMBOL>.<id> for data kinds. Gap records are keyed by
// their range and source, so that two collectors' reports of the same gap
// are both kept: <market>.gap.<SYMBOL>.<streamkind>.<after>.<resume>.<source>.
func (e *Envelope) AppendMsgID(dst []byte) ([]byte, error) {
	if e.Kind == md.Gap {
		dst = md.AppendMsgID(dst, e.Market, md.Gap, e.Symbol, e.Gap.AfterID)
		dst = append(dst, '.')
		dst = append(dst, e.Gap.StreamKind.String()...)
		dst = append(dst, '.')
		dst = strconv.AppendInt(dst, e.Gap.ResumePrevID, 10)
		dst = append(dst, '.')
		return append(dst, e.Source...), nil
	}
	id, ok := e.SeqID()
	if !ok {
		return dst, fmt.Errorf("dedup id %s %s %s: %w: no sequence id", e.Market, e.Kind, e.Symbol, ErrMalformed)
	}
	return md.AppendMsgID(dst, e.Market, e.Kind, e.Symbol, id), nil
}
