//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

// settings are the knobs of a run, from E2E_* variables (defaults fit a
// 2-core CI box and about 5 minutes with warm caches).
type settings struct {
	Duration time.Duration // chaos phase (E2E_DURATION, 60s)
	Symbols  int           // symbols per market (E2E_SYMBOLS, 10)
	Seed     uint64        // books and fault schedule (E2E_SEED, random; printed)
	// Drops: "guarded" (default) drops one replica's connection at a time
	// on per-connection random schedules, never both replicas of a market
	// at once; "sim" uses SIM_DROP_MEAN, whose independent schedules can
	// take both replicas down together, which loses events for real.
	Drops    string
	DropMean time.Duration // mean time to a drop of each connection (E2E_DROP_MEAN, 12s)
	Skips    int           // injected sequence skips per market (E2E_SKIPS, 3)
	Keep     bool          // keep the run directory after a pass (E2E_KEEP=1)
}

func loadSettings(t *testing.T) settings {
	t.Helper()
	s := settings{Duration: 60 * time.Second, Symbols: 10, Seed: rand.Uint64() % 1_000_000, Drops: "guarded", DropMean: 12 * time.Second, Skips: 3}
	dur := func(k string, dst *time.Duration) {
		if v := os.Getenv(k); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				t.Fatalf("%s=%q: want a positive duration", k, v)
			}
			*dst = d
		}
	}
	num := func(k string, dst *int, lo int) {
		if v := os.Getenv(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo {
				t.Fatalf("%s=%q: want an integer >= %d", k, v, lo)
			}
			*dst = n
		}
	}
	dur("E2E_DURATION", &s.Duration)
	dur("E2E_DROP_MEAN", &s.DropMean)
	num("E2E_SYMBOLS", &s.Symbols, 2)
	num("E2E_SKIPS", &s.Skips, 0)
	if v := os.Getenv("E2E_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("E2E_SEED=%q: want an unsigned integer", v)
		}
		s.Seed = n
	}
	if v := os.Getenv("E2E_DROPS"); v != "" {
		if v != "guarded" && v != "sim" {
			t.Fatalf("E2E_DROPS=%q: want guarded or sim", v)
		}
		s.Drops = v
	}
	s.Keep = os.Getenv("E2E_KEEP") == "1"
	if s.Duration < 30*time.Second {
		t.Fatalf("E2E_DURATION=%s: want at least 30s (the fault schedule needs it)", s.Duration)
	}
	if s.Skips > s.Symbols {
		t.Fatalf("E2E_SKIPS=%d: at most E2E_SYMBOLS (%d), one symbol per skip", s.Skips, s.Symbols)
	}
	return s
}

// Pipeline constants the checks depend on.
const (
	period      = time.Minute
	grace       = 5 * time.Second
	bucket      = "depthcap-e2e"
	s3Prefix    = "md"
	mib         = 1 << 20
	ingestBuf   = 16 * mib // INGEST_PUBLISH_BUFFER_BYTES
	ingestHold  = 16 * mib // the rotation hold buffer (fixed in pkg/ingest)
	writerMem   = 64 * mib // WRITER_MEMORY_LIMIT
	writerPull  = 8 * mib  // WRITER_PULL_MAX_BYTES
	snapBuf     = 16 * mib // SNAPSHOT_PUBLISH_BUFFER
	uploadConc  = 4        // UPLOAD_CONCURRENCY
	uploadParts = 2        // UPLOAD_PART_CONCURRENCY
	uploadPart  = 5 * mib  // UPLOAD_PART_SIZE
	// goOverhead is what a Go service needs besides its configured
	// buffers: runtime, code, goroutine stacks, client libraries, and the
	// GC's headroom (GOGC=100 lets the heap grow to twice the live data
	// before a collection).
	goOverhead = 96 * mib
)

var markets = []string{"spot", "futures"}

