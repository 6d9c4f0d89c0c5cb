package core

import (
	"slices"

	"github.com/depthcap/depthcap/pkg/manifest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/chain"
	"github.com/depthcap/depthcap/services/writer/internal/period"
	"github.com/depthcap/depthcap/services/writer/internal/pq"
)

// Snapshot bridge status (the manifests' quality.bridge, SCHEMA.md).
//
// The writer sees a symbol's REST snapshots and its diffs in one shard, in
// stream order. A snapshot with lastUpdateId L bridges into the diff chain
// when a diff row the writer wrote contains the bridge id b (pkg/book's
// rule: spot U <= L+1 <= u, so b = L+1; USD-M U <= L <= u, so b = L).
// Which comes first in the stream depends on the collectors' timing, so:
//
//   - when the snapshot arrives after the chain passed b, it is decided at
//     once from the chain: bridged iff b is at or above the first U of the
//     chain (since its start or last reset) and inside no open gap. On
//     spot, ids are consecutive and this is exact; on USD-M it assumes
//     that L is an id of the symbol's update stream (Binance's REST
//     lastUpdateId is), so that the event holding it is present;
//   - otherwise it waits (bridgeState.Pending) and is decided by the first
//     written diff row with u >= b: bridged iff the row's U <= b. A row
//     starting above b leaves it pending while b lies in an open gap (a
//     replica's late fill may still bridge it); what is still pending with
//     b inside the chain when the diff file of the chain head seals is
//     decided not bridged.
//
// A decision is counted in the diff file of the row that decided it, or
// of the chain head (decided at once or at a seal); none when that file
// has already sealed. Everything is a function of the stream contents in
// order, kept in the checkpoint (version 3), so a re-run seal writes the
// same manifest.

// maxPendingSnaps bounds the undecided snapshots of a diff stream; past
// it the oldest is decided not bridged.
const maxPendingSnaps = 16

// snapNote is a REST snapshot awaiting its bridge decision.
type snapNote struct {
	ID     int64 // lastUpdateId
	RecvNs int64
}

// bridgeState is the snapshot bridge state of a diff stream.
type bridgeState struct {
	Base       int64         // U of the first row of the chain since its start or last reset
	HeadFile   chain.FileRef // file of the stream's last written row
	HasHead    bool
	HasBridged bool
	MaxBridged int64 // highest lastUpdateId of a bridged snapshot
	Pending    []snapNote
}

// bridgeStats are a diff file's bridge decisions.
type bridgeStats struct {
	snaps, bridged              int64
	firstBridgeNs, lastBridgeNs int64
}

// bridgeID is the update id a diff row must contain to bridge a snapshot
// with lastUpdateId last.
func bridgeID(m md.Market, last int64) int64 {
	if m == md.Futures {
		return last
	}
	return last + 1
}

// diffRow updates the bridge state of a diff stream after row (first U,
// final u) was written to f. wasStarted is the chain's state before the
// row; reset is true for a Reset verdict.
func (c *Core) diffRow(st *stream, f *file, first, final int64, wasStarted, reset bool) {
	b := &st.bridge
	if !wasStarted || reset {
		b.Base = first
	}
	b.HeadFile, b.HasHead = f.key.ref(), true
	if len(b.Pending) == 0 {
		return
	}
	m := f.key.m
	kept := b.Pending[:0]
	for _, p := range b.Pending {
		id := bridgeID(m, p.ID)
		switch {
		case final < id: // not reached yet
			kept = append(kept, p)
		case first <= id:
			c.decideSnap(st, f, p, true)
		case st.chain.InGap(id):
			kept = append(kept, p) // a late fill may still bridge it
		default:
			c.decideSnap(st, f, p, false)
		}
	}
	clear(b.Pending[len(kept):])
	b.Pending = kept
}

// snapshotRow takes a written REST snapshot into the bridge state of the
// symbol's diff stream.
func (c *Core) snapshotRow(m md.Market, sym string, last, recvNs int64) {
	_, ds := c.stream(m, md.Diff, sym)
	b := &ds.bridge
	id := bridgeID(m, last)
	p := snapNote{ID: last, RecvNs: recvNs}
	if ds.chain.Started && id <= ds.chain.LastU {
		c.decideSnap(ds, c.headFile(m, sym, ds), p, id >= b.Base && !ds.chain.InGap(id))
		return
	}
	b.Pending = append(b.Pending, p)
	if len(b.Pending) > maxPendingSnaps {
		old := b.Pending[0]
		b.Pending = slices.Delete(b.Pending, 0, 1)
		c.decideSnap(ds, c.headFile(m, sym, ds), old, false)
	}
}

