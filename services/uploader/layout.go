package uploader

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/depthcap/depthcap/pkg/md"
)

// ErrBadPath is returned for a FileSealed path that is not a sealed file
// of the DATA_DIR layout.
var ErrBadPath = errors.New("not a sealed file path")

// The sealed-file layout (DESIGN section 2):
//
//	<market>/<kind_dir>/<SYMBOL>/<name>
//
// with market spot or futures, kind_dir one of md's kind directories,
// SYMBOL an md.ValidSymbol, and name a sealed file: *.parquet, or a
// sidecar *.json (e.g. a gap manifest 2026-11-21.gaps.json). Anything
// else under DATA_DIR (nats/, .writer/, .parts/, .uploader/, temp files
// named .* or *.tmp*) is never uploaded.

// CheckPath validates a path relative to DATA_DIR, with '/' separators,
// against the sealed-file layout.
func CheckPath(rel string) error {
	if rel == "" || !utf8.ValidString(rel) || strings.ContainsAny(rel, "\\\x00") || path.Clean(rel) != rel || path.IsAbs(rel) {
		return fmt.Errorf("%w %q: want <market>/<kind_dir>/<SYMBOL>/<file>.parquet relative to DATA_DIR", ErrBadPath, rel)
	}
	parts := strings.Split(rel, "/")
	if len(parts) != 4 {
		return fmt.Errorf("%w %q: want <market>/<kind_dir>/<SYMBOL>/<file>.parquet relative to DATA_DIR", ErrBadPath, rel)
	}
	if _, err := md.ParseMarket(parts[0]); err != nil {
		return fmt.Errorf("%w %q: %w", ErrBadPath, rel, err)
	}
	if _, ok := md.KindFromDir(parts[1]); !ok {
		return fmt.Errorf("%w %q: unknown kind directory %q", ErrBadPath, rel, parts[1])
	}
	if !md.ValidSymbol(parts[2]) {
		return fmt.Errorf("%w %q: bad symbol %q", ErrBadPath, rel, parts[2])
	}
	if !sealedName(parts[3]) {
		return fmt.Errorf("%w %q: %q is not a sealed file name (*.parquet or *.json, no leading '.', no .tmp)", ErrBadPath, rel, parts[3])
	}
	return nil
}

// sealedName reports whether a file name is a sealed file or sidecar, as
// opposed to a temp name of a file still being written.
func sealedName(name string) bool {
	if strings.HasPrefix(name, ".") || strings.Contains(name, ".tmp") {
		return false
	}
	for _, ext := range []string{".parquet", ".json"} {
		if strings.HasSuffix(name, ext) && len(name) > len(ext) {
			return true
		}
	}
	return false
}

// contentType is the Content-Type of an object.
func contentType(rel string) string {
	if strings.HasSuffix(rel, ".json") {
		return "application/json"
	}
	return "application/vnd.apache.parquet"
}

// localFile is a sealed file found in DATA_DIR.
type localFile struct {
	rel     string // '/'-separated, relative to DATA_DIR
	size    int64
	modTime time.Time
}

// walkSealed calls fn for every sealed file under dataDir, following the
// layout strictly: it reads only market, kind and symbol directories, so
// nats/, dot-directories and anything unexpected are never entered. It
// stops at the first error fn returns. Directories that vanish while it
// walks are skipped.
func walkSealed(dataDir string, fn func(localFile) error) error {
	kinds := []md.Kind{md.Diff, md.Partial, md.Snapshot, md.Gap}
	for _, m := range md.Markets {
		for _, k := range kinds {
			kindRel := m.String() + "/" + k.Dir()
			symbols, err := readDir(filepath.Join(dataDir, filepath.FromSlash(kindRel)))
			if err != nil {
				return err
			}
			for _, sd := range symbols {
				if !sd.IsDir() || !md.ValidSymbol(sd.Name()) {
					continue
				}
				symRel := kindRel + "/" + sd.Name()
				files, err := readDir(filepath.Join(dataDir, filepath.FromSlash(symRel)))
				if err != nil {
					return err
				}
				for _, fe := range files {
					if !fe.Type().IsRegular() || !sealedName(fe.Name()) {
						continue
					}
					info, err := fe.Info()
					if errors.Is(err, fs.ErrNotExist) {
						continue // deleted since ReadDir
					}
					if err != nil {
						return fmt.Errorf("stat %s: %w", symRel+"/"+fe.Name(), err)
					}
					if err := fn(localFile{rel: symRel + "/" + fe.Name(), size: info.Size(), modTime: info.ModTime()}); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// readDir lists dir; a missing directory is empty.
func readDir(dir string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dir %s: %w", dir, err)
	}
	return ents, nil
}
