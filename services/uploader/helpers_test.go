package uploader_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/bus/bustest"
	depthcapv1 "github.com/depthcap/depthcap/pkg/gen/depthcap/v1"
	"github.com/depthcap/depthcap/pkg/manifest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/pkg/svc/svctest"
	"github.com/depthcap/depthcap/services/uploader"
	"github.com/depthcap/depthcap/services/uploader/internal/s3test"
)

const testBucket = "depthcap-test"

// harness is one test's world: a versitygw process with a bucket, an
// embedded JetStream server with the depthcap streams, and a DATA_DIR.
type harness struct {
	t       testing.TB
	s3      *s3test.Server
	ns      *server.Server
	js      jetstream.JetStream
	dataDir string
	files   map[string][]byte // rel -> content written by the test
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, s3: s3test.Start(t), dataDir: t.TempDir(), files: map[string][]byte{}}
	h.s3.MakeBucket(t, testBucket)
	h.ns = bustest.RunServer(t)
	h.js = bustest.JetStream(t, bustest.Connect(t, h.ns.ClientURL()))
	var sc bus.StreamConfig
	sc.MaxAge, sc.MaxBytes, sc.Duplicates, sc.Replicas = 72*time.Hour, -1, 2*time.Minute, 1
	sc.FilesMaxAge, sc.DLQMaxAge, sc.DLQMaxBytes, sc.Provision = 720*time.Hour, time.Hour, 1<<20, true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx, h.js, sc); err != nil {
		t.Fatal(err)
	}
	return h
}

// env returns the environment of an uploader for this harness: the
// tests load it through svc.Load, the same path as the binary.
func (h *harness) env(extra map[string]string) map[string]string {
	e := map[string]string{
		"NATS_URL":             h.ns.ClientURL(),
		"DATA_DIR":             h.dataDir,
		"S3_ENDPOINT":          h.s3.Endpoint(),
		"S3_BUCKET":            testBucket,
		"S3_ACCESS_KEY_ID":     s3test.AccessKey,
		"S3_SECRET_ACCESS_KEY": s3test.SecretKey,
		"S3_REGION":            s3test.Region,
		"S3_PREFIX":            "md",
		"UPLOAD_PART_SIZE":     "5MiB",
		"UPLOAD_RETRY_MIN":     "50ms",
		"UPLOAD_RETRY_MAX":     "1s",
		"UPLOAD_ACK_WAIT":      "5s",
		"SHUTDOWN_TIMEOUT":     "10s",
		"LOG_LEVEL":            "debug",
	}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

// loadConfig loads an uploader.Config from env through svc.Load.
func loadConfig(t testing.TB, env map[string]string) uploader.Config {
	t.Helper()
	svctest.ClearEnv(t, &uploader.Config{}) // a clean slate, restored after the test
	for k, v := range env {
		t.Setenv(k, v)
	}
	var cfg uploader.Config
	if err := svc.Load(&cfg); err != nil {
		t.Fatalf("load config: %v", err)
	}
	return cfg
}

// running is an Uploader running in the test process.
type running struct {
	t      testing.TB
	u      *uploader.Uploader
	reg    *prometheus.Registry
	health *svc.Health
	logs   *observer.ObservedLogs
	cancel context.CancelFunc
	done   chan error
	conn   *bus.Conn
}

// start runs an uploader with cfg until the test ends (or stop).
func (h *harness) start(cfg uploader.Config) *running {
	h.t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(h.t, zaptest.Level(zapcore.InfoLevel)).Core()))
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := bus.Connect(ctx, cfg.Config, cfg.DataDir, "uploader-test", log)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	r := &running{t: h.t, reg: svc.NewRegistry(), health: svc.NewHealth(), logs: logs, cancel: cancel, done: make(chan error, 1), conn: conn}
	r.u, err = uploader.New(cfg, conn, svc.Env{Log: log, Registry: r.reg, Health: r.health})
	if err != nil {
		cancel()
		conn.Close()
		h.t.Fatal(err)
	}
	go func() { r.done <- r.u.Run(ctx) }()
	h.t.Cleanup(r.stop)
	return r
}

// stop stops the uploader and checks that Run returned nil.
func (r *running) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		r.t.Error("Run did not return 30s after cancel")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.conn.Drain(ctx)
}

// metric reads a counter or gauge from the uploader's registry; labels
// are name/value pairs.
func (r *running) metric(name string, labels ...string) float64 {
	r.t.Helper()
	return gather(r.t, r.reg, name, labels...)
}

func gather(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// files counts depthcap_upload_files_total{result}.
func (r *running) files(result string) int {
	return int(r.metric("depthcap_upload_files_total", "result", result))
}

// logged returns every log entry (message and fields) as JSON lines.
func (r *running) logged() string {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	var b strings.Builder
	for _, e := range r.logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			r.t.Fatal(err)
		}
		b.Write(buf.Bytes())
		buf.Free()
	}
	return b.String()
}

