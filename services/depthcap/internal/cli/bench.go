package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/depthcap/depthcap/services/depthcap/internal/bench"
)

func init() {
	register(command{name: "bench", summary: "the whole pipeline's benchmark, every service its own process (make bench): depthcap bench [--scenario seed50|market|all] [--out bench/results]", run: runBench})
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// The ceiling publisher is this binary again, as its own process.
	if len(args) > 0 && args[0] == "publish" {
		if len(args) != 3 {
			_, _ = fmt.Fprintln(stderr, "usage: depthcap bench publish REQUEST.json RESULT.json (started by depthcap bench)")
			return ExitUsage
		}
		if err := bench.RunPublisher(ctx, args[1], args[2], stdout); err != nil {
			_, _ = fmt.Fprintf(stderr, "depthcap bench publish: %v\n", err)
			return ExitFound
		}
		return ExitOK
	}
	o := bench.DefaultOptions()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	scenario := fs.String("scenario", "all", "seed50, market or all")
	fs.StringVar(&o.Out, "out", o.Out, "results directory: <date>-<scenario>.md and .json")
	fs.StringVar(&o.Dir, "dir", "", "work directory (stores, logs); default a new one under $TMPDIR, removed after a successful run")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory")
	fs.DurationVar(&o.Window, "window", o.Window, "measurement window of each rate step")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "warm-up of each rate step once every process is ready")
	fs.IntVar(&o.MaxSteps, "max-steps", o.MaxSteps, "rate steps per scenario")
	fs.IntVar(&o.Backlog, "backlog", 0, "messages in the replay backlog (default 1000000; smaller is for trying the command out)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "simulator and generator seed")
	fs.DurationVar(&o.Profile, "profile", 0, "CPU-profile the writer's replay for this long (into the work directory; use with --keep)")
	fs.StringVar(&o.Readme, "readme", "", "README whose performance table (between <!-- bench:begin --> and <!-- bench:end -->) is replaced by this run's")
	fs.Usage = func() {
		_, _ = fmt.Fprintln(stderr, "usage: depthcap bench [--scenario seed50|market|all] [--out bench/results]")
		_, _ = fmt.Fprintln(stderr, "\nRuns binance-sim, nats-server, spot-ws, futures-ws, rest-snapshotter, writer and uploader as")
		_, _ = fmt.Fprintln(stderr, "separate processes (built from this workspace with go build) and measures the JetStream ceiling,")
		_, _ = fmt.Fprintln(stderr, "the highest sustained rate, CPU, memory, bytes on disk, latency, replay and dedup memory.")
		fs.PrintDefaults()
	}
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	switch *scenario {
	case "all":
		o.Scenarios = bench.ScenarioNames
	case "seed50", "market":
		o.Scenarios = []string{*scenario}
	default:
		_, _ = fmt.Fprintf(stderr, "depthcap bench: --scenario %q: want seed50, market or all\n", *scenario)
		return ExitUsage
	}
	if o.Window < 5*time.Second || o.Warmup < 0 || o.MaxSteps < 1 || (o.Backlog != 0 && o.Backlog < 100_000) {
		_, _ = fmt.Fprintln(stderr, "depthcap bench: --window >= 5s, --warmup >= 0, --max-steps >= 1 and --backlog >= 100000")
		return ExitUsage
	}
	self, err := os.Executable()
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap bench: %v\n", err)
		return ExitFound
	}
	o.Self = self
	o.Progress = stdout
	start := time.Now()
	res, err := bench.Run(ctx, o)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap bench: %v\n", err)
		return ExitFound
	}
	_, _ = fmt.Fprintf(stdout, "\nbench: done in %s; results in %s\n\n", time.Since(start).Round(time.Second), o.Out)
	bench.WriteReadmeTable(stdout, res)
	_, _ = fmt.Fprintln(stdout)
	for _, r := range res {
		for _, t := range r.Targets {
			_, _ = fmt.Fprintf(stdout, "%-7s %-8s %s: %s\n", r.Scenario, strings.ToUpper(t.Status()), t.Name, t.Got)
		}
	}
	return ExitOK
}
