package dataset

import (
	"context"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/depthcap/depthcap/pkg/manifest"
)

// readManifest reads a gap manifest (pkg/manifest: version 1 manifests,
// without the quality summary, parse too).
func readManifest(ctx context.Context, st Store, rel string) (*manifest.Manifest, error) {
	b, err := st.ReadFile(ctx, rel)
	if err != nil {
		return nil, err
	}
	m, err := manifest.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", rel, err)
	}
	return m, nil
}

// readFooter fills f's metadata fields from the Parquet footer.
func readFooter(ctx context.Context, st Store, f *File) error {
	obj, err := st.Open(ctx, f.Rel)
	if err != nil {
		return err
	}
	pf, err := file.NewParquetReader(obj)
	if err != nil {
		_ = obj.Close()
		return fmt.Errorf("parquet %s: %w", f.Rel, err)
	}
	defer func() { _ = pf.Close() }() // closes obj; read only
	md := pf.MetaData()
	f.Rows = md.NumRows
	f.Meta = map[string]string{}
	kv := md.KeyValueMetadata()
	for i, k := range kv.Keys() {
		f.Meta[k] = kv.Values()[i]
	}
	f.FirstSeq, _ = strconv.ParseUint(f.Meta["depthcap.first_stream_seq"], 10, 64)
	f.LastSeq, _ = strconv.ParseUint(f.Meta["depthcap.last_stream_seq"], 10, 64)
	return nil
}
