// Package cli is the depthcap command: the all-in-one pipeline (run,
// demo) and the tools (import, verify, book, tail, healthcheck).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/svc"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitFound = 1 // a tool found a problem (verify), or a run failed
	ExitUsage = 2 // bad command line or configuration
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands []command

func register(c command) { commands = append(commands, c) }

// Main runs the command line args (without the program name) and returns
// the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	sort.Slice(commands, func(i, j int) bool { return commands[i].name < commands[j].name })
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	_, _ = fmt.Fprintf(stderr, "depthcap: unknown command %q\n\n", args[0])
	usage(stderr)
	return ExitUsage
}

func usage(w io.Writer) {
	_, _ = fmt.Fprintln(w, "usage: depthcap <command> [flags]")
	_, _ = fmt.Fprintln(w)
	_, _ = fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		_, _ = fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	_, _ = fmt.Fprintln(w)
	_, _ = fmt.Fprintln(w, "Settings come from the environment (see the README's configuration table);")
	_, _ = fmt.Fprintln(w, "'depthcap <command> -h' lists a command's flags.")
}

// newLogger builds the logger from LOG_FORMAT/LOG_LEVEL.
func newLogger(stderr io.Writer) (*zap.Logger, error) {
	lc := svc.LogConfig{LogFormat: envOr("LOG_FORMAT", "auto"), LogLevel: envOr("LOG_LEVEL", "info")}
	if err := lc.Validate(); err != nil {
		return nil, err
	}
	return svc.NewLogger(lc)
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}

// parseFlags parses fs and reports usage errors on stderr.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (ok bool, code int) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, ExitOK
		}
		return false, ExitUsage
	}
	return true, 0
}

func init() {
	register(command{name: "healthcheck", summary: "GET a URL (default the local /readyz) and exit 0 on 200: for container healthchecks", run: healthcheck})
	register(command{name: "version", summary: "print the version", run: func(_ context.Context, _ []string, stdout, _ io.Writer) int {
		_, _ = fmt.Fprintln(stdout, "depthcap", Version)
		return ExitOK
	}})
}

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "request timeout")
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	url := "http://127.0.0.1:" + envOr("HEALTHCHECK_PORT", "9100") + "/readyz"
	if fs.NArg() > 0 {
		url = fs.Arg(0)
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return ExitUsage
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return ExitFound
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		_, _ = fmt.Fprintf(stderr, "healthcheck: %s: %s %s\n", url, resp.Status, strings.TrimSpace(string(body)))
		return ExitFound
	}
	_, _ = fmt.Fprintf(stdout, "ok %s\n", url)
	return ExitOK
}
