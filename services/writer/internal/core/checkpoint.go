package core

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/services/writer/internal/rows"
)

// Checkpoint triggers (label values).
const (
	TriggerInterval = "interval"
	TriggerMemory   = "memory"
	TriggerSeal     = "seal"
	TriggerShutdown = "shutdown"
	// TriggerConsumer: before the writer creates its consumer again (a
	// NATS restart lost it).
	TriggerConsumer = "consumer"
)

const ckptName = "checkpoint"

var partMagic = []byte("DCWPART1")

func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

func (c *Core) header() header {
	return header{shard: c.cfg.Shard, periodNs: int64(c.cfg.Period)}
}

// ErrConfigChanged is returned by Open when the checkpoint was written
// with another WRITER_PERIOD or shard.
var ErrConfigChanged = errors.New("checkpoint written with another configuration")

// load reads the checkpoint (if any) and removes files no checkpoint
// refers to: part files of an interrupted checkpoint and temp files.
func (c *Core) load() error {
	path := filepath.Join(c.dir, ckptName)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.st = newState()
	case err != nil:
		return fmt.Errorf("read checkpoint: %w", err)
	default:
		st, h, err := decodeState(b)
		if err != nil {
			return fmt.Errorf("checkpoint %s: %w", path, err)
		}
		if h != c.header() {
			return fmt.Errorf("%w: %s has shard %s and WRITER_PERIOD %s, configured shard %s and WRITER_PERIOD %s (seal or move the old state first)",
				ErrConfigChanged, path, h.shard, time.Duration(h.periodNs), c.cfg.Shard, c.cfg.Period)
		}
		c.st = st
		c.m.CkptBytes.Set(float64(len(b)))
	}
	removeTemps(c.dir)
	used := c.partsInUse()
	entries, err := os.ReadDir(c.partDir)
	if err != nil {
		return fmt.Errorf("list parts: %w", err)
	}
	removed := 0
	for _, e := range entries {
		if !used[e.Name()] {
			if err := os.Remove(filepath.Join(c.partDir, e.Name())); err != nil {
				return fmt.Errorf("remove orphan part: %w", err)
			}
			removed++
		}
	}
	for name := range used {
		if _, err := os.Stat(filepath.Join(c.partDir, name)); err != nil {
			return fmt.Errorf("checkpoint refers to part %s: %w", name, err)
		}
	}
	c.log.Info("checkpoint loaded", zap.Uint64("stream_seq", c.st.lastSeq), zap.Uint64("generation", c.st.gen),
		zap.Int("open_files", len(c.st.files)), zap.Int("streams", len(c.st.streams)), zap.Int("orphans_removed", removed))
	return nil
}

