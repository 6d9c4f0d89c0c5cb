package binance

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"testing"
	"unsafe"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
)

// benchFrames returns the depth frames (diffs, no REST snapshots) of a
// recording: what a collector sees most.
func benchFrames(b *testing.B, name string, max int) (frames [][]byte, size int) {
	b.Helper()
	r, err := recording.Open(filepath.Join(testdataDir(b), name))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for len(frames) < max {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		var h Header
		if err := ScanFrame(f.JSON, &h); err != nil {
			b.Fatal(err)
		}
		if info, err := ParseStreamName(h.Stream); err == nil && info.Kind == md.Diff {
			frames = append(frames, bytes.Clone(f.JSON))
			size += len(f.JSON)
		}
	}
	if len(frames) == 0 {
		b.Fatal("no depth frames")
	}
	return frames, size
}

var benchSets = []struct{ name, file string }{
	{"spot", "spot_ethusdt_2024-08-08T2354.rec.gz"},
	{"futures", "futures_ethusdt_2024-08-08T2354.rec.gz"},
}

// BenchmarkScanFrame measures the ingest fast path on real diff frames.
// One op is one frame.
func BenchmarkScanFrame(b *testing.B) {
	for _, set := range benchSets {
		b.Run(set.name, func(b *testing.B) {
			frames, size := benchFrames(b, set.file, 2000)
			b.SetBytes(int64(size / len(frames)))
			b.ReportAllocs()
			var h Header
			i := 0
			for b.Loop() {
				if err := ScanFrame(frames[i], &h); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(frames) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkDecodeDepth measures the writer's full decode of the data value
// of real diff frames, levels included.
func BenchmarkDecodeDepth(b *testing.B) {
	for _, set := range benchSets {
		b.Run(set.name, func(b *testing.B) {
			frames, _ := benchFrames(b, set.file, 2000)
			datas := make([][]byte, len(frames))
			size := 0
			for i, f := range frames {
				var h Header
				if err := ScanFrame(f, &h); err != nil {
					b.Fatal(err)
				}
				datas[i] = h.Data
				size += len(h.Data)
			}
			b.SetBytes(int64(size / len(datas)))
			b.ReportAllocs()
			var d Depth
			i := 0
			for b.Loop() {
				if err := DecodeDepth(datas[i], &d); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(datas) {
					i = 0
				}
			}
		})
	}
}

// jsonFrame is the encoding/json baseline: what a straightforward decoder
// reads from the same frames.
type jsonFrame struct {
	Stream string `json:"stream"`
	Data   struct {
		E  string      `json:"e"`
		ET int64       `json:"E"`
		T  int64       `json:"T"`
		S  string      `json:"s"`
		U  int64       `json:"U"`
		U2 int64       `json:"u"`
		PU int64       `json:"pu"`
		B  [][2]string `json:"b"`
		A  [][2]string `json:"a"`
	} `json:"data"`
}

// BenchmarkEncodingJSONUnmarshal is the baseline for both: /header
// unmarshals the frame with the levels skipped as json.RawMessage (the
// ScanFrame job), /full unmarshals everything and parses every level with
// strconv.ParseFloat (the DecodeDepth job).
func BenchmarkEncodingJSONUnmarshal(b *testing.B) {
	for _, set := range benchSets {
		frames, size := benchFrames(b, set.file, 2000)
		b.Run(set.name+"/header", func(b *testing.B) {
			b.SetBytes(int64(size / len(frames)))
			b.ReportAllocs()
			var v struct {
				Stream string `json:"stream"`
				Data   struct {
					E  string          `json:"e"`
					ET int64           `json:"E"`
					T  int64           `json:"T"`
					S  string          `json:"s"`
					U  int64           `json:"U"`
					U2 int64           `json:"u"`
					PU int64           `json:"pu"`
					B  json.RawMessage `json:"b"`
					A  json.RawMessage `json:"a"`
				} `json:"data"`
			}
			i := 0
			for b.Loop() {
				if err := json.Unmarshal(frames[i], &v); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(frames) {
					i = 0
				}
			}
		})
		b.Run(set.name+"/full", func(b *testing.B) {
			b.SetBytes(int64(size / len(frames)))
			b.ReportAllocs()
			var v jsonFrame
			var levels []Level
			i := 0
			for b.Loop() {
				if err := json.Unmarshal(frames[i], &v); err != nil {
					b.Fatal(err)
				}
				levels = levels[:0]
				for _, side := range [][][2]string{v.Data.B, v.Data.A} {
					for _, l := range side {
						p, err := strconv.ParseFloat(l[0], 64)
						if err != nil {
							b.Fatal(err)
						}
						q, err := strconv.ParseFloat(l[1], 64)
						if err != nil {
							b.Fatal(err)
						}
						levels = append(levels, Level{p, q})
					}
				}
				if i++; i == len(frames) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkParseDecimal compares parseDecimal, with its exact fast path,
// to checking the grammar and calling strconv.ParseFloat on an
// unsafe.String view, on the price and quantity strings of real frames.
func BenchmarkParseDecimal(b *testing.B) {
	frames, _ := benchFrames(b, "spot_ethusdt_2024-08-08T2354.rec.gz", 500)
	var strs [][]byte
	for _, f := range frames {
		var h Header
		if err := ScanFrame(f, &h); err != nil {
			b.Fatal(err)
		}
		var d Depth
		if err := DecodeDepth(h.Data, &d); err != nil {
			b.Fatal(err)
		}
		for _, l := range append(d.Bids, d.Asks...) {
			strs = append(strs, strconv.AppendFloat(nil, l.Price, 'f', 8, 64), strconv.AppendFloat(nil, l.Qty, 'f', 8, 64))
		}
	}
	b.Run("parseDecimal", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, r := parseDecimal(strs[i]); r != "" {
				b.Fatal(r)
			}
			if i++; i == len(strs) {
				i = 0
			}
		}
	})
	b.Run("strconv", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s := strs[i]
			if _, err := strconv.ParseFloat(unsafe.String(&s[0], len(s)), 64); err != nil {
				b.Fatal(err)
			}
			if i++; i == len(strs) {
				i = 0
			}
		}
	})
}
