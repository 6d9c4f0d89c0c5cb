package core

import (
	"cmp"

	"encoding/binary"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"hash/crc32"
	"io"
	"slices"
	"strings"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/chain"
	"github.com/depthcap/depthcap/services/writer/internal/rows"
)

// streamKey names one exchange stream: market, kind and symbol.
type streamKey struct {
	m   md.Market
	k   md.Kind
	sym string
}

func (s streamKey) layout() rows.Layout { return rows.Layout{Market: s.m, Kind: s.k} }

// chained reports whether the kind carries a usable sequence chain. Only
// diffs do: partial depth messages are sampled top-N books whose pu does
// not link consecutive partials (pkg/binance sequence.go).
func (s streamKey) chained() bool { return s.k == md.Diff }

func cmpStream(a, b streamKey) int {
	return cmp.Or(cmp.Compare(a.m, b.m), cmp.Compare(a.k, b.k), strings.Compare(a.sym, b.sym))
}

// fileKey names one output file: a stream, a period and a supplement.
type fileKey struct {
	streamKey
	period int64
	supp   int32
}

func cmpFile(a, b fileKey) int {
	return cmp.Or(cmpStream(a.streamKey, b.streamKey), cmp.Compare(a.period, b.period), cmp.Compare(a.supp, b.supp))
}

func (f fileKey) ref() chain.FileRef { return chain.FileRef{Period: f.period, Supp: f.supp} }

// periodKey names a stream's period, for supplement numbering.
type periodKey struct {
	streamKey
	period int64
}

// stream is the dedup state of one stream.
type stream struct {
	// cached metric series of the stream (not persisted)
	rowsC, dupsC prometheus.Counter
	sym          string
	chain        chain.Chain   // chained kinds
	sampled      chain.Sampled // the others
	bridge       bridgeState   // diffs: REST snapshot bridge status (quality.go)
}

// part is a part file on disk: encoded row chunks of one output file.
// part is one open file's chunk run in a part file: bytes [off, off+len)
// of name, a sequence of uvarint-length-prefixed chunks holding rows
// rows. A part file holds the runs of every open file of one period that
// a checkpoint spilled (len > 0); a version 3 checkpoint's part files
// hold one run each, after the magic (len == 0: the whole file).
type part struct {
	name     string
	rows     int64
	off, len int64
}

// resetNote records a sequence restart for the manifest.
type resetNote struct {
	PrevLastID int64
	NewID      int64
	RecvNs     int64
}

// file is an open output file: rows not yet sealed.
type file struct {
	key      fileKey
	rows     rows.Rows // since the last checkpoint (memory only)
	chunks   [][]byte  // encoded rows since the last part (in the checkpoint)
	chunkLen int64
	parts    []part
	nRows    int64
	firstSeq uint64
	lastSeq  uint64
	openWM   int64 // watermark when the file was opened (supplements seal at openWM + grace)
	covered  []chain.Report
	reported []chain.Report // unfilled collector gap reports of unchained kinds (decided at seal)
	resets   []resetNote
	bridge   bridgeStats // diff files: snapshot bridge decisions (quality.go)
}

// memBytes is the memory the file holds against the budget.
func (f *file) memBytes() int64 { return f.rows.Bytes() + f.chunkLen }

// state is everything the checkpoint persists.
type state struct {
	gen       uint64 // checkpoint generation
	lastSeq   uint64 // stream sequence of the last processed message
	watermark int64
	streams   map[streamKey]*stream
	files     map[fileKey]*file
	nextSupp  map[periodKey]int32
	sealing   []fileKey // seal in progress
}

func newState() *state {
	return &state{streams: map[streamKey]*stream{}, files: map[fileKey]*file{}, nextSupp: map[periodKey]int32{}}
}

var ckptMagic = []byte("DCWCKPT1")

// ckptVersion is the checkpoint format written. Version 2 added, per
// stream without a chain, the source of each recent id, the source
// table, the undecided gap reports (claims) and the decided ones kept
// for conflict checks. Version 1 checkpoints are read: their ids get no
// source (NoSource: no evidence) and the reports a version 1 writer kept
// in its open files (f.reported, all listed as gaps) become claims,
// decided at seal like new ones, except in files of an interrupted seal,
// which keep the old decision so that the re-run seal writes what the old
// writer may already have published. Version 3 added the snapshot bridge
// state of diff streams and the bridge decisions of open diff files
// (quality.go); older checkpoints start them empty. Version 4 added each
// part's byte range: a checkpoint writes one part file per period instead
// of one per spilled file.
const ckptVersion = 4

