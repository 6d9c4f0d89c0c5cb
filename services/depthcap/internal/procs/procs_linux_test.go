//go:build linux

package procs

// These read /proc and run processes with Pdeathsig: Linux only, as the
// package itself (procs.go sets SysProcAttr.Pdeathsig).

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestReadSelf(t *testing.T) {
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
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("POSIX sh is part of every Linux this harness runs on: %v", err)
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
