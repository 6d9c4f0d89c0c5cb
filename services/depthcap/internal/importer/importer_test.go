package importer

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/frames"
	"github.com/depthcap/depthcap/pkg/recording"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/writer"
)

func testdata() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "..", "shared", "testdata", "binance")
}

// TestImportRollover imports the two recordings that cross UTC midnight and
// proves that every depth frame became exactly one row of the file of its
// receive-time day, that both days were sealed with empty gap manifests,
// and that a second import into the same directory refuses to overwrite.
func TestImportRollover(t *testing.T) {
	files := []string{
		filepath.Join(testdata(), "spot_ethusdt_2024-08-08T2354.rec.gz"),
		filepath.Join(testdata(), "futures_ethusdt_2024-08-08T2354.rec.gz"),
	}
	// Expected rows per file, counted straight from the recordings.
	want := map[string]int{}
	for _, f := range files {
		m, _ := recording.MarketFromFileName(f)
		frs, err := recording.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		b := frames.NewBuilder(m, "x")
		var h binance.Header
		var env envelope.Envelope
		for _, fr := range frs {
			if b.Build(fr.JSON, fr.RecvNs, &h, &env) != nil {
				continue
			}
			day := time.Unix(0, fr.RecvNs).UTC().Format("2006-01-02")
			want[m.String()+"/"+env.Kind.Dir()+"/"+env.Symbol+"/"+day+".parquet"]++
		}
	}
	if len(want) < 4 {
		t.Fatalf("expected files for both days, got %v", want)
	}

	var wcfg writer.Config
	if err := svc.Load(&wcfg); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	env := svc.Env{Log: zaptest.NewLogger(t), Registry: svc.NewRegistry(), Health: svc.NewHealth()}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := Run(ctx, Options{Files: files, DataDir: data, Source: "import", Writer: wcfg}, env)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range want {
		total += n
	}
	if st.Depth != total {
		t.Fatalf("published %d depth frames, want %d", st.Depth, total)
	}
	for rel, rows := range want {
		var man struct {
			Rows     int `json:"rows"`
			GapCount int `json:"gap_count"`
		}
		b, err := os.ReadFile(filepath.Join(data, rel[:len(rel)-len(".parquet")]+".gaps.json"))
		if err != nil {
			t.Fatalf("%s: no manifest: %v", rel, err)
		}
		if err := json.Unmarshal(b, &man); err != nil {
			t.Fatal(err)
		}
		if man.Rows != rows || man.GapCount != 0 {
			t.Errorf("%s: manifest rows %d gaps %d, want rows %d gaps 0", rel, man.Rows, man.GapCount, rows)
		}
		if _, err := os.Stat(filepath.Join(data, rel)); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(data, ".import-*"))
	if len(left) != 0 {
		t.Errorf("work directories left behind: %v", left)
	}
	if _, err := Run(ctx, Options{Files: files, DataDir: data, Source: "import", Writer: wcfg}, env); err == nil {
		t.Fatal("second import into the same DATA_DIR: want a refusal to overwrite sealed files")
	}
	if _, err := Run(ctx, Options{Files: []string{"/nonexistent/coin_x.rec.gz"}, DataDir: data, Writer: wcfg}, env); err == nil {
		t.Fatal("bad file name: want an error")
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}
