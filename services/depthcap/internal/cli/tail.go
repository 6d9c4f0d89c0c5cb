package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/depthcap/internal/tail"
)

func init() {
	register(command{name: "tail", summary: "print the envelopes published on a subject as JSON lines: depthcap tail md.binance.spot.diff.BTCUSDT [--raw]", run: runTail})
}

func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	raw := fs.Bool("raw", false, "print the payload in base64 (payload_base64) instead of as embedded JSON")
	count := fs.Int("count", 0, "exit after this many messages; 0 runs until interrupted")
	fs.Usage = func() {
		_, _ = fmt.Fprintln(stderr, "usage: depthcap tail [--raw] [--count N] SUBJECT")
		_, _ = fmt.Fprintln(stderr, "  SUBJECT: a subject or wildcard as published, e.g. md.binance.spot.diff.BTCUSDT, md.binance.futures.>, md.binance.*.snapshot.ETHUSDT")
		_, _ = fmt.Fprintln(stderr, "  connects to NATS_URL (NATS_CREDS, NATS_USER, ... as the services); with NATS_URL empty, to the")
		_, _ = fmt.Fprintln(stderr, "  embedded server of 'depthcap run'/'demo' on this machine at NATS_EMBEDDED_LISTEN (default "+tail.DefaultLocalURL+")")
		fs.PrintDefaults()
	}
	// Flags may follow the subject.
	var subject string
	rest := args
	for {
		if ok, code := parseFlags(fs, rest, stderr); !ok {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		if subject != "" {
			_, _ = fmt.Fprintf(stderr, "depthcap tail: one subject, got %q and %q\n", subject, fs.Arg(0))
			fs.Usage()
			return ExitUsage
		}
		subject, rest = fs.Arg(0), fs.Args()[1:]
	}
	if subject == "" || *count < 0 {
		_, _ = fmt.Fprintln(stderr, "depthcap tail: a subject is required (and --count must not be negative)")
		fs.Usage()
		return ExitUsage
	}
	var cfg bus.Config
	if err := svc.Load(&cfg); err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap tail: %v\n", err)
		return ExitUsage
	}
	url, err := tail.URL(cfg)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap tail: %v\n", err)
		return ExitUsage
	}
	cfg.URL = url
	log, err := newLogger(stderr)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap tail: %v\n", err)
		return ExitUsage
	}
	defer func() { _ = log.Sync() }()
	// Fail at once when nothing listens, rather than retry in silence.
	conn, err := bus.Connect(ctx, cfg, "", "depthcap-tail", log, nats.RetryOnFailedConnect(false))
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap tail: %v\n", err)
		return ExitFound
	}
	defer conn.Close()
	st, err := tail.Run(ctx, conn.NC, tail.Options{Subject: subject, Raw: *raw, Count: *count, Out: stdout, Log: log}, nil)
	if st.Dropped > 0 {
		_, _ = fmt.Fprintf(stderr, "depthcap tail: %d messages dropped: the tail could not keep up\n", st.Dropped)
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap tail: %v\n", err)
		return ExitFound
	}
	return ExitOK
}
