package envelope

import (
	"bytes"

	depthcapv1 "github.com/depthcap/depthcap/pkg/gen/depthcap/v1"
	"github.com/depthcap/depthcap/pkg/md"
)

// ToProto converts e to the generated type, copying byte slices.
func (e *Envelope) ToProto() *depthcapv1.Envelope {
	p := &depthcapv1.Envelope{
		Exchange:          md.Exchange,
		Market:            depthcapv1.Market(e.Market),
		Kind:              depthcapv1.Kind(e.Kind),
		Symbol:            e.Symbol,
		ReceivedTimeNs:    e.ReceivedNs,
		RequestTimeNs:     e.RequestNs,
		EventTimeMs:       e.EventMs,
		TransactionTimeMs: e.TxMs,
		Source:            e.Source,
		Payload:           bytes.Clone(e.Payload),
		DepthLimit:        e.DepthLimit,
	}
	if e.Has&HasFirst != 0 {
		p.FirstUpdateId = &e.FirstID
	}
	if e.Has&HasFinal != 0 {
		p.FinalUpdateId = &e.FinalID
	}
	if e.Has&HasPrev != 0 {
		p.PrevFinalUpdateId = &e.PrevID
	}
	if e.Has&HasLast != 0 {
		p.LastUpdateId = &e.LastID
	}
	if e.Has&HasGap != 0 {
		p.Gap = &depthcapv1.Gap{
			StreamKind:   depthcapv1.Kind(e.Gap.StreamKind),
			Reason:       depthcapv1.GapReason(e.Gap.Reason),
			AfterId:      e.Gap.AfterID,
			ResumePrevId: e.Gap.ResumePrevID,
			StartTimeNs:  e.Gap.StartNs,
			EndTimeNs:    e.Gap.EndNs,
			FramesLost:   e.Gap.FramesLost,
			Detail:       e.Gap.Detail,
		}
	}
	return p
}

// FromProto converts the generated type; the result aliases p's slices.
func FromProto(p *depthcapv1.Envelope) Envelope {
	e := Envelope{
		Market:     md.Market(p.GetMarket()),
		Kind:       md.Kind(p.GetKind()),
		Symbol:     p.GetSymbol(),
		ReceivedNs: p.GetReceivedTimeNs(),
		RequestNs:  p.GetRequestTimeNs(),
		EventMs:    p.GetEventTimeMs(),
		TxMs:       p.GetTransactionTimeMs(),
		Source:     p.GetSource(),
		Payload:    p.GetPayload(),
		DepthLimit: p.GetDepthLimit(),
	}
	if p.FirstUpdateId != nil {
		e.FirstID, e.Has = *p.FirstUpdateId, e.Has|HasFirst
	}
	if p.FinalUpdateId != nil {
		e.FinalID, e.Has = *p.FinalUpdateId, e.Has|HasFinal
	}
	if p.PrevFinalUpdateId != nil {
		e.PrevID, e.Has = *p.PrevFinalUpdateId, e.Has|HasPrev
	}
	if p.LastUpdateId != nil {
		e.LastID, e.Has = *p.LastUpdateId, e.Has|HasLast
	}
	if g := p.GetGap(); g != nil {
		e.Has |= HasGap
		e.Gap = Gap{
			StreamKind:   md.Kind(g.GetStreamKind()),
			Reason:       GapReason(g.GetReason()),
			AfterID:      g.GetAfterId(),
			ResumePrevID: g.GetResumePrevId(),
			StartNs:      g.GetStartTimeNs(),
			EndNs:        g.GetEndTimeNs(),
			FramesLost:   g.GetFramesLost(),
			Detail:       g.GetDetail(),
		}
	}
	return e
}
