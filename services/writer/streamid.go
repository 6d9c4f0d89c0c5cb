package writer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStreamMismatch means the checkpoint belongs to another MARKETDATA
// stream than the one the writer is connected to (the stream was deleted
// and recreated, or the writer points at another server): its stream
// sequences do not apply, and resuming would silently skip or repeat
// messages. The writer refuses to start.
var ErrStreamMismatch = errors.New("checkpoint belongs to another MARKETDATA stream")

// streamIdentity is what the writer remembers of the stream its
// checkpoint refers to: DATA_DIR/.writer/<shard>/stream.json.
type streamIdentity struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// checkStream compares the stream with the identity recorded next to the
// checkpoint, records it on first use, and refuses a stream whose last
// sequence is below the checkpoint's.
func checkStream(dir string, info *jetstream.StreamInfo, ckptSeq uint64) error {
	path := filepath.Join(dir, "stream.json")
	want := streamIdentity{Name: info.Config.Name, Created: info.Created.UTC()}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// First start (or a checkpoint from before this file existed).
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	default:
		var got streamIdentity
		if err := json.Unmarshal(b, &got); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if got.Name != want.Name || !got.Created.Equal(want.Created) {
			return fmt.Errorf("%w: the checkpoint in %s is for stream %s created %s, the server has %s created %s; "+
				"to start over from the beginning of the new stream, move %s away (sealed files are not affected)",
				ErrStreamMismatch, dir, got.Name, got.Created.Format(time.RFC3339Nano), want.Name, want.Created.Format(time.RFC3339Nano), dir)
		}
	}
	if ckptSeq > info.State.LastSeq {
		return fmt.Errorf("%w: the checkpoint in %s is at stream sequence %d but %s ends at %d; "+
			"to start over, move %s away (sealed files are not affected)", ErrStreamMismatch, dir, ckptSeq, want.Name, info.State.LastSeq, dir)
	}
	if err == nil {
		return nil
	}
	b, _ = json.MarshalIndent(want, "", "  ")
	return writeFileSync(path, b)
}

// writeFileSync writes path atomically: temp file, fsync, rename, dir fsync.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}
