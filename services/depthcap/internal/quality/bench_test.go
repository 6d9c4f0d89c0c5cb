package quality_test

import (
	"context"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality"
)

// BenchmarkVerify measures verify's throughput on the two real ETHUSDT
// recordings (imported once): rows read, merged, chained, applied and
// checked per second, file opening and manifests included.
//
//	go test ./internal/quality -run '^$' -bench Verify -benchmem
func BenchmarkVerify(b *testing.B) {
	dir := recordingsData(b)
	day, _ := time.Parse(time.DateOnly, "2024-08-08")
	for _, m := range md.Markets {
		b.Run(m.String()+"/ETHUSDT", func(b *testing.B) {
			var rows int64
			for b.Loop() {
				rep, err := quality.Verify(context.Background(), dataset.Local(dir), quality.Options{Market: m, Symbol: "ETHUSDT", Date: day})
				if err != nil {
					b.Fatal(err)
				}
				if !rep.Clean() {
					b.Fatalf("problems: %v", rep.Problems)
				}
				rows += rep.Events.Diff + rep.Events.Partial + rep.Events.Snapshot
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
