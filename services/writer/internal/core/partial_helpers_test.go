package core

import (
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
)

// spotPartialMsg is a spot partial frame (lastUpdateId id) of sym from
// source src, received at recvNs.
func spotPartialMsg(seq uint64, sym, src string, id, recvNs int64) Msg {
	payload := []byte(`{"lastUpdateId":` + itoa(id) + `,"bids":[["1.5","2"]],"asks":[["1.6","3"]]}`)
	e := envelope.Envelope{Market: md.Spot, Kind: md.Partial, Symbol: sym, ReceivedNs: recvNs, Payload: payload, LastID: id,
		Has: envelope.HasLast, Source: src, DepthLimit: 20}
	return Msg{Seq: seq, Subject: md.Subject(md.Spot, md.Partial, sym) + ".0", Data: e.AppendMarshal(nil), StoreNs: recvNs}
}

// futuresPartialMsg is a USD-M partial frame (U = u-2, pu = u-5) of sym
// from source src, received at recvNs.
func futuresPartialMsg(seq uint64, sym, src string, u, recvNs int64) Msg {
	ms := recvNs / 1e6
	payload := []byte(`{"e":"depthUpdate","E":` + itoa(ms) + `,"T":` + itoa(ms-1) + `,"s":"` + sym + `","U":` + itoa(u-2) + `,"u":` + itoa(u) +
		`,"pu":` + itoa(u-5) + `,"b":[["1.5","2"]],"a":[["1.6","3"]]}`)
	e := envelope.Envelope{Market: md.Futures, Kind: md.Partial, Symbol: sym, ReceivedNs: recvNs, EventMs: ms, TxMs: ms - 1, Payload: payload,
		FirstID: u - 2, FinalID: u, PrevID: u - 5, Has: envelope.HasFirst | envelope.HasFinal | envelope.HasPrev, Source: src, DepthLimit: 20}
	return Msg{Seq: seq, Subject: md.Subject(md.Futures, md.Partial, sym) + ".0", Data: e.AppendMarshal(nil), StoreNs: recvNs}
}

// partialGapMsg is a collector's gap record of a partial stream: src
// received nothing with an id in (after, resume].
func partialGapMsg(seq uint64, m md.Market, sym, src string, reason envelope.GapReason, after, resume, recvNs int64) Msg {
	e := envelope.Envelope{Market: m, Kind: md.Gap, Symbol: sym, ReceivedNs: recvNs, Source: src, Has: envelope.HasGap,
		Gap: envelope.Gap{StreamKind: md.Partial, Reason: reason, AfterID: after, ResumePrevID: resume, StartNs: recvNs - 1e9, EndNs: recvNs}}
	return Msg{Seq: seq, Subject: md.Subject(m, md.Gap, sym) + ".0", Data: e.AppendMarshal(nil), StoreNs: recvNs}
}
