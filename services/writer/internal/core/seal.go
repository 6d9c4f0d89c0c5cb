package core

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/depthcap/depthcap/pkg/envelope"
	depthcapv1 "github.com/depthcap/depthcap/pkg/gen/depthcap/v1"
	"github.com/depthcap/depthcap/pkg/manifest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/chain"
	"github.com/depthcap/depthcap/services/writer/internal/period"
	"github.com/depthcap/depthcap/services/writer/internal/pq"
)

// sealDue seals every open file whose deadline the watermark has reached.
func (c *Core) sealDue(ctx context.Context) error {
	var due []fileKey
	for k, f := range c.st.files {
		if c.deadline(f) <= c.st.watermark {
			due = append(due, k)
		}
	}
	if len(due) == 0 {
		c.recompute()
		return nil
	}
	slices.SortFunc(due, cmpFile)
	return c.seal(ctx, due)
}

// SealAll seals every open file regardless of the watermark (Finish). The
// watermark moves past the sealed periods, so that later events of those
// periods go to supplements and a sealed file is never rewritten.
func (c *Core) SealAll(ctx context.Context) error {
	for _, f := range c.st.files {
		c.st.watermark = max(c.st.watermark, c.deadline(f))
	}
	return c.sealDue(ctx)
}

// seal runs the seal protocol for keys: checkpoint with the seal intent,
// then write, publish and forget each file (runSeal).
func (c *Core) seal(ctx context.Context, keys []fileKey) error {
	for _, k := range keys {
		c.resolveClaims(k)
		c.resolveBridges(k)
	}
	c.st.sealing = keys
	if err := c.Checkpoint(TriggerSeal); err != nil {
		return err
	}
	return c.runSeal(ctx)
}

// runSeal executes the seal recorded in the state. Every step is
// idempotent: the files are rewritten with the same bytes, the manifest
// too, and FileSealed carries Nats-Msg-Id = path; a part file is deleted
// only after the checkpoint that forgets the last open file with a run in
// it (part files are shared by the open files of a period).
func (c *Core) runSeal(ctx context.Context) error {
	start := time.Now()
	parts := map[string]bool{}
	for _, k := range c.st.sealing {
		f := c.st.files[k]
		if f == nil {
			continue
		}
		if f.nRows == 0 {
			if len(f.covered)+len(f.reported) > 0 {
				c.log.Info("gap reports dropped: no rows in their file", zap.String("symbol", k.sym),
					zap.Int("covered", len(f.covered)), zap.Int("reported", len(f.reported)))
			}
		} else if err := c.sealFile(ctx, f); err != nil {
			return err
		}
		for _, p := range f.parts {
			parts[p.name] = true
		}
		delete(c.st.files, k)
	}
	c.st.sealing = nil
	if err := c.Checkpoint(TriggerSeal); err != nil {
		return err
	}
	used := c.partsInUse()
	for name := range parts {
		if used[name] {
			continue
		}
		if err := os.Remove(filepath.Join(c.partDir, name)); err != nil && !os.IsNotExist(err) {
			c.log.Warn("remove sealed part", zap.String("part", name), zap.Error(err))
		}
	}
	c.m.SealDuration.Observe(time.Since(start).Seconds())
	c.recompute()
	return nil
}

// partsInUse returns the names of the part files the open files refer to.
func (c *Core) partsInUse() map[string]bool {
	used := map[string]bool{}
	for _, f := range c.st.files {
		for _, p := range f.parts {
			used[p.name] = true
		}
	}
	return used
}

// relPath is the file's path relative to DATA_DIR, with '/' separators.
func (c *Core) relPath(k fileKey) string {
	return path.Join(k.m.String(), k.k.Dir(), k.sym, period.FileName(period.Index(k.period), c.cfg.Period, int(k.supp)))
}

type hashWriter struct {
	w    io.Writer
	h    hash.Hash
	size int64
}

