package ingest

import (
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
)

// verdict is what to do with a frame.
type verdict uint8

const (
	// publish: enqueue the frame (then call accepted or dropped).
	publish verdict = iota
	// duplicate: the id is not above the last one seen (the same event
	// from the other connection of a rotation, or an unchanged spot
	// partial); skip it.
	duplicate
	// deferred: the frame would open a gap but arrived on a connection
	// that may not decide (a rotation's new connection before it is
	// promoted, or the old one after): the other connection carries the
	// same stream and may still deliver the missing frames.
	deferred
)

func (v verdict) String() string {
	switch v {
	case publish:
		return "publish"
	case duplicate:
		return "duplicate"
	case deferred:
		return "deferred"
	}
	return "unknown"
}

// maxPendingGaps bounds the gap records one stream holds while the
// publish buffer is full. Past it, a new record is merged into the last
// one (their union, never less than what was lost).
const maxPendingGaps = 16

// tracker is the sequence and loss bookkeeping of one (symbol, kind)
// stream, shared by every connection that carries it. It is a pure state
// machine; the caller holds the stream's lock.
//
// Invariant: every id the exchange sent after the first frame seen is
// either published, or inside exactly one gap record (pending, or
// already handed to the publisher), or arrives again later (duplicate).
//
// Diffs are chained (spot U-1 == previous u, futures pu == previous u),
// so any loss is seen as a break. Partials are not: only a reconnect
// (disconnected) or a publish-buffer overflow produces their records.
type tracker struct {
	kind    md.Kind
	chained bool

	has    bool  // a frame was seen
	last   int64 // highest id accounted for: published, dropped, or covered by a record
	lastNs int64 // receive time of the frame with id last (or of the break)

	// disconnected: the connection that carried the stream ended
	// unexpectedly since the last frame; the next break is a disconnect.
	disconnected bool

	ovOpen bool         // frames are being dropped (publish buffer full)
	ov     envelope.Gap // the open buffer_overflow record

	pend   [maxPendingGaps]envelope.Gap // closed records waiting for the publisher
	npend  int
	merged int64 // records merged because pend was full
}

func newTracker(k md.Kind) tracker {
	return tracker{kind: k, chained: k == md.Diff}
}

// check classifies a frame with dedup id id and, for chained streams,
// previous-id link prev (spot U-1, futures pu). mayGap is false for a
// frame from the secondary connection of a rotation whose primary carries
// the stream. When the frame opens a gap, a sequence or disconnect record
// is added to the pending slot and gap is true.
func (t *tracker) check(id, prev, recvNs int64, mayGap bool) (v verdict, gap bool) {
	if !t.has {
		t.disconnected = false
		return publish, false
	}
	if id <= t.last {
		return duplicate, false
	}
	var resume int64
	switch {
	case t.chained && prev > t.last:
		resume = prev // events with last < u <= prev never arrived
	case !t.chained && t.disconnected && id-1 > t.last:
		resume = id - 1 // partial samples between the last before and the first after
	}
	if resume > t.last {
		if !mayGap {
			return deferred, false
		}
		reason := envelope.ReasonSequence
		if t.disconnected {
			reason = envelope.ReasonDisconnect
		}
		t.closeOverflow(recvNs)
		t.push(envelope.Gap{StreamKind: t.kind, Reason: reason, AfterID: t.last, ResumePrevID: resume, StartNs: t.lastNs, EndNs: recvNs})
		t.last = resume
		gap = true
	}
	// A chained frame whose prev is below last overlaps events already
	// published: nothing is missing, so nothing is recorded.
	t.disconnected = false
	return publish, gap
}

// accepted records that the frame with id was enqueued. It closes an open
// overflow record: the buffer takes frames again.
func (t *tracker) accepted(id, recvNs int64) {
	t.closeOverflow(recvNs)
	t.has, t.last, t.lastNs = true, id, recvNs
}

// dropped records that the frame with id (and link prev) was refused by
// the full publish buffer: it opens or extends the overflow record.
func (t *tracker) dropped(id, prev, recvNs int64) {
	if !t.ovOpen {
		after, start := t.last, t.lastNs
		if !t.has {
			// Nothing seen before: the loss starts right before this frame.
			after, start = id-1, recvNs
			if t.chained {
				after = prev
			}
		}
		t.ovOpen = true
		t.ov = envelope.Gap{StreamKind: t.kind, Reason: envelope.ReasonBufferOverflow, AfterID: after, StartNs: start}
	}
	t.ov.ResumePrevID = id
	t.ov.FramesLost++
	t.has, t.last, t.lastNs = true, id, recvNs
}

// closeOverflow moves an open overflow record to the pending slot.
func (t *tracker) closeOverflow(endNs int64) {
	if !t.ovOpen {
		return
	}
	t.ovOpen = false
	t.ov.EndNs = endNs
	t.push(t.ov)
	t.ov = envelope.Gap{}
}

// push appends a closed record; when the slot is full it is merged into
// the last one, whose range then covers both (and the published events
// between them: a record may claim too much, never too little).
func (t *tracker) push(g envelope.Gap) {
	if t.npend < len(t.pend) {
		t.pend[t.npend] = g
		t.npend++
		return
	}
	l := &t.pend[t.npend-1]
	l.ResumePrevID = max(l.ResumePrevID, g.ResumePrevID)
	l.EndNs = max(l.EndNs, g.EndNs)
	l.FramesLost += g.FramesLost
	l.Detail = "merged: the pending-record slot was full; the range may include published events"
	t.merged++
}

// pending returns the oldest pending record, if any.
func (t *tracker) pending() (*envelope.Gap, bool) {
	if t.npend == 0 {
		return nil, false
	}
	return &t.pend[0], true
}

// pop removes the oldest pending record after it was enqueued.
func (t *tracker) pop() {
	copy(t.pend[:], t.pend[1:t.npend])
	t.npend--
	t.pend[t.npend] = envelope.Gap{}
}

// markDisconnected notes that the connection carrying the stream ended.
func (t *tracker) markDisconnected() { t.disconnected = true }

// closeAll closes an open overflow at shutdown so that it is published.
func (t *tracker) closeAll(nowNs int64) { t.closeOverflow(nowNs) }