// cluster is one run: the processes, their clients and what happened.
type cluster struct {
	t    *testing.T
	set  settings
	rng  *rand.Rand
	dir  string
	data string // DATA_DIR of writer and uploader
	// replayData is the DATA_DIR of a crash-free writer run over the
	// same stream at the end.
	replayData string
	g          *procs.Group
	bins       procs.Binaries

	nats       *procs.NATS
	s3         *procs.S3
	sim        *procs.Proc
	simc       map[string]simClient // by market
	collectors map[string][]*procs.Proc
	snap       *procs.Proc
	writer     *procs.Proc
	uploader   *procs.Proc

	symbols []string
	nc      *nats.Conn
	js      jetstream.JetStream

	limits map[string]memLimit // by process name

	mu       sync.Mutex
	timeline []event
	t0       time.Time
	failures []string // chaos-phase failures (reported at the end)
	busy     map[string]bool

	res        results
	summarized bool
}

// memLimit is a process's memory bound and how it was derived.
type memLimit struct {
	bytes int64
	how   string
}

type event struct {
	at   time.Duration
	what string
}

// note records an event of the run (printed in the summary and logged).
func (c *cluster) note(format string, args ...any) {
	c.mu.Lock()
	at := time.Duration(0)
	if !c.t0.IsZero() {
		at = time.Since(c.t0)
	}
	e := event{at: at.Round(100 * time.Millisecond), what: fmt.Sprintf(format, args...)}
	c.timeline = append(c.timeline, e)
	c.mu.Unlock()
	c.t.Logf("e2e %6s  %s", e.at, e.what)
}

// fail records a failure found while the run goes on.
func (c *cluster) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.failures = append(c.failures, msg)
	c.mu.Unlock()
	c.note("FAILURE: %s", msg)
}

// setBusy marks a process as being stopped or restarted on purpose, so
// the watchdog does not report it.
func (c *cluster) setBusy(name string, busy bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy[name] = busy
}

func (c *cluster) isBusy(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.busy[name]
}

