package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/depthcap/internal/importer"
	"github.com/depthcap/depthcap/services/writer"
)

func init() {
	register(command{name: "import", summary: "convert recordings (*.rec.gz) into depthcap files: depthcap import [--data DIR] FILE...", run: runImport})
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var wcfg writer.Config
	if err := svc.Load(&wcfg); err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap import: %v\n", err)
		return ExitUsage
	}
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	data := fs.String("data", wcfg.DataDir, "DATA_DIR to write the files into")
	period := fs.Duration("period", wcfg.Period, "file period (WRITER_PERIOD)")
	source := fs.String("source", "import", "source id stamped on the envelopes")
	fs.Usage = func() {
		_, _ = fmt.Fprintln(stderr, "usage: depthcap import [--data DIR] [--period 24h] FILE.rec.gz...")
		fs.PrintDefaults()
	}
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return ExitUsage
	}
	wcfg.Period = *period
	if err := wcfg.Validate(); err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap import: %v\n", err)
		return ExitUsage
	}
	log, err := newLogger(stderr)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap import: %v\n", err)
		return ExitUsage
	}
	defer func() { _ = log.Sync() }()
	start := time.Now()
	st, err := importer.Run(ctx, importer.Options{Files: fs.Args(), DataDir: *data, Period: *period, Source: *source, Writer: wcfg},
		svc.Env{Log: log, Registry: svc.NewRegistry(), Health: svc.NewHealth()})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap import: %v\n", err)
		return ExitFound
	}
	_, _ = fmt.Fprintf(stdout, "imported %d frames (%d depth, %d other streams, %d malformed) into %d files under %s in %s\n",
		st.Frames, st.Depth, st.Skipped, st.Malformed, len(st.Files), *data, time.Since(start).Round(time.Millisecond))
	for _, f := range st.Files {
		_, _ = fmt.Fprintln(stdout, "  "+f)
	}
	return ExitOK
}
