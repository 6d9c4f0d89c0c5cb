//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/minio/minio-go/v7"

	"github.com/depthcap/depthcap/pkg/md"
)

// localFile is a sealed file in DATA_DIR.
type localFile struct {
	rel  string // <market>/<kind_dir>/<SYMBOL>/<name>
	abs  string
	size int64
	mod  time.Time
}

// localFiles lists the sealed files of the layout (Parquet files and
// their manifests) under dataDir; state directories (.writer, .parts,
// .uploader) and temp files are not part of it.
func localFiles(dataDir string) ([]localFile, error) {
	var out []localFile
	for _, m := range markets {
		root := filepath.Join(dataDir, m)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if strings.HasPrefix(name, ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasPrefix(name, ".") || strings.Contains(name, ".tmp") {
				return nil
			}
			if !strings.HasSuffix(name, ".parquet") && !strings.HasSuffix(name, ".json") {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dataDir, p)
			if err != nil {
				return err
			}
			out = append(out, localFile{rel: filepath.ToSlash(rel), abs: p, size: info.Size(), mod: info.ModTime()})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

type objInfo struct {
	key  string
	size int64
}

// listObjects lists the bucket under the prefix, by path relative to it.
func listObjects(ctx context.Context, cl *minio.Client) (map[string]objInfo, error) {
	out := map[string]objInfo{}
	for o := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: s3Prefix + "/", Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		out[strings.TrimPrefix(o.Key, s3Prefix+"/")] = objInfo{key: o.Key, size: o.Size}
	}
	return out, nil
}

// download copies an object to dst and returns its size and SHA-256.
func download(ctx context.Context, cl *minio.Client, key, dst string) (int64, string, error) {
	obj, err := cl.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return 0, "", err
	}
	defer obj.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, "", err
	}
	f, err := os.Create(dst)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), obj)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", fmt.Errorf("download %s: %w", key, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func sha256File(p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// fileKey names a stream: market, kind, symbol.
type fileKey struct {
	market string
	kind   md.Kind
	symbol string
}

func (k fileKey) String() string { return k.market + "/" + k.kind.String() + "/" + k.symbol }

// parseRel splits <market>/<kind_dir>/<SYMBOL>/<name>.
func parseRel(rel string) (fileKey, string, error) {
	parts := strings.Split(rel, "/")
	if len(parts) != 4 {
		return fileKey{}, "", fmt.Errorf("%s: not <market>/<kind_dir>/<SYMBOL>/<name>", rel)
	}
	k, ok := md.KindFromDir(parts[1])
	if !ok || (parts[0] != "spot" && parts[0] != "futures") {
		return fileKey{}, "", fmt.Errorf("%s: unknown market or kind directory", rel)
	}
	return fileKey{market: parts[0], kind: k, symbol: parts[2]}, parts[3], nil
}

// pqFile is what a Parquet file holds for the checks.
type pqFile struct {
	rel  string
	key  fileKey
	ids  []int64 // final_update_id (diff, partial) or last_update_id (snapshot), in row order
	rows int64
	meta map[string]string // depthcap.* key-value metadata
}

// readParquet reads the id column and the key-value metadata of a file.
func readParquet(abs, rel string) (*pqFile, error) {
	key, _, err := parseRel(rel)
	if err != nil {
		return nil, err
	}
	r, err := file.OpenParquetFile(abs, false)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", rel, err)
	}
	defer r.Close()
	out := &pqFile{rel: rel, key: key, rows: r.NumRows(), meta: map[string]string{}}
	for _, kv := range r.MetaData().KeyValueMetadata() {
		if kv.Value != nil && strings.HasPrefix(kv.Key, "depthcap.") {
			out.meta[kv.Key] = *kv.Value
		}
	}
	col := "final_update_id"
	if key.kind == md.Snapshot {
		col = "last_update_id"
	}
	idx := r.MetaData().Schema.ColumnIndexByName(col)
	if idx < 0 {
		return nil, fmt.Errorf("%s: no column %s", rel, col)
	}
	vals := make([]int64, 4096)
	defs := make([]int16, 4096)
	for g := 0; g < r.NumRowGroups(); g++ {
		cr, err := r.RowGroup(g).Column(idx)
		if err != nil {
			return nil, fmt.Errorf("%s: row group %d: %w", rel, g, err)
		}
		ir, ok := cr.(*file.Int64ColumnChunkReader)
		if !ok {
			return nil, fmt.Errorf("%s: column %s is %T, want int64", rel, col, cr)
		}
		for ir.HasNext() {
			total, n, err := ir.ReadBatch(int64(len(vals)), vals, defs, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: read %s: %w", rel, col, err)
			}
			if int64(n) != total {
				return nil, fmt.Errorf("%s: %d null values in %s", rel, total-int64(n), col)
			}
			out.ids = append(out.ids, vals[:n]...)
		}
	}
	if int64(len(out.ids)) != out.rows {
		return nil, fmt.Errorf("%s: %d ids read, %d rows", rel, len(out.ids), out.rows)
	}
	return out, nil
}

// manifestName is the manifest beside a Parquet file: <name>.gaps.json.
func manifestName(rel string) string {
	return strings.TrimSuffix(rel, ".parquet") + ".gaps.json"
}

func isManifest(rel string) bool { return strings.HasSuffix(path.Base(rel), ".gaps.json") }
