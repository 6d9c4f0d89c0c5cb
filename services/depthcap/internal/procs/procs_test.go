package procs

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	const text = `# HELP depthcap_writer_processed_seq Stream sequence.
# TYPE depthcap_writer_processed_seq gauge
depthcap_writer_processed_seq 12345
depthcap_upload_files_total{result="uploaded"} 7
depthcap_upload_files_total{result="conflict"} 0
depthcap_x{a="q\"uote",b="back\\slash",c="new\nline"} 1.5e3
depthcap_h_bucket{le="+Inf"} 3
go_gc_duration_seconds{quantile="0.5"} NaN
up 1 1700000000000
`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels []string
		want   float64
		found  bool
	}{
		{"depthcap_writer_processed_seq", nil, 12345, true},
		{"depthcap_upload_files_total", []string{"result", "uploaded"}, 7, true},
		{"depthcap_upload_files_total", []string{"result", "conflict"}, 0, true},
		{"depthcap_upload_files_total", []string{"result", "missing"}, 0, false},
		{"depthcap_x", []string{"a", `q"uote`, "b", `back\slash`, "c", "new\nline"}, 1500, true},
		{"depthcap_h_bucket", []string{"le", "+Inf"}, 3, true},
		{"up", nil, 1, true},
		{"absent", nil, 0, false},
	}
	for _, tc := range tests {
		got, found := m.Get(tc.name, tc.labels...)
		if got != tc.want || found != tc.found {
			t.Errorf("Get(%s, %v) = %v, %v; want %v, %v", tc.name, tc.labels, got, found, tc.want, tc.found)
		}
	}
	if got := m.Sum("depthcap_upload_files_total"); got != 7 {
		t.Errorf("Sum = %v, want 7", got)
	}
	if v := m.Value("go_gc_duration_seconds"); !math.IsNaN(v) {
		t.Errorf("NaN sample = %v", v)
	}
	for _, bad := range []string{`x{a="1"`, `x{a=1} 2`, `x`, `x{a="1"} y`} {
		if _, err := ParseMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseMetrics(%q) succeeded", bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		line    string
		want    int64
		wantErr bool
	}{
		{"1234 (my proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 8 0 55 0 0", 281, false},
		{"1 (a) b c) R 0 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0", 10, false},
		{"garbage", 0, true},
		{"1 (x) S 1 2", 0, true},
	}
	for _, tc := range tests {
		got, err := parseStatCPU([]byte(tc.line))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseStatCPU(%q) = %d, %v; want %d, err %v", tc.line, got, err, tc.want, tc.wantErr)
		}
	}
}

func requireLinux(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
}

func TestReadSelf(t *testing.T) {
	requireLinux(t)
	st, err := ReadProcStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.RSS <= 0 || st.HWM < st.RSS {
		t.Errorf("status of self: %+v", st)
	}
	if _, err := ReadCPUTicks(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ports, err := TCPLocalPorts(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if port := l.Addr().(*net.TCPAddr).Port; !ports[port] {
		t.Errorf("TCPLocalPorts of self lacks listening port %d: %v", port, ports)
	}
}

// TestProcLifecycle starts a shell that exits 0 on SIGTERM, samples it,
// stops it, starts it again, kills it, and checks the counts, the exit
// status and the log.
func TestProcLifecycle(t *testing.T) {
	requireLinux(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	g := NewGroup(t, t.TempDir())
	p := g.Add(Spec{Name: "sh", Path: sh, Args: []string{"-c", `trap 'echo bye; exit 0' TERM; echo "hello $GREETING"; while :; do sleep 0.05; done`},
		Env: map[string]string{"GREETING": "world"}, StopTimeout: 5 * time.Second})
	g.StartSampling(20 * time.Millisecond)
	p.Start()
	deadline := time.Now().Add(5 * time.Second)
	for !p.LogContains("hello world") || p.Usage().Samples == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no greeting or sample; log:\n%s", p.LogTail(1000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p.Pid() == 0 || !p.Running() {
		t.Fatal("not running")
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v\n%s", err, p.LogTail(1000))
	}
	if p.Running() || !p.LogContains("bye") {
		t.Fatalf("after Stop: running %v, log:\n%s", p.Running(), p.LogTail(1000))
	}
	p.Start()
	p.Kill()
	var ee *exec.ExitError
	if err := p.ExitErr(); !errors.As(err, &ee) {
		t.Fatalf("exit after SIGKILL: %v", err)
	}
	if p.Starts() != 2 || p.Stops() != 1 || p.Kills() != 1 {
		t.Errorf("starts %d stops %d kills %d, want 2 1 1", p.Starts(), p.Stops(), p.Kills())
	}
	u := p.Usage()
	if u.PeakRSS <= 0 || u.LastRSS != 0 {
		t.Errorf("usage %+v: want a peak and no last RSS after exit", u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err == nil {
		t.Error("WaitReady without a metrics address succeeded")
	}
}