// Checkpoint makes every processed message durable: raw rows are encoded
// into chunks, large chunk runs go to part files (fsynced), the state is
// written atomically, and then the sink acks through the last processed
// message.
func (c *Core) Checkpoint(trigger string) error {
	start := time.Now()
	// 1. Decide which files spill to part files, from their encoded
	// chunks plus their raw rows' encoded size (an upper bound, before
	// encoding): files past PartBytes, then the largest until the inline
	// total fits InlineLimit. A spilled file's rows are encoded straight
	// into its part file (writeParts), never copied into memory: copying
	// every file's rows into chunks first made a market checkpoint hold
	// the rows and their chunks at once (~150 MB more heap at the peak,
	// the writer's GC then fighting its memory limit).
	type cand struct {
		k    fileKey
		size int64
	}
	var cands []cand
	for k, f := range c.st.files {
		size := f.chunkLen
		if f.rows.N > 0 {
			size += int64(f.rows.ChunkSize())
		}
		if size > 0 {
			cands = append(cands, cand{k, size})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(cmp.Compare(b.size, a.size), cmpFile(a.k, b.k))
	})
	var inline int64
	for _, cd := range cands {
		inline += cd.size
	}
	spilled := make(map[*file]bool)
	var spills []spill
	for _, cd := range cands {
		if cd.size < c.cfg.PartBytes && inline <= c.cfg.InlineLimit {
			continue
		}
		f := c.st.files[cd.k]
		spills = append(spills, spill{f: f})
		spilled[f] = true
		inline -= cd.size
	}
	// 2. Encode the other files' raw rows into inline chunks. The row
	// buffers of files that received rows are kept (emptied) up to a
	// quarter of the memory budget, so that a steady stream appends
	// without allocating; idle files' are freed.
	retain := c.cfg.MemoryLimit / 4
	release := func(f *file) {
		if b := f.rows.Bytes(); f.rows.N > 0 && b <= retain {
			retain -= b
			f.rows.Reset()
		} else if b > 0 {
			f.rows.Free()
		}
	}
	for _, f := range c.st.files {
		if spilled[f] {
			continue
		}
		if f.rows.N > 0 {
			// Encode into the scratch buffer, keep an exact-size copy.
			c.chunkBuf = f.rows.AppendChunk(c.chunkBuf[:0])
			chunk := append([]byte(nil), c.chunkBuf...)
			f.chunks = append(f.chunks, chunk)
			f.chunkLen += int64(len(chunk))
		}
		release(f)
	}
	// 3. Spill: each period's spilled files to one part file, fsynced.
	gen := c.st.gen + 1
	if len(spills) > 0 {
		if err := c.writeParts(gen, spills); err != nil {
			return err
		}
		for _, s := range spills {
			s.f.parts = append(s.f.parts, s.part)
			s.f.chunks, s.f.chunkLen = nil, 0
			release(s.f)
			c.m.Parts.Inc()
			c.m.PartBytes.Add(float64(s.part.len))
		}
		if err := syncDir(c.partDir); err != nil {
			return err
		}
	}
	// 4. The state, atomically.
	c.st.gen = gen
	var size int64
	err := writeAtomic(filepath.Join(c.dir, ckptName), nil, func(w io.Writer) error {
		var err error
		size, c.ckptBuf, err = c.st.encodeTo(c.header(), w, c.ckptBuf)
		return err
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	c.recompute()
	c.m.CkptBytes.Set(float64(size))
	c.m.Checkpoints.WithLabelValues(trigger).Inc()
	c.m.CkptDuration.Observe(time.Since(start).Seconds())
	// 5. Ack.
	c.sink.Durable(c.st.lastSeq)
	return nil
}

// spill is an open file whose chunks a checkpoint moves to a part file.
type spill struct {
	f    *file
	part part // where writeParts put its chunks
}

// writeParts writes the spills to part files, one per period, named
// <generation>-<i>.part, and fsyncs each. Writing one file per spilled
// open file made a market-wide checkpoint (2,219 spills) take 12 s in
// make bench's market scenario, the consumer stalled meanwhile: a file
// creation and an fsync each (BenchmarkCheckpointSpill). Grouping by
// period lets a period's part files go when it is sealed. On error the
// checkpoint fails and nothing in the state changed: part files written
// so far are orphans, removed at the next start.
func (c *Core) writeParts(gen uint64, spills []spill) error {
	slices.SortStableFunc(spills, func(a, b spill) int { return cmp.Compare(a.f.key.period, b.f.key.period) })
	for i, n := 0, 0; i < len(spills); n++ {
		j := i + 1
		for j < len(spills) && spills[j].f.key.period == spills[i].f.key.period {
			j++
		}
		name := strconv.FormatUint(gen, 10) + "-" + strconv.Itoa(n) + ".part"
		if err := c.writePart(name, spills[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// writePart writes spills to one part file, the magic then each spill's
// chunks and its raw rows as one more chunk (uvarint length, bytes), sets
// their parts and fsyncs the file. It leaves the files' rows and chunks
// as they are: the caller drops them once every part is written.
func (c *Core) writePart(name string, spills []spill) error {
	path := filepath.Join(c.partDir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create part: %w", err)
	}
	if c.partW == nil {
		c.partW = bufio.NewWriterSize(f, 1<<20)
	} else {
		c.partW.Reset(f)
	}
	w := c.partW
	var off int64
	write := func(b []byte) {
		if err == nil {
			var k int
			k, err = w.Write(b)
			off += int64(k)
		}
	}
	write(partMagic)
	var hdr [binary.MaxVarintLen64]byte
	for i := range spills {
		s := &spills[i]
		start := off
		var n int64
		for _, ch := range s.f.chunks {
			write(hdr[:binary.PutUvarint(hdr[:], uint64(len(ch)))])
			write(ch)
			k, cerr := rows.ChunkRows(ch)
			if err == nil {
				err = cerr
			}
			n += int64(k)
		}
		if r := &s.f.rows; r.N > 0 {
			// The raw rows, encoded here rather than kept as a chunk.
			c.chunkBuf = r.AppendChunk(c.chunkBuf[:0])
			write(hdr[:binary.PutUvarint(hdr[:], uint64(len(c.chunkBuf)))])
			write(c.chunkBuf)
			n += int64(r.N)
		}
		s.part = part{name: name, rows: n, off: start, len: off - start}
	}
	if err == nil {
		err = w.Flush()
	}
	w.Reset(nil)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write part %s: %w", path, err)
	}
	return nil
}

// readPart calls fn with each chunk of p.
func (c *Core) readPart(p part, fn func(chunk []byte) error) error {
	path := filepath.Join(c.partDir, p.name)
	var b []byte
	var err error
	if p.len == 0 { // a version 3 part file: one run, the whole file
		b, err = os.ReadFile(path)
		if err == nil && (len(b) < len(partMagic) || string(b[:len(partMagic)]) != string(partMagic)) {
			return fmt.Errorf("part %s: %w: bad magic", path, rows.ErrCorrupt)
		}
		b = b[min(len(b), len(partMagic)):]
	} else {
		b, err = readRange(path, p.off, p.len)
	}
	if err != nil {
		return fmt.Errorf("read part: %w", err)
	}
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return fmt.Errorf("part %s: %w: chunk length", path, rows.ErrCorrupt)
		}
		if err := fn(b[k : k+int(n)]); err != nil {
			return err
		}
		b = b[k+int(n):]
	}
	return nil
}

// readRange reads bytes [off, off+n) of the file at path.
func readRange(path string, off, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("%s [%d, %d): %w", path, off, off+n, err)
	}
	return b, nil
}

// writeFileAtomic writes data to a temp file in path's directory, fsyncs
// it, renames it over path and fsyncs the directory.
func writeFileAtomic(path string, data []byte) error {
	return writeAtomic(path, nil, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic is writeFileAtomic with a streaming body, buffered through
// bw when it is not nil (reset onto the temp file).
func writeAtomic(path string, bw *bufio.Writer, body func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp for %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			// Cleanup after a failure that is already returned.
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	var w io.Writer = noClose{tmp}
	if bw != nil {
		bw.Reset(tmp)
		w = bw
	}
	if err := body(w); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if bw != nil {
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		bw.Reset(nil)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	ok = true
	return syncDir(dir)
}

// noClose hides the file's Close from writers that close an io.Closer
// sink (the Parquet writer does).
type noClose struct{ w io.Writer }

func (n noClose) Write(p []byte) (int, error) { return n.w.Write(p) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// removeTemps deletes leftover temp files (".<name>.tmp-*") under dir.
func removeTemps(dir string) {
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), ".") && strings.Contains(d.Name(), ".tmp-") {
			_ = os.Remove(path)
		}
		return nil
	})
}