// writeFile writes a sealed file of n pseudo-random bytes the way the
// writer does (temp name, fsync, rename) and returns its content.
func (h *harness) writeFile(rel string, n int, seed uint64) []byte {
	h.t.Helper()
	data := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	_, _ = rng.Read(data)
	p := filepath.Join(h.dataDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	tmp := p + ".tmp1"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		h.t.Fatal(err)
	}
	h.files[rel] = data
	return data
}

// writeManifest writes the gap manifest rel the way the writer does: a
// version 2 manifest with a quality summary.
func (h *harness) writeManifest(rel string) []byte {
	h.t.Helper()
	m := &manifest.Manifest{SchemaVersion: manifest.Version, File: strings.TrimSuffix(rel, manifest.Suffix) + ".parquet",
		Market: "spot", Kind: "diff", Symbol: "BTCUSDT", PeriodStart: "2026-11-21T00:00:00Z", PeriodSeconds: 86400,
		Rows: 3, SequenceChecked: true, GapCount: 0, Gaps: []manifest.GapEntry{}, Covered: []manifest.ReportEntry{}, Resets: []manifest.ResetEntry{},
		Quality: &manifest.Quality{Rows: 3, FirstReceivedTime: "2026-11-21T00:00:00.1Z", LastReceivedTime: "2026-11-21T23:59:59.9Z",
			Bridge: &manifest.Bridge{Snapshots: 2, Bridged: 2, FirstBridgeTime: "2026-11-21T00:00:00.2Z", LastBridgeTime: "2026-11-21T12:00:00Z", Restorable: true}}}
	data, err := manifest.Marshal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	p := filepath.Join(h.dataDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.files[rel] = data
	return data
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sealed builds the FileSealed message of a written file and sidecars.
func (h *harness) sealed(rel string, sidecars ...string) *depthcapv1.FileSealed {
	h.t.Helper()
	data, ok := h.files[rel]
	if !ok {
		h.t.Fatalf("no test file %s", rel)
	}
	m := &depthcapv1.FileSealed{Path: rel, Size: int64(len(data)), Sha256: sha256Hex(data), Market: depthcapv1.Market_MARKET_SPOT, Kind: depthcapv1.Kind_KIND_DIFF}
	for _, sc := range sidecars {
		d := h.files[sc]
		m.Sidecars = append(m.Sidecars, &depthcapv1.Sidecar{Path: sc, Size: int64(len(d)), Sha256: sha256Hex(d)})
	}
	return m
}

// publish sends a FileSealed message to the FILES work queue.
func (h *harness) publish(m *depthcapv1.FileSealed) {
	h.t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	h.publishRaw(md.FilesSubject(md.Spot, md.Diff), b)
}

func (h *harness) publishRaw(subject string, b []byte) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.js.Publish(ctx, subject, b); err != nil {
		h.t.Fatal(err)
	}
}

// filesPending is the number of messages left in the FILES work queue
// (acked and terminated messages are removed).
func (h *harness) filesPending() uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := h.js.Stream(ctx, md.StreamFiles)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

// object reads an object; nil when it does not exist.
func (h *harness) object(key string) []byte {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := h.s3.Client(h.t)
	o, err := c.GetObject(ctx, testBucket, key, minio.GetObjectOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.Code == "NoSuchKey" {
		return nil
	}
	if err != nil {
		h.t.Fatalf("get %s: %v", key, err)
	}
	return b
}

// keys lists the object keys under prefix.
func (h *harness) keys(prefix string) []string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []string
	for oi := range h.s3.Client(h.t).ListObjects(ctx, testBucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			h.t.Fatal(oi.Err)
		}
		out = append(out, oi.Key)
	}
	return out
}

func (h *harness) stat(key string) minio.ObjectInfo {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	oi, err := h.s3.Client(h.t).StatObject(ctx, testBucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		h.t.Fatalf("stat %s: %v", key, err)
	}
	return oi
}

func (h *harness) localExists(rel string) bool {
	_, err := os.Stat(filepath.Join(h.dataDir, filepath.FromSlash(rel)))
	return err == nil
}

func (h *harness) ledgerRecord(kind, rel string) string {
	return filepath.Join(h.dataDir, uploader.LedgerDir, kind, filepath.FromSlash(rel)+".json")
}

// checksumOf computes a full-object checksum of b, base64.
func checksumOf(ct minio.ChecksumType, b []byte) string {
	hs := ct.Hasher()
	hs.Write(b)
	return base64.StdEncoding.EncodeToString(hs.Sum(nil))
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func equalBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes (sha256 %s), want %d bytes (sha256 %s)", what, len(got), sha256Hex(got), len(want), sha256Hex(want))
	}
}