// header identifies the configuration a checkpoint was written with;
// changing the period or the shard under an existing checkpoint would
// misroute rows, so it is refused.
type header struct {
	shard    string
	periodNs int64
}

func (e *enc) report(r chain.Report) {
	e.str(r.Source)
	e.u(uint64(r.Reason))
	e.i(r.AfterID)
	e.i(r.ResumePrevID)
	e.i(r.StartNs)
	e.i(r.EndNs)
	e.i(r.FramesLost)
	e.str(r.Detail)
	e.u(r.StreamSeq)
}

func (d *dec) report() chain.Report {
	return chain.Report{Source: d.str(), Reason: uint8(d.u()), AfterID: d.i(), ResumePrevID: d.i(), StartNs: d.i(), EndNs: d.i(), FramesLost: d.i(), Detail: d.str(), StreamSeq: d.u()}
}

func (e *enc) reports(rs []chain.Report) {
	e.count(len(rs))
	for _, r := range rs {
		e.report(r)
	}
}

func (d *dec) reports() []chain.Report {
	n := d.count(1 << 20)
	var out []chain.Report
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.report())
	}
	return out
}

func (e *enc) streamKey(s streamKey) {
	e.u(uint64(s.m))
	e.u(uint64(s.k))
	e.str(s.sym)
}

func (d *dec) streamKey() streamKey {
	return streamKey{m: md.Market(d.u()), k: md.Kind(d.u()), sym: d.str()}
}

func (e *enc) fileKey(f fileKey) {
	e.streamKey(f.streamKey)
	e.i(f.period)
	e.i(int64(f.supp))
}

func (d *dec) fileKey() fileKey {
	return fileKey{streamKey: d.streamKey(), period: d.i(), supp: int32(d.i())}
}

// encode serializes the state. Maps are written in sorted key order so
// that equal states give equal bytes. Files must have no raw rows.
func (s *state) encode(h header, dst []byte) []byte {
	e := enc{b: dst}
	s.encodeBody(&e, h)
	e.fixed32(crc32.Checksum(e.b[len(dst):], castagnoli))
	return e.b
}

// encodeTo streams the same bytes as encode to w, buffering through
// scratch (returned for reuse), and returns how many it wrote.
func (s *state) encodeTo(h header, w io.Writer, scratch []byte) (int64, []byte, error) {
	e := enc{b: scratch[:0], w: w}
	s.encodeBody(&e, h)
	e.fixed32(crc32.Update(e.crc, castagnoli, e.b))
	e.flush()
	return e.n, e.b[:0], e.err
}

