// Package procs orchestrates depthcap's services as separate OS processes
// for end-to-end tests and benchmarks: it builds the binaries (the
// services, nats-server, versitygw), starts, stops (SIGTERM), kills
// (SIGKILL) and restarts processes with an explicit environment, picks
// free ports, waits for /readyz, scrapes /metrics, and samples each
// process's memory (RSS, high-water mark) and CPU time from /proc.
//
// A Group owns its processes: every process still running when the test
// ends is killed (by its own pid, never by name), and each process's
// output goes to <Group.Dir>/logs/<name>.log, one file across restarts.
// Sampling needs Linux (/proc); elsewhere the samples stay empty.
package procs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Spec describes a process.
type Spec struct {
	Name string   // unique within the group; names the log file
	Path string   // executable
	Args []string // arguments
	// Env is the whole environment of the process (besides PATH, HOME and
	// TMPDIR, which are inherited): no other variable of the test leaks
	// into a service's configuration.
	Env map[string]string
	Dir string // working directory; empty: the group's directory
	// MetricsAddr is host:port of the process's /metrics, /readyz and
	// /healthz (the METRICS_ADDR of depthcap services), if it has them.
	MetricsAddr string
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL
	// (default 30s).
	StopTimeout time.Duration
}

// Group is a set of processes of one test run.
type Group struct {
	tb  testing.TB
	Dir string // run directory: logs/ and whatever the test puts there

	mu    sync.Mutex
	procs []*Proc

	sampleEvery time.Duration
	stopSampler chan struct{}
	samplerDone chan struct{}
}

// NewGroup returns a group whose files live in dir (created if needed).
// Processes are killed and the sampler stopped at test cleanup.
func NewGroup(tb testing.TB, dir string) *Group {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		tb.Fatalf("procs: %v", err)
	}
	g := &Group{tb: tb, Dir: dir, sampleEvery: 200 * time.Millisecond}
	tb.Cleanup(g.Close)
	return g
}

// Close kills every running process of the group and stops sampling. It
// is idempotent.
func (g *Group) Close() {
	g.StopSampling()
	g.mu.Lock()
	ps := append([]*Proc(nil), g.procs...)
	g.mu.Unlock()
	for _, p := range ps {
		p.Kill()
	}
}

// Add registers a process (not started).
func (g *Group) Add(s Spec) *Proc {
	g.tb.Helper()
	if s.Name == "" || s.Path == "" {
		g.tb.Fatalf("procs: spec needs a name and a path: %+v", s)
	}
	if s.Dir == "" {
		s.Dir = g.Dir
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = 30 * time.Second
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.procs {
		if p.spec.Name == s.Name {
			g.tb.Fatalf("procs: duplicate process name %q", s.Name)
		}
	}
	p := &Proc{spec: s, g: g, logPath: filepath.Join(g.Dir, "logs", s.Name+".log")}
	g.procs = append(g.procs, p)
	return p
}

// Procs returns the group's processes in the order they were added.
func (g *Group) Procs() []*Proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*Proc(nil), g.procs...)
}

// Proc returns the process named name, or nil.
func (g *Group) Proc(name string) *Proc {
	for _, p := range g.Procs() {
		if p.spec.Name == name {
			return p
		}
	}
	return nil
}

// Proc is one process, possibly started several times.
type Proc struct {
	spec    Spec
	g       *Group
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current incarnation exited
	exitErr error
	starts  int
	kills   int
	stops   int
	stat    usage // accumulated over incarnations
	cur     usage // current incarnation (last sample)
}

// Name is the spec's name.
func (p *Proc) Name() string { return p.spec.Name }

// Spec returns a copy of the spec.
func (p *Proc) Spec() Spec { return p.spec }

// SetEnv changes one variable for the next start.
func (p *Proc) SetEnv(k, v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.spec.Env == nil {
		p.spec.Env = map[string]string{}
	}
	p.spec.Env[k] = v
}

// LogPath is the file that holds the process's output.
func (p *Proc) LogPath() string { return p.logPath }

// Start starts the process. It fails the test if it is already running
// or cannot be started.
func (p *Proc) Start() {
	p.g.tb.Helper()
	if err := p.start(); err != nil {
		p.g.tb.Fatalf("procs: %v", err)
	}
}