func (h *hashWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.h.Write(p[:n])
	h.size += int64(n)
	return n, err
}

func (c *Core) sealFile(ctx context.Context, f *file) error {
	k := f.key
	rel := c.relPath(k)
	abs := filepath.Join(c.cfg.DataDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return fmt.Errorf("seal mkdir: %w", err)
	}
	removeTemps(filepath.Dir(abs))
	man, gapSpans := c.manifest(f, rel)
	p := period.Index(k.period)
	meta := pq.Meta{
		Producer: c.cfg.Producer, Market: k.m.String(), Kind: k.k.String(), Symbol: k.sym,
		PeriodStart:   time.Unix(0, p.Start(c.cfg.Period)).UTC().Format(time.RFC3339),
		PeriodSeconds: int64(c.cfg.Period / time.Second), Supplement: int(k.supp),
		FirstSeq: f.firstSeq, LastSeq: f.lastSeq, GapCount: man.GapCount,
	}
	var hw *hashWriter
	var written int64
	var firstID, lastID int64
	var times pq.TimeRange
	if c.sealBuf == nil {
		c.sealBuf = bufio.NewWriterSize(nil, 1<<20)
	}
	err := writeAtomic(abs, c.sealBuf, func(w io.Writer) error {
		hw = &hashWriter{w: w, h: sha256.New()}
		fw, err := pq.NewFileWriter(hw, k.layout(), k.sym, c.cfg.Parquet)
		if err != nil {
			return err
		}
		if err := c.feed(f, fw); err != nil {
			fw.Abort()
			return err
		}
		written = fw.Rows()
		firstID, lastID = fw.UpdateIDRange()
		times = fw.Times()
		if written != f.nRows {
			fw.Abort()
			return fmt.Errorf("seal %s: %d rows in parts and chunks, %d counted", rel, written, f.nRows)
		}
		return fw.Close(meta)
	})
	if err != nil {
		return fmt.Errorf("seal %s: %w", rel, err)
	}
	sum := hex.EncodeToString(hw.h.Sum(nil))

	man.FirstUpdateID, man.LastUpdateID = firstID, lastID
	man.Quality = c.quality(f, man, gapSpans, times)
	mb, err := manifest.Marshal(man)
	if err != nil {
		return fmt.Errorf("seal manifest %s: %w", rel, err)
	}
	mrel := path.Join(path.Dir(rel), period.ManifestName(path.Base(rel)))
	if err := writeFileAtomic(filepath.Join(c.cfg.DataDir, filepath.FromSlash(mrel)), mb); err != nil {
		return fmt.Errorf("seal manifest: %w", err)
	}
	msum := sha256.Sum256(mb)

	ev := &depthcapv1.FileSealed{
		Path: rel, Size: hw.size, Sha256: sum, Rows: written,
		Market: depthcapv1.Market(k.m), Kind: depthcapv1.Kind(k.k), Symbol: k.sym,
		PeriodStartNs: p.Start(c.cfg.Period), PeriodNs: int64(c.cfg.Period),
		FirstStreamSeq: f.firstSeq, LastStreamSeq: f.lastSeq,
		FirstUpdateId: firstID, LastUpdateId: lastID,
		GapCount: int64(man.GapCount), Supplement: k.supp,
		Sidecars: []*depthcapv1.Sidecar{{Path: mrel, Size: int64(len(mb)), Sha256: hex.EncodeToString(msum[:])}},
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		return fmt.Errorf("seal marshal FileSealed: %w", err)
	}
	if err := c.sink.Sealed(ctx, md.FilesSubject(k.m, k.k), rel, data); err != nil {
		return fmt.Errorf("seal publish %s: %w", rel, err)
	}
	c.m.Sealed.WithLabelValues(k.m.String(), k.k.String()).Inc()
	c.m.SealedBytes.Add(float64(hw.size))
	c.m.Gaps.WithLabelValues(k.m.String(), k.k.String()).Add(float64(man.GapCount))
	c.log.Info("file sealed", zap.String("path", rel), zap.Int64("rows", written), zap.Int64("bytes", hw.size), zap.Int("gaps", man.GapCount))
	return nil
}