// TestE2E runs the whole pipeline as separate processes under faults and
// proves, from the objects in S3, that nothing was lost or duplicated and
// that the only gaps are the injected exchange-side skips.
func TestE2E(t *testing.T) {
	start := time.Now()
	set := loadSettings(t)
	dir, err := os.MkdirTemp("", "depthcap-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, set: set, rng: rand.New(rand.NewPCG(set.Seed, 0xE2E)), dir: dir, data: filepath.Join(dir, "data"), replayData: filepath.Join(dir, "replay-data"),
		simc: map[string]simClient{}, collectors: map[string][]*procs.Proc{}, limits: map[string]memLimit{}, busy: map[string]bool{}, res: newResults()}
	t.Cleanup(func() {
		if t.Failed() || set.Keep {
			t.Logf("run directory kept: %s (logs/ has every process's output)", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	c.g = procs.NewGroup(t, dir)
	t.Cleanup(func() {
		// Log tails help when the run broke off or a process failed; a
		// failed check says what it found without them.
		c.mu.Lock()
		crashed := len(c.failures) > 0
		c.mu.Unlock()
		if t.Failed() && (!c.summarized || crashed) {
			for _, p := range c.g.Procs() {
				t.Logf("---- %s log (tail) ----\n%s", p.Name(), p.LogTail(3000))
			}
		}
	})
	t.Logf("e2e: seed %d, %d symbols per market, chaos %s, drops %s (mean %s), %d skips per market, run dir %s",
		set.Seed, set.Symbols, set.Duration, set.Drops, set.DropMean, set.Skips, dir)

	c.build()
	c.res.buildTime = time.Since(start)
	c.startAll()
	c.res.startTime = time.Since(start) - c.res.buildTime

	runStart := time.Now()
	c.chaos()
	c.finish()
	c.res.runTime = time.Since(runStart)

	verifyStart := time.Now()
	c.verify()
	c.res.verifyTime = time.Since(verifyStart)
	c.res.total = time.Since(start)
	c.summary()
}

// build builds the services and finds (or builds) nats-server and
// versitygw.
func (c *cluster) build() {
	// Binaries go to a directory removed at the end even when the run
	// directory is kept (they are ~200 MB).
	c.bins = procs.BuildServices(c.t, c.t.TempDir(),
		"binance-sim", "spot-ws", "futures-ws", "rest-snapshotter", "writer", "uploader")
	_ = procs.NATSServerBinary(c.t)
	_ = procs.VersityGWBinary(c.t)
}

// env is the environment every depthcap service gets.
func (c *cluster) env(metricsAddr string, extra map[string]string) map[string]string {
	e := map[string]string{
		"LOG_FORMAT":       "json",
		"LOG_LEVEL":        "info",
		"METRICS_ADDR":     metricsAddr,
		"SHUTDOWN_TIMEOUT": "20s",
		"NATS_URL":         c.nats.URL(),
	}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// startAll starts NATS, S3, the simulator, then the services, and waits
// until each is ready.
func (c *cluster) startAll() {
	t := c.t
	c.nats = c.g.AddNATS("nats")
	c.s3 = c.g.AddS3("versitygw")
	c.g.StartSampling(250 * time.Millisecond)

	c.nats.Start()
	c.s3.Start()
	ctx, cancel := ctxTimeout(60 * time.Second)
	defer cancel()
	procs.Must(t, c.nats.WaitReady(ctx))
	procs.Must(t, c.s3.WaitReady(ctx))
	procs.Must(t, c.s3.MakeBucket(ctx, bucket))

	// The simulator.
	spotAddr, futAddr := procs.Addr(t), procs.Addr(t)
	simEnv := map[string]string{
		"LOG_FORMAT": "json", "LOG_LEVEL": "info", "METRICS_ADDR": procs.Addr(t), "SHUTDOWN_TIMEOUT": "10s",
		"SIM_SPOT_ADDR": spotAddr, "SIM_FUTURES_ADDR": futAddr,
		"SIM_SYMBOLS": strconv.Itoa(c.set.Symbols), "SIM_SEED": strconv.FormatUint(c.set.Seed, 10),
		"SIM_BOOK_LEVELS": "1000",
	}
	if c.set.Drops == "sim" {
		simEnv["SIM_DROP_MEAN"] = c.set.DropMean.String()
	}
	c.sim = c.g.Add(procs.Spec{Name: "binance-sim", Path: c.bins["binance-sim"], Env: simEnv, MetricsAddr: simEnv["METRICS_ADDR"], StopTimeout: 20 * time.Second})
	c.sim.Start()
	procs.Must(t, c.sim.WaitReady(ctx))
	c.simc["spot"] = simClient{market: "spot", base: "http://" + spotAddr}
	c.simc["futures"] = simClient{market: "futures", base: "http://" + futAddr}
	spotSyms, err := c.simc["spot"].symbols(ctx)
	procs.Must(t, err)
	futSyms, err := c.simc["futures"].symbols(ctx)
	procs.Must(t, err)
	if len(spotSyms) != c.set.Symbols || strings.Join(spotSyms, ",") != strings.Join(futSyms, ",") {
		t.Fatalf("sim symbols: spot %v, futures %v; want the same %d", spotSyms, futSyms, c.set.Symbols)
	}
	c.symbols = spotSyms
	symList := strings.Join(c.symbols, ",")
	spotWS, spotREST := "ws://"+spotAddr, "http://"+spotAddr
	futWS, futREST := "ws://"+futAddr+"/public", "http://"+futAddr

	// The writer and the uploader share DATA_DIR.
	wAddr := procs.Addr(t)
	c.writer = c.g.Add(procs.Spec{Name: "writer", Path: c.bins["writer"], MetricsAddr: wAddr, StopTimeout: 40 * time.Second,
		Env: c.env(wAddr, map[string]string{
			"DATA_DIR":                   c.data,
			"WRITER_PERIOD":              period.String(),
			"WRITER_GRACE":               grace.String(),
			"WRITER_CHECKPOINT_INTERVAL": "5s",
			"WRITER_MEMORY_LIMIT":        strconv.Itoa(writerMem),
			"WRITER_PULL_MAX_BYTES":      strconv.Itoa(writerPull),
			"SHUTDOWN_TIMEOUT":           "30s",
		})})
	c.limits["writer"] = memLimit{writerMem + writerPull + goOverhead, "WRITER_MEMORY_LIMIT 64 MiB + WRITER_PULL_MAX_BYTES 8 MiB + 96 MiB Go overhead"}

	uAddr := procs.Addr(t)
	c.uploader = c.g.Add(procs.Spec{Name: "uploader", Path: c.bins["uploader"], MetricsAddr: uAddr,
		Env: c.env(uAddr, map[string]string{
			"DATA_DIR":                c.data,
			"S3_ENDPOINT":             c.s3.Endpoint(),
			"S3_BUCKET":               bucket,
			"S3_ACCESS_KEY_ID":        procs.S3AccessKey,
			"S3_SECRET_ACCESS_KEY":    procs.S3SecretKey,
			"S3_REGION":               procs.S3Region,
			"S3_PREFIX":               s3Prefix,
			"UPLOAD_CONCURRENCY":      strconv.Itoa(uploadConc),
			"UPLOAD_PART_CONCURRENCY": strconv.Itoa(uploadParts),
			"UPLOAD_PART_SIZE":        "5MiB",
			"UPLOAD_RETRY_MIN":        "200ms",
			"UPLOAD_RETRY_MAX":        "2s",
			"UPLOAD_ACK_WAIT":         "15s",
		})})
	c.limits["uploader"] = memLimit{uploadConc*uploadParts*uploadPart + goOverhead, "UPLOAD_CONCURRENCY 4 × UPLOAD_PART_CONCURRENCY 2 × UPLOAD_PART_SIZE 5 MiB + 96 MiB Go overhead"}

	sAddr := procs.Addr(t)
	c.snap = c.g.Add(procs.Spec{Name: "rest-snapshotter", Path: c.bins["rest-snapshotter"], MetricsAddr: sAddr,
		Env: c.env(sAddr, map[string]string{
			"DATA_DIR":                filepath.Join(c.dir, "snapshotter"),
			"SYMBOLS":                 symList,
			"SOURCE_ID":               "e2e/snapshotter",
			"SPOT_REST_URL":           spotREST,
			"FUTURES_REST_URL":        futREST,
			"SPOT_WS_URL":             spotWS,
			"FUTURES_WS_URL":          futWS,
			"SNAPSHOT_INTERVAL":       "5s",
			"SNAPSHOT_SPOT_LIMIT":     "100",
			"SNAPSHOT_FUTURES_LIMIT":  "50",
			"SNAPSHOT_PUBLISH_BUFFER": strconv.Itoa(snapBuf),
		})})
	c.limits["rest-snapshotter"] = memLimit{snapBuf + goOverhead, "SNAPSHOT_PUBLISH_BUFFER 16 MiB + 96 MiB Go overhead"}

	for _, m := range markets {
		for _, r := range []string{"a", "b"} {
			name := m + "-ws-" + r
			addr := procs.Addr(t)
			e := c.env(addr, map[string]string{
				"DATA_DIR":                    filepath.Join(c.dir, name),
				"SYMBOLS":                     symList,
				"SOURCE_ID":                   "e2e/" + name,
				"INGEST_PUBLISH_BUFFER_BYTES": strconv.Itoa(ingestBuf),
			})
			if m == "spot" {
				e["SPOT_WS_URL"], e["SPOT_REST_URL"] = spotWS, spotREST
			} else {
				e["FUTURES_WS_URL"], e["FUTURES_REST_URL"] = futWS, futREST
			}
			p := c.g.Add(procs.Spec{Name: name, Path: c.bins[m+"-ws"], MetricsAddr: addr, Env: e})
			c.collectors[m] = append(c.collectors[m], p)
			c.limits[name] = memLimit{ingestBuf + ingestHold + goOverhead, "INGEST_PUBLISH_BUFFER_BYTES 16 MiB + 16 MiB rotation hold buffer + 96 MiB Go overhead"}
		}
	}

	// The writer first (it provisions the streams too), then the rest.
	c.writer.Start()
	procs.Must(t, c.writer.WaitReady(ctx))
	c.uploader.Start()
	c.snap.Start()
	for _, m := range markets {
		for _, p := range c.collectors[m] {
			p.Start()
		}
	}
	for _, p := range append([]*procs.Proc{c.uploader, c.snap}, append(c.collectors["spot"], c.collectors["futures"]...)...) {
		procs.Must(t, p.WaitReady(ctx))
	}

	c.nc, err = nats.Connect(c.nats.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	procs.Must(t, err)
	t.Cleanup(c.nc.Close)
	c.js, err = jetstream.New(c.nc)
	procs.Must(t, err)
	c.t0 = time.Now()
	c.note("all %d processes ready; symbols %s", len(c.g.Procs()), symList)
}