func (p *Proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("start %s: already running (pid %d)", p.spec.Name, p.cmd.Process.Pid)
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: log: %w", p.spec.Name, err)
	}
	_, _ = fmt.Fprintf(logf, "=== procs: start #%d of %s at %s\n", p.starts+1, p.spec.Name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Dir = p.spec.Dir
	cmd.Env = environ(p.spec.Env)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Own process group (a ^C of the test does not reach the services
	// before the test's cleanup stops them in order), and SIGKILL when the
	// test process dies, so that nothing outlives a crashed test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", p.spec.Name, err)
	}
	p.cmd = cmd
	p.starts++
	p.cur = usage{}
	done := make(chan struct{})
	p.done = done
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		p.mu.Lock()
		p.exitErr = err
		p.stat.add(p.cur)
		p.cur = usage{}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// environ builds a process environment: PATH, HOME and TMPDIR of the test
// process, then env.
func environ(env map[string]string) []string {
	var out []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			if _, set := env[k]; !set {
				out = append(out, k+"="+v)
			}
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// Pid is the pid of the running incarnation, or 0.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || !p.runningLocked() {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process is running.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && p.runningLocked()
}

func (p *Proc) runningLocked() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Exited returns a channel closed when the current incarnation exits (nil
// if it never started).
func (p *Proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// ExitErr is the exit error of the last incarnation (nil: exit status 0).
func (p *Proc) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Starts, Kills and Stops count what was done to the process.
func (p *Proc) Starts() int { p.mu.Lock(); defer p.mu.Unlock(); return p.starts }

// Kills counts SIGKILLs sent by Kill to a running incarnation.
func (p *Proc) Kills() int { p.mu.Lock(); defer p.mu.Unlock(); return p.kills }

// Stops counts SIGTERM stops.
func (p *Proc) Stops() int { p.mu.Lock(); defer p.mu.Unlock(); return p.stops }

// Signal sends sig to the running incarnation (by pid).
func (p *Proc) Signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || !p.runningLocked() {
		return fmt.Errorf("%s is not running", p.spec.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// ErrStopTimeout is returned by Stop when the process did not exit within
// its StopTimeout after SIGTERM and was killed.
var ErrStopTimeout = errors.New("did not exit after SIGTERM; killed")

// Stop sends SIGTERM and waits for the exit, up to the spec's StopTimeout,
// then SIGKILLs. It returns the exit error (nil for status 0), or
// ErrStopTimeout. Stopping a process that is not running returns nil.
func (p *Proc) Stop() error {
	p.mu.Lock()
	if p.cmd == nil || !p.runningLocked() {
		p.mu.Unlock()
		return nil
	}
	cmd, done := p.cmd, p.done
	p.stops++
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return p.ExitErr()
	case <-time.After(p.spec.StopTimeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s: %w (%s)", p.spec.Name, ErrStopTimeout, p.spec.StopTimeout)
	}
}

// Kill sends SIGKILL (a crash, not a shutdown) and waits for the exit. It
// does nothing if the process is not running.
func (p *Proc) Kill() {
	p.mu.Lock()
	if p.cmd == nil || !p.runningLocked() {
		p.mu.Unlock()
		return
	}
	cmd, done := p.cmd, p.done
	p.kills++
	p.mu.Unlock()
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops (SIGTERM) and starts the process again.
func (p *Proc) Restart() error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.start()
}

// LogTail returns the last n bytes of the process's log.
func (p *Proc) LogTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// LogContains reports whether the process's log contains s.
func (p *Proc) LogContains(s string) bool {
	b, err := os.ReadFile(p.logPath)
	return err == nil && strings.Contains(string(b), s)
}

// MetricsURL is http://<MetricsAddr><path>.
func (p *Proc) MetricsURL(path string) string { return "http://" + p.spec.MetricsAddr + path }

// WaitReady polls the process's /readyz until it answers 200, the process
// exits, or ctx ends.
func (p *Proc) WaitReady(ctx context.Context) error {
	if p.spec.MetricsAddr == "" {
		return fmt.Errorf("%s has no metrics address", p.spec.Name)
	}
	return p.WaitHTTP(ctx, p.MetricsURL("/readyz"))
}

// WaitHTTP polls url until it answers 200, the process exits, or ctx ends.
// The error says what the last answer was.
func (p *Proc) WaitHTTP(ctx context.Context, url string) error {
	var last string
	for {
		code, body, err := httpGet(ctx, url, time.Second)
		switch {
		case err == nil && code == 200:
			return nil
		case err != nil:
			last = err.Error()
		default:
			last = fmt.Sprintf("status %d: %s", code, strings.TrimSpace(truncate(body, 300)))
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("%s exited while waiting for %s (%v); last answer: %s", p.spec.Name, url, p.ExitErr(), last)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w; last answer: %s", p.spec.Name, url, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Scrape reads the process's /metrics.
func (p *Proc) Scrape(ctx context.Context) (Metrics, error) {
	if p.spec.MetricsAddr == "" {
		return nil, fmt.Errorf("%s has no metrics address", p.spec.Name)
	}
	return Scrape(ctx, p.MetricsURL("/metrics"))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