// headFile is the open diff file of the stream's last written row, or nil.
func (c *Core) headFile(m md.Market, sym string, ds *stream) *file {
	if !ds.bridge.HasHead {
		return nil
	}
	h := ds.bridge.HeadFile
	return c.st.files[fileKey{streamKey: streamKey{m: m, k: md.Diff, sym: ds.sym}, period: h.Period, supp: h.Supp}]
}

func (c *Core) decideSnap(ds *stream, f *file, p snapNote, bridged bool) {
	if bridged {
		if !ds.bridge.HasBridged || p.ID > ds.bridge.MaxBridged {
			ds.bridge.MaxBridged = p.ID
		}
		ds.bridge.HasBridged = true
	}
	if f == nil {
		return
	}
	q := &f.bridge
	q.snaps++
	if bridged {
		q.bridged++
		if q.firstBridgeNs == 0 || p.RecvNs < q.firstBridgeNs {
			q.firstBridgeNs = p.RecvNs
		}
		q.lastBridgeNs = max(q.lastBridgeNs, p.RecvNs)
	}
}

// resolveBridges decides, before the diff file k seals, the pending
// snapshots whose bridge id the chain has passed (they lie in a gap that
// no fill closed), if k holds the chain head.
func (c *Core) resolveBridges(k fileKey) {
	if k.k != md.Diff {
		return
	}
	st, f := c.st.streams[k.streamKey], c.st.files[k]
	if st == nil || f == nil || !st.bridge.HasHead || st.bridge.HeadFile != k.ref() {
		return
	}
	b := &st.bridge
	kept := b.Pending[:0]
	for _, p := range b.Pending {
		if st.chain.Started && bridgeID(k.m, p.ID) <= st.chain.LastU {
			c.decideSnap(st, f, p, false)
			continue
		}
		kept = append(kept, p)
	}
	clear(b.Pending[len(kept):])
	b.Pending = kept
}

// quality is the manifest's quality summary of f, from its manifest
// entries, the times of its rows (the Parquet writer saw every row) and
// the stream's bridge state.
func (c *Core) quality(f *file, man *manifest.Manifest, gapNs [][2]int64, times pq.TimeRange) *manifest.Quality {
	k := f.key
	q := &manifest.Quality{
		Rows:              f.nRows,
		FirstReceivedTime: manifest.FormatTime(times.MinRecvUs * 1000),
		LastReceivedTime:  manifest.FormatTime(times.MaxRecvUs * 1000),
		FirstEventTime:    manifest.FormatTime(times.MinEventUs * 1000),
		LastEventTime:     manifest.FormatTime(times.MaxEventUs * 1000),
		GapCount:          man.GapCount,
		CoveredReports:    len(man.Covered),
		Resets:            len(man.Resets),
	}
	p := period.Index(k.period)
	start, end := p.Start(c.cfg.Period), p.End(c.cfg.Period)
	var spans [][2]int64
	for _, g := range gapNs {
		if g[0] == 0 || g[1] == 0 || g[1] < g[0] {
			q.UntimedGaps++
			continue
		}
		if a, b := max(g[0], start), min(g[1], end); a < b {
			spans = append(spans, [2]int64{a, b})
		}
	}
	gap := unionNs(spans)
	q.GapMs = gap / 1e6
	q.GapShare = float64(gap) / float64(end-start)
	if k.k == md.Diff {
		br := &manifest.Bridge{Snapshots: f.bridge.snaps, Bridged: f.bridge.bridged,
			FirstBridgeTime: manifest.FormatTime(f.bridge.firstBridgeNs), LastBridgeTime: manifest.FormatTime(f.bridge.lastBridgeNs)}
		if st := c.st.streams[k.streamKey]; st != nil && st.bridge.HasBridged {
			for _, g := range man.Gaps {
				if st.bridge.MaxBridged >= g.ResumePrevID {
					br.GapsRestored++
				}
			}
		}
		br.Restorable = br.Bridged > 0 && br.GapsRestored == man.GapCount
		q.Bridge = br
	}
	return q
}

// unionNs is the total length of the union of intervals [a, b).
func unionNs(spans [][2]int64) int64 {
	slices.SortFunc(spans, func(x, y [2]int64) int {
		if x[0] != y[0] {
			if x[0] < y[0] {
				return -1
			}
			return 1
		}
		return 0
	})
	var total, curA, curB int64
	open := false
	for _, s := range spans {
		if open && s[0] <= curB {
			curB = max(curB, s[1])
			continue
		}
		if open {
			total += curB - curA
		}
		curA, curB, open = s[0], s[1], true
	}
	if open {
		total += curB - curA
	}
	return total
}
