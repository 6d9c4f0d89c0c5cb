package uploader_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
)

// buildUploader builds ./cmd/uploader into a temp dir of the test.
func buildUploader(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "uploader")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/uploader").CombinedOutput(); err != nil {
		t.Fatalf("build cmd/uploader: %v\n%s", err, out)
	}
	return bin
}

// proc is an uploader process.
type proc struct {
	t       testing.TB
	cmd     *exec.Cmd
	metrics string // host:port of /metrics
	done    chan struct{}
	log     string
}

func startProc(t testing.TB, bin string, env map[string]string, name string) *proc {
	t.Helper()
	p := &proc{t: t, metrics: fmt.Sprintf("127.0.0.1:%d", bustest.FreePort(t)), done: make(chan struct{}), log: filepath.Join(t.TempDir(), name+".log")}
	env["METRICS_ADDR"] = p.metrics
	env["LOG_FORMAT"] = "json"
	env["LOG_LEVEL"] = "info"
	p.cmd = exec.Command(bin)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); _ = f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("%s log:\n%s", name, tail(b, 8192))
		}
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Errorf("process did not exit 30s after %v", sig)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// metric scrapes one sample of the process's /metrics; -1 when absent.
func (p *proc) metric(name, labels string) float64 {
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	want := name
	if labels != "" {
		want += "{" + labels + "}"
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, want+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return -1
}

// incompleteBytes is the size of the parts stored for unfinished
// multipart uploads of key.
func (h *harness) incompleteBytes(key string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := h.s3.Client(h.t)
	var n int64
	for u := range c.ListIncompleteUploads(ctx, testBucket, key, true) {
		if u.Err != nil {
			h.t.Fatal(u.Err)
		}
		if u.Key != key {
			continue
		}
		parts, err := (&minio.Core{Client: c}).ListObjectParts(ctx, testBucket, key, u.UploadID, 0, 1000)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, p := range parts.ObjectParts {
			n += p.Size
		}
	}
	return n
}

// Proves: after the uploader process is killed with SIGKILL in the middle
// of a multipart upload and started again, the file is uploaded exactly
// once and verified: the killed process never completed the object; the
// restarted one uploads it once (its metrics: uploaded 1,
// exists_identical 0), verifies it, records it, acks the FILES message,
// cleans up the dead upload's parts, and exits cleanly on SIGTERM.
func TestCrashRecovery(t *testing.T) {
	h := newHarness(t)
	bin := buildUploader(t)
	const rel = "spot/diff_orderbooks/BTCUSDT/2026-11-21.parquet"
	const key = "md/" + rel
	data := h.writeFile(rel, 16<<20+777, 42)
	h.publish(h.sealed(rel))
	env := func() map[string]string {
		return h.env(map[string]string{
			"UPLOAD_MAX_BANDWIDTH":    "4MiB", // about 4s per file: time to kill it mid-way
			"UPLOAD_CONCURRENCY":      "1",
			"UPLOAD_PART_CONCURRENCY": "1",
			"UPLOAD_ACK_WAIT":         "3s",
			"UPLOAD_SCAN_INTERVAL":    "1h",
		})
	}

	p1 := startProc(t, bin, env(), "uploader-1")
	waitFor(t, 60*time.Second, "the first process to store a part", func() bool { return h.incompleteBytes(key) >= 5<<20 })
	p1.signal(syscall.SIGKILL)
	if obj := h.object(key); obj != nil {
		t.Fatal("the object exists after the kill: the kill was not mid-upload")
	}
	if !h.localExists(rel) {
		t.Fatal("local file gone after the crash")
	}

	p2 := startProc(t, bin, env(), "uploader-2")
	waitFor(t, 90*time.Second, "the restarted process to verify, record and ack", func() bool {
		_, err := os.Stat(h.ledgerRecord("verified", rel))
		return err == nil && h.filesPending() == 0 && p2.metric("depthcap_upload_messages_total", `action="ack"`) == 1
	})
	if n := p2.metric("depthcap_upload_files_total", `result="uploaded"`); n != 1 {
		t.Errorf("restarted process uploaded %v times, want 1", n)
	}
	if n := p2.metric("depthcap_upload_files_total", `result="exists_identical"`); n != 0 {
		t.Errorf("exists_identical = %v, want 0 (the killed process completed nothing)", n)
	}
	if keys := h.keys(""); len(keys) != 1 || keys[0] != key {
		t.Errorf("bucket holds %v, want exactly [%s]", keys, key)
	}
	equalBytes(t, key, h.object(key), data)
	if c := h.stat(key).ChecksumCRC64NVME; c != checksumOf(minio.ChecksumCRC64NVME, data) {
		t.Errorf("CRC64NVME %q, want %q", c, checksumOf(minio.ChecksumCRC64NVME, data))
	}
	if n := h.incompleteBytes(key); n != 0 {
		t.Errorf("%d bytes of dead multipart uploads left behind", n)
	}
	p2.signal(syscall.SIGTERM)
	if code := p2.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}
