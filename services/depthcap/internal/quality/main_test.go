package quality_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality/qualitytest"
)

var (
	tmpRoot    string
	sharedOnce sync.Once
	sharedDir  string
)

func TestMain(m *testing.M) {
	var err error
	tmpRoot, err = os.MkdirTemp("", "depthcap-quality-")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// recordingsData imports every recording once per test binary into a
// shared DATA_DIR that tests only read.
func recordingsData(tb testing.TB) string {
	tb.Helper()
	sharedOnce.Do(func() {
		dir := filepath.Join(tmpRoot, "recordings")
		qualitytest.Import(tb, dir, qualitytest.Recordings(tb)...)
		sharedDir = dir
	})
	if sharedDir == "" {
		tb.Fatal("importing the recordings failed in an earlier test")
	}
	return sharedDir
}

// symbolDay is one market, symbol and day that has files.
type symbolDay struct {
	market md.Market
	symbol string
	day    string
}

// symbolDays lists the symbol-days of a DATA_DIR that have diff files.
func symbolDays(tb testing.TB, dir string) []symbolDay {
	tb.Helper()
	var out []symbolDay
	for _, m := range md.Markets {
		syms, err := os.ReadDir(filepath.Join(dir, m.String(), md.Diff.Dir()))
		if err != nil {
			continue
		}
		for _, s := range syms {
			names, err := dataset.Local(dir).List(context.Background(), dataset.KindDir(m, md.Diff, s.Name()), "")
			if err != nil {
				tb.Fatal(err)
			}
			seen := map[string]bool{}
			for _, n := range names {
				if _, start, _, err := dataset.ParseName(n); err == nil {
					d := start.Format("2006-01-02")
					if !seen[d] {
						seen[d] = true
						out = append(out, symbolDay{m, s.Name(), d})
					}
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.market != b.market {
			return a.market < b.market
		}
		if a.symbol != b.symbol {
			return a.symbol < b.symbol
		}
		return a.day < b.day
	})
	return out
}
