// Package importer converts recordings (*.rec.gz) into depthcap files: it
// publishes the envelopes ingest would have published for each recorded
// frame, with the recorded receive times, to a private JetStream server,
// runs the writer over them, seals every period, and moves the sealed files
// into the target DATA_DIR.
package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/frames"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/writer"
)

// Options configure an import.
type Options struct {
	Files   []string
	DataDir string        // where the sealed files go
	Period  time.Duration // WRITER_PERIOD
	Source  string        // envelope source id
	// Writer is the writer configuration to use (period, encoding...);
	// DataDir, NATS and shard are set by the importer.
	Writer writer.Config
}

// Stats reports what an import did.
type Stats struct {
	Frames    int // lines read
	Depth     int // depth frames published
	Skipped   int // frames of streams depthcap does not capture
	Malformed int // frames that failed to build (reported, not published)
	Files     []string
}

// Run imports the recordings. The work happens in a temporary directory
// (its own JetStream store and writer state), so an import never touches a
// running pipeline's stream or checkpoint; only sealed files are moved into
// opts.DataDir, and an existing file is never overwritten.
func Run(ctx context.Context, opts Options, env svc.Env) (Stats, error) {
	var st Stats
	if len(opts.Files) == 0 {
		return st, fmt.Errorf("import: %w: no recordings given", svc.ErrConfig)
	}
	for _, f := range opts.Files {
		if _, err := recording.MarketFromFileName(f); err != nil {
			return st, fmt.Errorf("import %s: %w", f, err)
		}
		if _, err := os.Stat(f); err != nil {
			return st, fmt.Errorf("import: %w", err)
		}
	}
	// A dot-directory inside DATA_DIR: same file system (renames are
	// atomic), and ignored by the uploader and by readers of the layout.
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return st, fmt.Errorf("import: DATA_DIR: %w", err)
	}
	work, err := os.MkdirTemp(opts.DataDir, ".import-")
	if err != nil {
		return st, fmt.Errorf("import: work dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()

	log := env.Log
	// A private registry: each import runs a writer of its own.
	env.Registry = svc.NewRegistry()
	bcfg := opts.Writer.Config // bus.Config
	bcfg.URL = ""
	bcfg.EmbeddedDir = filepath.Join(work, "nats")
	bcfg.EmbeddedListen = "none"
	bcfg.Provision = true
	bcfg.MaxAge = 100 * 365 * 24 * time.Hour // recorded times are in the past
	conn, err := bus.Connect(ctx, bcfg, work, "depthcap-import", log)
	if err != nil {
		return st, err
	}
	defer conn.Close()
	if err := bus.EnsureStreams(ctx, conn.JS, bcfg.StreamConfig); err != nil {
		return st, err
	}
	pub, err := bus.NewPublisher(conn.NC, bus.PublisherConfig{MaxBytes: 256 << 20, MaxPending: 4096}, nil, log)
	if err != nil {
		return st, err
	}
	if err := publishMerged(ctx, opts.Files, opts.Source, pub, &st, log); err != nil {
		_ = pub.Close(context.Background())
		return st, err
	}
	if err := pub.Close(ctx); err != nil {
		return st, fmt.Errorf("import: publish: %w", err)
	}

	wcfg := opts.Writer
	wcfg.Config = bcfg
	wcfg.DataDir = filepath.Join(work, "data")
	wcfg.Shard = "0/1"
	if opts.Period > 0 {
		wcfg.Period = opts.Period
	}
	w, err := writer.New(wcfg, conn, env)
	if err != nil {
		return st, fmt.Errorf("import: writer: %w", err)
	}
	if err := w.Finish(ctx); err != nil {
		return st, fmt.Errorf("import: write: %w", err)
	}
	st.Files, err = moveSealed(wcfg.DataDir, opts.DataDir)
	return st, err
}

// source is one recording being merged.
type source struct {
	path string
	r    *recording.Reader
	b    *frames.Builder
	next recording.Frame
}

// publishMerged publishes the frames of all files in receive-time order
// (each file is in that order already; ties keep the file order), as a
// collector receiving all of them live would have published them.
func publishMerged(ctx context.Context, files []string, sourceID string, pub *bus.Publisher, st *Stats, log *zap.Logger) error {
	var srcs []*source
	defer func() {
		for _, s := range srcs {
			_ = s.r.Close()
		}
	}()
	for _, f := range files {
		m, _ := recording.MarketFromFileName(f)
		r, err := recording.Open(f)
		if err != nil {
			return err
		}
		s := &source{path: f, r: r, b: frames.NewBuilder(m, sourceID)}
		srcs = append(srcs, s)
	}
	advance := func(s *source) (bool, error) {
		fr, err := s.r.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("import %s: %w", s.path, err)
		}
		fr.JSON = append(s.next.JSON[:0], fr.JSON...) // the reader reuses its buffer
		s.next = fr
		return true, nil
	}
	live := srcs[:0:0]
	for _, s := range srcs {
		ok, err := advance(s)
		if err != nil {
			return err
		}
		if ok {
			live = append(live, s)
		}
	}
	var h binance.Header
	var env envelope.Envelope
	for len(live) > 0 {
		// A linear scan: a handful of files at most.
		i := 0
		for j := 1; j < len(live); j++ {
			if live[j].next.RecvNs < live[i].next.RecvNs {
				i = j
			}
		}
		s := live[i]
		fr := s.next
		st.Frames++
		switch err := s.b.Build(fr.JSON, fr.RecvNs, &h, &env); {
		case errors.Is(err, binance.ErrNotDepth), errors.Is(err, frames.ErrControl):
			st.Skipped++
		case err != nil:
			st.Malformed++
			log.Warn("import: frame skipped", zap.String("file", s.path), zap.Int("line", fr.Line), zap.Error(err))
		default:
			if err := publish(ctx, pub, &env); err != nil {
				return fmt.Errorf("import %s line %d: %w", s.path, fr.Line, err)
			}
			st.Depth++
		}
		ok, err := advance(s)
		if err != nil {
			return err
		}
		if !ok {
			live = append(live[:i], live[i+1:]...)
		}
	}
	return nil
}

