package dataset

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Object is an open file: Parquet needs random access.
type Object interface {
	io.ReaderAt
	io.Seeker
	io.Closer
}

// Store lists and opens files by their path relative to DATA_DIR (slash
// separated): a local directory or a bucket.
type Store interface {
	// List returns the base names of the files directly in dir that start
	// with prefix, sorted. A missing dir is an error wrapping
	// fs.ErrNotExist.
	List(ctx context.Context, dir, prefix string) ([]string, error)
	// Open opens a file for reading.
	Open(ctx context.Context, rel string) (Object, error)
	// ReadFile returns a small file's contents (a manifest).
	ReadFile(ctx context.Context, rel string) ([]byte, error)
	// String names the store for reports: the directory or s3://bucket/prefix.
	String() string
}

// Local is a Store over a local DATA_DIR.
type Local string

// List implements Store.
func (d Local) List(_ context.Context, dir, prefix string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(string(d), filepath.FromSlash(dir)))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Open implements Store.
func (d Local) Open(_ context.Context, rel string) (Object, error) {
	f, err := os.Open(filepath.Join(string(d), filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", rel, err)
	}
	return f, nil
}

// ReadFile implements Store.
func (d Local) ReadFile(_ context.Context, rel string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(string(d), filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	return b, nil
}

func (d Local) String() string { return string(d) }
