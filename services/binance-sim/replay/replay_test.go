package replay

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/depthcap/depthcap/pkg/md"
)

func testdata(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../../../../shared/testdata/binance")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "spot_2021-10-12_4sym.rec.gz")); err != nil {
		t.Fatalf("shared testdata missing: %v", err)
	}
	return dir
}

// TestLoadRecordings proves every frame of every shared recording is
// indexed, that its data span is exactly the data value (so raw clients
// get the recorded bytes), and that depth frames have their ids.
func TestLoadRecordings(t *testing.T) {
	dir := testdata(t)
	paths, err := filepath.Glob(filepath.Join(dir, "*.rec.gz"))
	if err != nil || len(paths) < 6 {
		t.Fatalf("recordings: %v %v", paths, err)
	}
	got, err := Load(paths)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []md.Market{md.Spot, md.Futures} {
		frames := got[m]
		if len(frames) < 1000 {
			t.Fatalf("%s: %d frames", m, len(frames))
		}
		kinds := map[md.Kind]int{}
		for i := range frames {
			f := &frames[i]
			if i > 0 && f.RecvNs < frames[i-1].RecvNs {
				t.Fatalf("%s frame %d out of order", m, i)
			}
			var env struct {
				Stream string          `json:"stream"`
				Data   json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(f.Raw, &env); err != nil {
				t.Fatal(err)
			}
			if env.Stream != f.Stream || !bytes.Equal(env.Data, f.Data()) {
				t.Fatalf("frame %d: stream %q data %q, want %q %q", i, f.Stream, f.Data(), env.Stream, env.Data)
			}
			kinds[f.Kind]++
			if f.Kind != md.KindUnknown && f.ID == 0 {
				t.Fatalf("frame %d (%s) has no id", i, f.Stream)
			}
			if f.Kind == md.Diff && (f.FirstID == 0 || f.FirstID > f.ID) {
				t.Fatalf("frame %d (%s): U %d u %d", i, f.Stream, f.FirstID, f.ID)
			}
		}
		if kinds[md.Diff] == 0 || kinds[md.Snapshot] == 0 {
			t.Fatalf("%s kinds %v", m, kinds)
		}
	}
}

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		rest string
		want md.Kind
	}{
		{"depth", md.Diff}, {"depth@100ms", md.Diff}, {"depth@0ms", md.Diff},
		{"depth20", md.Partial}, {"depth5@100ms", md.Partial},
		{"depthSnapshot", md.Snapshot}, {"aggTrade", md.KindUnknown}, {"depthx", md.KindUnknown}, {"", md.KindUnknown},
	} {
		if got := KindOf(tc.rest); got != tc.want {
			t.Errorf("KindOf(%q) = %v, want %v", tc.rest, got, tc.want)
		}
	}
}

// FuzzFields proves the scanner never panics and agrees with
// encoding/json on the top-level keys of every valid object.
func FuzzFields(f *testing.F) {
	f.Add([]byte(`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","U":1,"u":2,"b":[["1.0","2"]],"a":[]}}`))
	f.Add([]byte(`{"a":[1,{"b":"\"}"}],"c":null,"d":true,"e":-1.5e3}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"a":`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var keys []string
		err := Fields(b, func(k []byte, vOff, vEnd int) bool {
			if vOff < 0 || vEnd > len(b) || vOff >= vEnd {
				t.Fatalf("bad span %d %d", vOff, vEnd)
			}
			keys = append(keys, string(k))
			return true
		})
		var obj map[string]json.RawMessage
		if json.Unmarshal(b, &obj) != nil || !json.Valid(b) {
			return
		}
		if bytes.IndexByte(b, '\\') >= 0 || !utf8.Valid(b) {
			return // keys are reported raw: escapes and invalid UTF-8 stay as sent
		}
		if err != nil {
			t.Fatalf("valid object rejected: %v", err)
		}
		for _, k := range keys {
			if _, ok := obj[k]; !ok {
				t.Fatalf("key %q not in %v", k, obj)
			}
		}
	})
}
