package writer_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// schemaLines are the Parquet schema declarations SCHEMA.md promises,
// as parquet-go prints them, per kind directory and market.
var schemaLines = map[string][]string{
	"spot/diff_orderbooks": {
		"required int64 received_time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS))",
		"required int64 event_time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS))",
		"required binary symbol (STRING)",
		"required int64 first_update_id",
		"required int64 final_update_id",
		"required group bid_prices (LIST)",
	},
	"futures/diff_orderbooks": {
		"required int64 transaction_time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS))",
		"required int64 prev_final_update_id",
	},
	"spot/partial_orderbooks": {
		"optional int64 event_time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS))",
		"optional int64 first_update_id",
		"required int64 final_update_id",
	},
	"futures/partial_orderbooks": {
		"required int64 event_time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS))",
		"required int64 prev_final_update_id",
	},
	"spot/orderbooks": {
		"optional int64 request_time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS))",
		"required int64 last_update_id",
		"optional int32 limit",
	},
	"futures/orderbooks": {
		"required int64 event_time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS))",
		"required int64 transaction_time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS))",
	},
}

// TestIndependentReader proves that files read correctly with a second,
// independent Parquet implementation (parquet-go): every layout's schema
// has the column types and logical types SCHEMA.md promises (timestamps
// are int64 TIMESTAMP(MICROS, UTC), levels are lists of doubles), the row
// count matches the metadata, and every value decodes.
func TestIndependentReader(t *testing.T) {
	envs := dataset(t, 1)
	h := newHarness(t)
	h.publish(envs, false)
	dir := t.TempDir()
	h.finish(testConfig(dir, h.url))
	seen := map[string]bool{}
	for _, rel := range parquetFiles(t, dir) {
		layout := strings.Join(strings.Split(rel, "/")[:2], "/")
		seen[layout] = true
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		f, err := parquet.OpenFile(strings.NewReader(string(b)), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: parquet-go: %v", rel, err)
		}
		schema := f.Schema().String()
		for _, line := range append(schemaLines[layout], "required double element", "required group ask_sizes (LIST)") {
			if line == "required double element" {
				line = "double element" // arrow.ListOf: nullable element, never null
			}
			if !strings.Contains(schema, line) {
				t.Fatalf("%s: schema lacks %q:\n%s", rel, line, schema)
			}
		}
		rows := 0
		r := parquet.NewReader(strings.NewReader(string(b)))
		buf := make([]parquet.Row, 64)
		for {
			n, err := r.ReadRows(buf)
			for _, row := range buf[:n] {
				if len(row) == 0 {
					t.Fatalf("%s: empty row", rel)
				}
			}
			rows += n
			if err != nil {
				break
			}
		}
		_, kv := readRows(t, filepath.Join(dir, rel))
		if strconv.Itoa(rows) != kv["depthcap.rows"] || int64(rows) != f.NumRows() {
			t.Errorf("%s: parquet-go read %d rows, metadata says %s", rel, rows, kv["depthcap.rows"])
		}
	}
	if len(seen) != len(schemaLines) {
		t.Errorf("layouts covered: %v, want all %d", seen, len(schemaLines))
	}
}