// encodeBody writes the checkpoint up to its checksum.
func (s *state) encodeBody(e *enc, h header) {
	e.b = append(e.b, ckptMagic...)
	e.u(ckptVersion)
	e.str(h.shard)
	e.i(h.periodNs)
	e.u(s.gen)
	e.u(s.lastSeq)
	e.i(s.watermark)

	sk := make([]streamKey, 0, len(s.streams))
	for k := range s.streams {
		sk = append(sk, k)
	}
	slices.SortFunc(sk, cmpStream)
	e.count(len(sk))
	for _, k := range sk {
		st := s.streams[k]
		e.streamKey(k)
		c := &st.chain
		e.boolean(c.Started)
		e.i(c.LastU)
		e.i(c.LastE)
		e.i(c.LastNs)
		e.count(len(c.Gaps))
		for _, g := range c.Gaps {
			e.i(g.After)
			e.i(g.Resume)
			e.i(g.AfterNs)
			e.i(g.ResumeNs)
			e.i(g.File.Period)
			e.i(int64(g.File.Supp))
			e.reports(g.Reports)
		}
		e.reports(c.Pending)
		sm := &st.sampled
		e.count(len(sm.IDs))
		var prev int64
		for _, id := range sm.IDs {
			e.i(id - prev)
			prev = id
		}
		e.bytes(sm.Src)
		e.count(len(sm.Sources))
		for _, n := range sm.Sources {
			e.str(n)
		}
		e.count(len(sm.Claims))
		for _, cl := range sm.Claims {
			e.report(cl.Report)
			e.i(cl.File.Period)
			e.i(int64(cl.File.Supp))
			e.boolean(cl.Inside)
			e.boolean(cl.Conflict)
			e.count(len(cl.Seen))
			for _, sn := range cl.Seen {
				e.str(sn.Source)
				e.boolean(sn.Below)
				e.boolean(sn.Above)
			}
		}
		e.count(len(sm.Past))
		for _, p := range sm.Past {
			e.str(p.Source)
			e.i(p.AfterID)
			e.i(p.End)
		}
		b := &st.bridge
		e.i(b.Base)
		e.boolean(b.HasHead)
		e.i(b.HeadFile.Period)
		e.i(int64(b.HeadFile.Supp))
		e.boolean(b.HasBridged)
		e.i(b.MaxBridged)
		e.count(len(b.Pending))
		for _, p := range b.Pending {
			e.i(p.ID)
			e.i(p.RecvNs)
		}
	}

	fk := make([]fileKey, 0, len(s.files))
	for k := range s.files {
		fk = append(fk, k)
	}
	slices.SortFunc(fk, cmpFile)
	e.count(len(fk))
	for _, k := range fk {
		f := s.files[k]
		e.fileKey(k)
		e.i(f.nRows)
		e.u(f.firstSeq)
		e.u(f.lastSeq)
		e.i(f.openWM)
		e.count(len(f.parts))
		for _, p := range f.parts {
			e.str(p.name)
			e.i(p.rows)
			e.i(p.off)
			e.i(p.len)
		}
		e.count(len(f.chunks))
		for _, c := range f.chunks {
			e.bytes(c)
		}
		e.reports(f.covered)
		e.reports(f.reported)
		e.count(len(f.resets))
		for _, r := range f.resets {
			e.i(r.PrevLastID)
			e.i(r.NewID)
			e.i(r.RecvNs)
		}
		e.i(f.bridge.snaps)
		e.i(f.bridge.bridged)
		e.i(f.bridge.firstBridgeNs)
		e.i(f.bridge.lastBridgeNs)
	}

	pk := make([]periodKey, 0, len(s.nextSupp))
	for k := range s.nextSupp {
		pk = append(pk, k)
	}
	slices.SortFunc(pk, func(a, b periodKey) int {
		return cmp.Or(cmpStream(a.streamKey, b.streamKey), cmp.Compare(a.period, b.period))
	})
	e.count(len(pk))
	for _, k := range pk {
		e.streamKey(k.streamKey)
		e.i(k.period)
		e.i(int64(s.nextSupp[k]))
	}

	e.count(len(s.sealing))
	for _, k := range s.sealing {
		e.fileKey(k)
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// decodeState parses a checkpoint. Chunks alias b.
func decodeState(b []byte) (*state, header, error) {
	var h header
	if len(b) < len(ckptMagic)+4 || string(b[:len(ckptMagic)]) != string(ckptMagic) {
		return nil, h, fmt.Errorf("%w: bad magic", ErrCorruptCheckpoint)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, h, fmt.Errorf("%w: checksum mismatch", ErrCorruptCheckpoint)
	}
	d := dec{b: body[len(ckptMagic):]}
	version := d.u()
	if version < 1 || version > ckptVersion {
		return nil, h, fmt.Errorf("%w: format version %d, this writer reads versions 1 to %d (a newer writer wrote it: run that version, or Finish with it, before downgrading)",
			ErrCheckpointVersion, version, ckptVersion)
	}
	h.shard = d.str()
	h.periodNs = d.i()
	s := newState()
	s.gen = d.u()
	s.lastSeq = d.u()
	s.watermark = d.i()

	const maxN = 1 << 30
	ns := d.count(maxN)
	for i := 0; i < ns && d.err == nil; i++ {
		k := d.streamKey()
		st := &stream{sym: k.sym}
		c := &st.chain
		c.Started = d.boolean()
		c.LastU = d.i()
		c.LastE = d.i()
		c.LastNs = d.i()
		ng := d.count(maxN)
		for j := 0; j < ng && d.err == nil; j++ {
			g := chain.Gap{After: d.i(), Resume: d.i(), AfterNs: d.i(), ResumeNs: d.i()}
			g.File = chain.FileRef{Period: d.i(), Supp: int32(d.i())}
			g.Reports = d.reports()
			c.Gaps = append(c.Gaps, g)
		}
		c.Pending = d.reports()
		sm := &st.sampled
		nr := d.count(maxN)
		var prev int64
		for j := 0; j < nr && d.err == nil; j++ {
			prev += d.i()
			sm.IDs = append(sm.IDs, prev)
		}
		if version == 1 {
			sm.Src = slices.Repeat([]uint8{chain.NoSource}, len(sm.IDs))
		} else {
			decodeSampled(&d, sm)
		}
		if version >= 3 {
			decodeBridge(&d, &st.bridge)
		}
		s.streams[k] = st
	}

	nf := d.count(maxN)
	var order []fileKey // decode order: sorted
	for i := 0; i < nf && d.err == nil; i++ {
		f := &file{key: d.fileKey()}
		order = append(order, f.key)
		f.nRows = d.i()
		f.firstSeq = d.u()
		f.lastSeq = d.u()
		f.openWM = d.i()
		np := d.count(maxN)
		for j := 0; j < np && d.err == nil; j++ {
			p := part{name: d.str(), rows: d.i()}
			if version >= 4 {
				p.off, p.len = d.i(), d.i()
			}
			f.parts = append(f.parts, p)
		}
		nc := d.count(maxN)
		for j := 0; j < nc && d.err == nil; j++ {
			c := d.bytes()
			f.chunks = append(f.chunks, c)
			f.chunkLen += int64(len(c))
		}
		f.covered = d.reports()
		f.reported = d.reports()
		nres := d.count(maxN)
		for j := 0; j < nres && d.err == nil; j++ {
			f.resets = append(f.resets, resetNote{PrevLastID: d.i(), NewID: d.i(), RecvNs: d.i()})
		}
		if version >= 3 {
			f.bridge = bridgeStats{snaps: d.i(), bridged: d.i(), firstBridgeNs: d.i(), lastBridgeNs: d.i()}
		}
		s.files[f.key] = f
	}

	npk := d.count(maxN)
	for i := 0; i < npk && d.err == nil; i++ {
		k := periodKey{streamKey: d.streamKey(), period: d.i()}
		s.nextSupp[k] = int32(d.i())
	}
	nseal := d.count(maxN)
	for i := 0; i < nseal && d.err == nil; i++ {
		s.sealing = append(s.sealing, d.fileKey())
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, h, d.err
	}
	if version == 1 {
		s.claimV1Reports(order)
	}
	return s, h, nil
}

// decodeSampled reads the version 2 fields of a stream without a chain.
func decodeSampled(d *dec, sm *chain.Sampled) {
	const maxN = 1 << 30
	sm.Src = append([]uint8(nil), d.bytes()...)
	if d.err == nil && len(sm.Src) != len(sm.IDs) {
		d.fail("id sources")
	}
	ns := d.count(chain.MaxSources)
	for j := 0; j < ns && d.err == nil; j++ {
		sm.Sources = append(sm.Sources, d.str())
	}
	for _, i := range sm.Src {
		if i != chain.NoSource && int(i) >= len(sm.Sources) {
			d.fail("id source index")
			break
		}
	}
	nc := d.count(maxN)
	for j := 0; j < nc && d.err == nil; j++ {
		cl := chain.Claim{Report: d.report()}
		cl.File = chain.FileRef{Period: d.i(), Supp: int32(d.i())}
		cl.Inside = d.boolean()
		cl.Conflict = d.boolean()
		nseen := d.count(chain.MaxSources)
		for k := 0; k < nseen && d.err == nil; k++ {
			cl.Seen = append(cl.Seen, chain.Seen{Source: d.str(), Below: d.boolean(), Above: d.boolean()})
		}
		sm.Claims = append(sm.Claims, cl)
	}
	np := d.count(maxN)
	for j := 0; j < np && d.err == nil; j++ {
		sm.Past = append(sm.Past, chain.Past{Source: d.str(), AfterID: d.i(), End: d.i()})
	}
}

// decodeBridge reads the version 3 bridge state of a stream.
func decodeBridge(d *dec, b *bridgeState) {
	b.Base = d.i()
	b.HasHead = d.boolean()
	b.HeadFile = chain.FileRef{Period: d.i(), Supp: int32(d.i())}
	b.HasBridged = d.boolean()
	b.MaxBridged = d.i()
	n := d.count(maxPendingSnaps + 1)
	for j := 0; j < n && d.err == nil; j++ {
		b.Pending = append(b.Pending, snapNote{ID: d.i(), RecvNs: d.i()})
	}
}

// claimV1Reports turns the gap reports a version 1 writer kept in its
// open files of unchained streams into claims, in file order, except in
// files of an interrupted seal.
func (s *state) claimV1Reports(order []fileKey) {
	sealing := map[fileKey]bool{}
	for _, k := range s.sealing {
		sealing[k] = true
	}
	for _, k := range order {
		f := s.files[k]
		if k.chained() || sealing[k] || len(f.reported) == 0 {
			continue
		}
		st := s.streams[k.streamKey]
		if st == nil {
			st = &stream{sym: k.sym}
			s.streams[k.streamKey] = st
		}
		rs := f.reported
		f.reported = nil
		for _, r := range rs {
			if old := st.sampled.Report(r, k.ref()); old != nil {
				// Only past MaxClaims: decided at once, as a gap
				// (version 1 ids carry no evidence).
				if of := s.files[fileKey{streamKey: k.streamKey, period: old.File.Period, supp: old.File.Supp}]; of != nil {
					of.reported = append(of.reported, old.Report)
				}
			}
		}
	}
}
