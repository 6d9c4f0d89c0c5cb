// Package bench is `depthcap bench` (`make bench`): the whole pipeline's
// benchmark on one machine. binance-sim (synthetic), a nats-server
// process, spot-ws, futures-ws, rest-snapshotter, writer and uploader
// (with a versitygw S3 server) each run as their own OS process, built
// from this workspace and driven through internal/procs, the harness of
// `make e2e`. One run measures, per scenario:
//
//   - the JetStream ceiling: a plain async publisher process sending the
//     scenario's envelopes (built exactly as the collectors build them)
//     with and without Nats-Msg-Id, and with a 2m and a 100ms Duplicates
//     window (whose RSS difference is the dedup window's memory);
//   - the writer's replay of that 1,000,000-message backlog, the bytes a
//     checkpoint and a sealed Parquet file take per row;
//   - the highest sustained end-to-end rate: steps of the simulator's rate
//     until the writer's lag or the collectors' buffers grow or anything
//     is lost, with CPU per frame, peak RSS and receive → JetStream
//     latency of every process at each step;
//   - the collectors alone against the ceiling.
//
// The results go to bench/results/<date>-<scenario>.{md,json}.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

// Options configure a run.
type Options struct {
	Scenarios []string      // seed50, market
	Out       string        // results directory (bench/results)
	Dir       string        // work directory; empty: a new one under the OS temp dir
	Keep      bool          // keep the work directory (logs, stores)
	Seed      uint64        // simulator and generator seed
	Warmup    time.Duration // after every process is ready, before a step's window
	Window    time.Duration // a step's measurement window
	MaxSteps  int           // rate steps per scenario
	Backlog   int           // replay backlog (messages); 0: the scenario's (1,000,000)
	ReplayMax time.Duration // the writer's replay is timed until caught up or this long
	Self      string        // the depthcap binary (runs the publisher process)
	Readme    string        // README to update between the bench markers (UpdateReadme); empty: none
	// Profile, if set, is a CPU profile's length: the writer's replay is
	// profiled for that long from its first processed message, into
	// <Dir>/<scenario>-writer-replay.pprof (kept with Keep).
	Profile  time.Duration
	Progress io.Writer
}

// DefaultOptions fit both scenarios in about 12 minutes on a 2-core
// machine with a warm build cache.
func DefaultOptions() Options {
	return Options{Scenarios: ScenarioNames, Out: "bench/results", Seed: 1, Warmup: 5 * time.Second, Window: 20 * time.Second, MaxSteps: 5, ReplayMax: 90 * time.Second}
}

// Run runs the scenarios and writes their results. It returns the
// results of the scenarios that completed.
func Run(ctx context.Context, o Options) (res []*ScenarioResult, err error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	start := time.Now()
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "depthcap-bench-"); err != nil {
			return nil, err
		}
	}
	tb := newRunTB(o.Progress, dir)
	defer func() {
		tb.runCleanups()
		if !o.Keep && err == nil {
			_ = os.RemoveAll(dir)
		} else {
			_, _ = fmt.Fprintf(o.Progress, "work directory kept: %s (logs/ of every phase)\n", dir)
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = errors.New(f.msg)
		}
	}()
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("results directory: %w", err)
	}
	_, _ = fmt.Fprintf(o.Progress, "bench: work directory %s\n", dir)
	bins := procs.BuildServices(tb, filepath.Join(dir, "bin"), "binance-sim", "spot-ws", "futures-ws", "rest-snapshotter", "writer", "uploader")
	_ = procs.NATSServerBinary(tb)
	_ = procs.VersityGWBinary(tb)
	env := describeMachine()
	env.BuildSeconds = time.Since(start).Seconds()
	var all []*ScenarioResult
	for _, name := range o.Scenarios {
		sc, ok := Scenarios[name]
		if !ok {
			return all, fmt.Errorf("unknown scenario %q (want %s)", name, strings.Join(ScenarioNames, ", "))
		}
		if o.Backlog > 0 {
			sc.ReplayEvents = o.Backlog
			sc.CeilingEvents = min(sc.CeilingEvents, max(markEvery, o.Backlog*2/5/markEvery*markEvery))
		}
		r := &scenarioRun{o: o, tb: tb, sc: sc, dir: filepath.Join(dir, sc.Name), bins: bins, env: env}
		sr, err := r.run(ctx)
		if err != nil {
			return all, fmt.Errorf("scenario %s: %w", name, err)
		}
		all = append(all, sr)
		if err := WriteResults(o.Out, sc.Name, []*ScenarioResult{sr}, time.Since(start)); err != nil {
			return all, err
		}
	}
	if o.Readme != "" {
		if err := UpdateReadme(o.Readme, o.Out, all); err != nil {
			return all, err
		}
	}
	return all, nil
}

// Machine describes where a run happened.
type Machine struct {
	CPUs         int     `json:"cpus"`
	CPUModel     string  `json:"cpu_model"`
	MemTotal     string  `json:"mem_total"`
	Kernel       string  `json:"kernel"`
	Go           string  `json:"go"`
	Commit       string  `json:"commit"`
	BuildSeconds float64 `json:"build_s"`
	PageFaultUS  float64 `json:"page_fault_us"` // first-touch page fault, µs per page
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), PageFaultUS: pageFaultUS()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if root, err := procs.RepoRoot(); err == nil {
		if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
			m.Commit = strings.TrimSpace(string(out))
			if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
				m.Commit += "+dirty"
			}
		}
	}
	if m.Commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					m.Commit = s.Value
				}
			}
		}
	}
	return m
}

// fatal is how runTB stops a run (procs fails its testing.TB).
type fatal struct{ msg string }

// runTB is the testing.TB procs needs, outside a test: failures panic
// with fatal (recovered by Run), cleanups run when Run returns, logs go
// to the progress writer. Methods procs does not call are left to the nil
// embedded interface.
type runTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	out      io.Writer
	dir      string
	failed   bool
}

func newRunTB(out io.Writer, dir string) *runTB { return &runTB{out: out, dir: dir} }

func (t *runTB) Helper()      {}
func (t *runTB) Name() string { return "bench" }
func (t *runTB) Log(args ...any) {
	_, _ = fmt.Fprintln(t.out, args...)
}
func (t *runTB) Logf(format string, args ...any) {
	_, _ = fmt.Fprintf(t.out, format+"\n", args...)
}
func (t *runTB) Error(args ...any) { t.Fatal(args...) }
func (t *runTB) Errorf(format string, args ...any) {
	t.Fatalf(format, args...)
}
func (t *runTB) Fatal(args ...any) {
	t.setFailed()
	panic(fatal{fmt.Sprint(args...)})
}
func (t *runTB) Fatalf(format string, args ...any) {
	t.setFailed()
	panic(fatal{fmt.Sprintf(format, args...)})
}
func (t *runTB) FailNow()     { t.Fatal("failed") }
func (t *runTB) Fail()        { t.setFailed() }
func (t *runTB) Failed() bool { t.mu.Lock(); defer t.mu.Unlock(); return t.failed }
func (t *runTB) setFailed()   { t.mu.Lock(); t.failed = true; t.mu.Unlock() }
func (t *runTB) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}
func (t *runTB) TempDir() string {
	d, err := os.MkdirTemp(t.dir, "tmp-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	return d
}

// runCleanups runs the registered cleanups, last first.
func (t *runTB) runCleanups() {
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		f()
	}
}