// feed writes the file's rows in stream order: parts, then the chunks of
// the checkpoint, then raw rows (none after a checkpoint).
func (c *Core) feed(f *file, fw *pq.FileWriter) error {
	for _, p := range f.parts {
		if err := c.readPart(p, fw.WriteChunk); err != nil {
			return err
		}
	}
	for _, ch := range f.chunks {
		if err := fw.WriteChunk(ch); err != nil {
			return err
		}
	}
	return fw.WriteRows(&f.rows, 0, f.rows.N)
}

func nsTime(ns int64) string { return manifest.FormatTime(ns) }

func reportEntries(rs []chain.Report) []manifest.ReportEntry {
	out := make([]manifest.ReportEntry, 0, len(rs))
	for _, r := range rs {
		out = append(out, manifest.ReportEntry{Source: r.Source, Reason: envelope.GapReason(r.Reason).String(), AfterID: r.AfterID, ResumePrevID: r.ResumePrevID,
			StartTime: nsTime(r.StartNs), EndTime: nsTime(r.EndNs), FramesLost: r.FramesLost, Detail: r.Detail})
	}
	return out
}

// manifest builds f's manifest from the current state: the stream's open
// gaps whose resume row is in this file, the collector reports found
// covered, and for unchained kinds the collector reports themselves. It
// also returns each gap's receive-time interval (ns, 0 if unknown), for
// the quality summary.
func (c *Core) manifest(f *file, rel string) (*manifest.Manifest, [][2]int64) {
	k := f.key
	p := period.Index(k.period)
	var spans [][2]int64
	m := &manifest.Manifest{
		SchemaVersion: manifest.Version, File: rel, Market: k.m.String(), Kind: k.k.String(), Symbol: k.sym,
		PeriodStart:   time.Unix(0, p.Start(c.cfg.Period)).UTC().Format(time.RFC3339),
		PeriodSeconds: int64(c.cfg.Period / time.Second), Supplement: int(k.supp), Rows: f.nRows,
		FirstStreamSeq: f.firstSeq, LastStreamSeq: f.lastSeq, SequenceChecked: k.chained(),
		Gaps: []manifest.GapEntry{}, Covered: reportEntries(f.covered), Resets: []manifest.ResetEntry{},
	}
	if st := c.st.streams[k.streamKey]; st != nil && k.chained() {
		for _, g := range st.chain.Gaps {
			if g.File != k.ref() {
				continue
			}
			spans = append(spans, [2]int64{g.AfterNs, g.ResumeNs})
			m.Gaps = append(m.Gaps, manifest.GapEntry{AfterID: g.After, ResumePrevID: g.Resume, AfterReceivedTime: nsTime(g.AfterNs),
				ResumeReceivedTime: nsTime(g.ResumeNs), DetectedBy: "writer", Reports: reportEntries(g.Reports)})
		}
	}
	for _, r := range f.reported {
		spans = append(spans, [2]int64{r.StartNs, r.EndNs})
		m.Gaps = append(m.Gaps, manifest.GapEntry{AfterID: r.AfterID, ResumePrevID: r.ResumePrevID, AfterReceivedTime: nsTime(r.StartNs),
			ResumeReceivedTime: nsTime(r.EndNs), DetectedBy: "collector", Reports: reportEntries([]chain.Report{r})})
	}
	for _, r := range f.resets {
		m.Resets = append(m.Resets, manifest.ResetEntry{PreviousLastID: r.PrevLastID, NewID: r.NewID, ReceivedTime: nsTime(r.RecvNs)})
	}
	m.GapCount = len(m.Gaps)
	return m, spans
}
