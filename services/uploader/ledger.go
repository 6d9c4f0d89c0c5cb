package uploader

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The ledger is one small JSON file per sealed file, under
// DATA_DIR/.uploader:
//
//	verified/<rel>.json   the object was uploaded (or found identical) and verified
//	conflicts/<rel>.json  the file is parked for an operator (conflict or local mismatch)
//
// A record is written to a temp file, fsynced, renamed into place and its
// directory fsynced, so after a crash a record is either absent or whole.
// One file per record (rather than an append-only log) needs no
// compaction: retention removes the record together with the file, a scan
// needs one stat per file, and an operator resolves a conflict by
// deleting one file.
type ledger struct {
	root string // DATA_DIR/.uploader
}

// LedgerDir is the ledger's directory under DATA_DIR.
const LedgerDir = ".uploader"

const (
	verifiedDir = "verified"
	conflictDir = "conflicts"
)

// Verification methods recorded in a record.
const (
	verifiedChecksum = "checksum" // the store's full-object checksum equals the local one
	verifiedMetadata = "metadata" // no checksum from the store: size and x-amz-meta-sha256 match
	verifiedContent  = "content"  // neither: the object was read back and its SHA-256 matches
)

// record is a ledger entry.
type record struct {
	Path     string    `json:"path"`     // relative to DATA_DIR
	Endpoint string    `json:"endpoint"` // S3_ENDPOINT host
	Bucket   string    `json:"bucket"`
	Key      string    `json:"key"`
	Size     int64     `json:"size"`
	ModTime  time.Time `json:"mtime"`  // of the local file when verified
	SHA256   string    `json:"sha256"` // hex
	// ChecksumAlgo and Checksum are the full-object checksum (base64) of the
	// local file as sent with the upload.
	ChecksumAlgo string    `json:"checksum_algo"`
	Checksum     string    `json:"checksum"`
	Method       string    `json:"method,omitempty"` // verified: how
	ETag         string    `json:"etag,omitempty"`
	Reason       string    `json:"reason,omitempty"` // conflicts: why
	Remote       *remote   `json:"remote,omitempty"` // conflicts: what the store holds
	At           time.Time `json:"at"`
}

func (l *ledger) path(dir, rel string) string {
	return filepath.Join(l.root, dir, filepath.FromSlash(rel)+".json")
}

// get reads a record; it returns nil, nil when there is none.
func (l *ledger) get(dir, rel string) (*record, error) {
	b, err := os.ReadFile(l.path(dir, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger %s/%s: %w", dir, rel, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		// A torn record cannot exist (rename is atomic); a corrupt one is
		// treated as absent, which only costs a re-verification.
		return nil, nil
	}
	return &r, nil
}

// has reports whether a record exists, without reading it.
func (l *ledger) has(dir, rel string) bool {
	_, err := os.Stat(l.path(dir, rel))
	return err == nil
}

// put writes a record durably.
func (l *ledger) put(dir string, r *record) error {
	p := l.path(dir, r.Path)
	d := filepath.Dir(p)
	_, statErr := os.Stat(d)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("write ledger %s/%s: %w", dir, r.Path, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("write ledger %s/%s: %w", dir, r.Path, err)
	}
	f, err := os.CreateTemp(d, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write ledger %s/%s: %w", dir, r.Path, err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write ledger %s/%s: %w", dir, r.Path, err)
	}
	// Make the rename durable, and the new directories when MkdirAll
	// created some.
	stop := d
	if statErr != nil {
		stop = l.root
	}
	if err := syncDirs(d, stop); err != nil {
		return fmt.Errorf("write ledger %s/%s: %w", dir, r.Path, err)
	}
	return nil
}

// remove deletes a record (absent is fine) and syncs its directory.
func (l *ledger) remove(dir, rel string) error {
	p := l.path(dir, rel)
	err := os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove ledger %s/%s: %w", dir, rel, err)
	}
	return syncDir(filepath.Dir(p))
}

// syncDirs fsyncs dir and its parents up to and including stop.
func syncDirs(dir, stop string) error {
	for {
		if err := syncDir(dir); err != nil {
			return err
		}
		if dir == stop || len(dir) <= len(stop) {
			return nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

// syncDir fsyncs a directory so that renames and removals in it survive a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
