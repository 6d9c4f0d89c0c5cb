package writer_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
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

// readRowsParquetGo reads a file with parquet-go, an implementation
// independent of the writer's arrow-go, into rows: leaf values by column
// name; a list element is a value at the leaf's maximum definition level,
// an empty list one null value.
func readRowsParquetGo(t *testing.T, rel string, b []byte) ([]Row, *parquet.File) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("%s: parquet-go: %v", rel, err)
	}
	r := parquet.NewReader(bytes.NewReader(b))
	defer r.Close()
	cols := r.Schema().Columns()
	var out []Row
	buf := make([]parquet.Row, 256)
	for {
		n, err := r.ReadRows(buf)
		for _, pr := range buf[:n] {
			var row Row
			for _, v := range pr {
				name := cols[v.Column()][0]
				switch name {
				case "bid_prices", "bid_sizes", "ask_prices", "ask_sizes":
					dst := map[string]*[]float64{"bid_prices": &row.BidPx, "bid_sizes": &row.BidQty, "ask_prices": &row.AskPx, "ask_sizes": &row.AskQty}[name]
					if *dst == nil {
						*dst = []float64{}
					}
					if v.DefinitionLevel() == 2 {
						*dst = append(*dst, v.Double())
					} else if v.RepetitionLevel() != 0 || v.DefinitionLevel() != 0 {
						t.Fatalf("%s: %s value with rep %d def %d", rel, name, v.RepetitionLevel(), v.DefinitionLevel())
					}
					continue
				case "symbol":
					row.Symbol = string(v.ByteArray())
					continue
				case "limit":
					row.LimitNull = v.IsNull()
					if !v.IsNull() {
						row.Limit = v.Int32()
					}
					continue
				}
				var x int64
				if !v.IsNull() {
					x = v.Int64()
				}
				switch name {
				case "received_time":
					row.RecvUs = x
				case "request_time":
					row.ReqUs, row.ReqNull = x, v.IsNull()
				case "event_time":
					row.EventUs, row.EventNull = x, v.IsNull()
				case "transaction_time":
					row.TxUs = x
				case "first_update_id":
					row.First, row.FirstNull = x, v.IsNull()
				case "final_update_id":
					row.Final = x
				case "prev_final_update_id":
					row.Prev = x
				case "last_update_id":
					row.Last = x
				default:
					t.Fatalf("%s: unexpected column %v", rel, cols[v.Column()])
				}
			}
			out = append(out, row)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: parquet-go: %v", rel, err)
		}
	}
	return out, f
}

// TestIndependentReader proves that files read correctly with a second,
// independent Parquet implementation (parquet-go): every layout's schema
// has the column types and logical types SCHEMA.md promises (timestamps
// are int64 TIMESTAMP(MICROS, UTC), levels are lists of doubles), the row
// count matches the metadata, and every value of every row equals the
// independent decode of its payload (encoding/json + strconv).
func TestIndependentReader(t *testing.T) {
	envs := datasetWith(t, 1, true, testrec.SmallRecordings()...)
	for _, name := range testrec.LargeRecordings() {
		envs = append(envs, dataset(t, 1, name)[:1000]...) // long level lists
	}
	sort.SliceStable(envs, func(i, j int) bool { return envs[i].ReceivedNs < envs[j].ReceivedNs })
	h := newHarness(t)
	h.publish(envs, false)
	dir := t.TempDir()
	h.finish(testConfig(dir, h.url))

	want := map[streamID][]Row{}
	for i := range envs {
		e := &envs[i]
		want[streamID{e.Market, e.Kind, e.Symbol}] = append(want[streamID{e.Market, e.Kind, e.Symbol}], expectedRow(t, e))
	}
	got := map[streamID][]Row{}
	seen := map[string]bool{}
	for _, rel := range parquetFiles(t, dir) {
		layout := strings.Join(strings.Split(rel, "/")[:2], "/")
		seen[layout] = true
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		rows, f := readRowsParquetGo(t, rel, b)
		schema := f.Schema().String()
		for _, line := range append(schemaLines[layout], "optional double element", "required group ask_sizes (LIST)") {
			if !strings.Contains(schema, line) { // arrow.ListOf: nullable element, never null
				t.Fatalf("%s: schema lacks %q:\n%s", rel, line, schema)
			}
		}
		kv := readMeta(t, filepath.Join(dir, rel))
		if strconv.Itoa(len(rows)) != kv["depthcap.rows"] || int64(len(rows)) != f.NumRows() {
			t.Errorf("%s: parquet-go read %d rows, metadata says %s", rel, len(rows), kv["depthcap.rows"])
		}
		id := streamOf(t, rel)
		got[id] = append(got[id], rows...)
	}
	if len(seen) != len(schemaLines) {
		t.Errorf("layouts covered: %v, want all %d", seen, len(schemaLines))
	}
	compareStreams(t, got, want, envs)
}

// compareStreams proves that got holds exactly the rows of want, per
// stream and in order.
func compareStreams(t *testing.T, got, want map[streamID][]Row, envs []envelope.Envelope) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d streams in files, want %d", len(got), len(want))
	}
	total := 0
	for id, w := range want {
		g := got[id]
		if len(g) != len(w) {
			t.Errorf("%v: %d rows, want %d", id, len(g), len(w))
			continue
		}
		for i := range w {
			if d := diffRow(g[i], w[i]); d != "" {
				t.Fatalf("%v row %d:\n%s", id, i, d)
			}
		}
		total += len(g)
	}
	if total != len(envs) {
		t.Errorf("%d rows written, want %d", total, len(envs))
	}
}