// publish enqueues env, waiting for room: an import may block.
func publish(ctx context.Context, pub *bus.Publisher, env *envelope.Envelope) error {
	for {
		msg := pub.NewMsg()
		msg.Buf = env.AppendMarshal(msg.Buf[:0])
		n := len(msg.Buf)
		var err error
		if msg.Buf, err = env.AppendMsgID(msg.Buf); err != nil {
			pub.Recycle(msg)
			return err
		}
		msg.Set(md.Subject(env.Market, env.Kind, env.Symbol), n)
		err = pub.Enqueue(msg)
		if err == nil {
			return nil
		}
		if !errors.Is(err, bus.ErrFull) {
			return err
		}
		if err := pub.Flush(ctx); err != nil {
			return err
		}
	}
}

// moveSealed moves every sealed file (not the writer's dot-directories)
// from src into dst, keeping relative paths, refuses to overwrite, and
// fsyncs the directories it changed.
func moveSealed(src, dst string) ([]string, error) {
	var moved []string
	dirs := map[string]bool{}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if rel != "." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if _, err := os.Stat(target); err == nil {
			return fmt.Errorf("import: %s exists already; not overwriting a sealed file", target)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.Rename(path, target); err != nil {
			return fmt.Errorf("import: move %s: %w", rel, err)
		}
		moved = append(moved, filepath.ToSlash(rel))
		dirs[filepath.Dir(target)] = true
		return nil
	})
	if err != nil {
		return moved, err
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return moved, err
		}
	}
	return moved, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("import: sync %s: %w", dir, err)
	}
	defer func() { _ = f.Close() }()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("import: sync %s: %w", dir, err)
	}
	return nil
}
