package uploader_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/depthcap/depthcap/services/uploader"
)

// BenchmarkUploadThroughput measures the uploader end to end (FileSealed
// message, local SHA-256 + CRC64NVME, HEAD, PUT or multipart with the
// trailing checksum, HEAD to verify, fsynced ledger record, ack) against a
// local versitygw process, next to a plain minio-go PutObject loop over
// the same files in the same run (default client options: no checksum,
// no verification, sequential). It reports MB/s for each and the ratio
// uploader/plain, with the uploader at UPLOAD_CONCURRENCY 4 (default) and
// 1. Speed is reported here, never asserted.
//
//	go test -run '^$' -bench UploadThroughput -benchtime 3x
func BenchmarkUploadThroughput(b *testing.B) {
	h := newHarness(b)
	var rels []string
	var total int64
	for i := range 10 {
		size := 4 << 20 // single PUT at the default 16MiB part size
		if i >= 8 {
			size = 40 << 20 // multipart: three parts
		}
		rel := fmt.Sprintf("spot/diff_orderbooks/SYM%cUSDT/2026-11-21.parquet", 'A'+i)
		h.writeFile(rel, size, uint64(i))
		rels = append(rels, rel)
		total += int64(size)
	}
	plain := h.s3.Client(b)

	run := func(iter int, concurrency string) time.Duration {
		if err := os.RemoveAll(filepath.Join(h.dataDir, uploader.LedgerDir)); err != nil {
			b.Fatal(err)
		}
		cfg := loadConfig(b, h.env(map[string]string{
			"S3_PREFIX":          fmt.Sprintf("bench/c%s-%d", concurrency, iter),
			"UPLOAD_PART_SIZE":   "16MiB",
			"UPLOAD_CONCURRENCY": concurrency,
			"LOG_LEVEL":          "warn",
		}))
		for _, rel := range rels {
			h.publish(h.sealed(rel))
		}
		start := time.Now()
		r := h.start(cfg)
		waitFor(b, 5*time.Minute, "all files acked", func() bool {
			return r.metric("depthcap_upload_messages_total", "action", "ack") == float64(len(rels))
		})
		took := time.Since(start)
		if n := r.files(uploader.ResultUploaded); n != len(rels) {
			b.Fatalf("uploaded %d files, want %d", n, len(rels))
		}
		r.stop()
		return took
	}
	putLoop := func(iter int) time.Duration {
		start := time.Now()
		for _, rel := range rels {
			f, err := os.Open(filepath.Join(h.dataDir, filepath.FromSlash(rel)))
			if err != nil {
				b.Fatal(err)
			}
			fi, _ := f.Stat()
			if _, err := plain.PutObject(context.Background(), testBucket, fmt.Sprintf("bench/plain-%d/%s", iter, rel), f, fi.Size(), minio.PutObjectOptions{}); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		return time.Since(start)
	}

	var up4, up1, put time.Duration
	iter := 0
	for b.Loop() {
		iter++
		put += putLoop(iter)
		up4 += run(iter, "4")
		up1 += run(iter, "1")
	}
	mb := float64(total) * float64(iter) / 1e6
	b.ReportMetric(mb/up4.Seconds(), "uploader-MB/s")
	b.ReportMetric(mb/up1.Seconds(), "uploader-c1-MB/s")
	b.ReportMetric(mb/put.Seconds(), "putobject-MB/s")
	b.ReportMetric(put.Seconds()/up4.Seconds(), "ratio")
	b.ReportMetric(put.Seconds()/up1.Seconds(), "ratio-c1")
}
