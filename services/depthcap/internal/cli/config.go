package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/svc"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
	"github.com/depthcap/depthcap/services/depthcap/internal/allinone"
	snapshotter "github.com/depthcap/depthcap/services/rest-snapshotter"
	"github.com/depthcap/depthcap/services/uploader"
	"github.com/depthcap/depthcap/services/writer"
)

func init() {
	register(command{name: "config", summary: "print the configuration table (every environment variable, its default, the services that read it)", run: printConfig})
}

// configSources lists every configuration struct, by service, in the order
// the table shows them.
func configSources() []struct {
	service string
	cfg     any
} {
	return []struct {
		service string
		cfg     any
	}{
		{"spot-ws", &ingest.Config{}},
		{"futures-ws", &ingest.Config{}},
		{"rest-snapshotter", &snapshotter.Config{}},
		{"writer", &writer.Config{}},
		{"uploader", &uploader.Config{}},
		{"depthcap", &allinone.Config{}},
		{"binance-sim", &binancesim.Config{}},
	}
}

// ConfigRow is one variable of the table.
type ConfigRow struct {
	svc.Var
	Services []string
}

// ConfigTable returns every variable once, with the services that read it.
func ConfigTable() []ConfigRow {
	var rows []ConfigRow
	idx := map[string]int{}
	for _, src := range configSources() {
		for _, v := range svc.Vars(src.cfg) {
			i, ok := idx[v.Name]
			if !ok {
				idx[v.Name] = len(rows)
				rows = append(rows, ConfigRow{Var: v})
				i = len(rows) - 1
			}
			if rows[i].Desc == "" {
				rows[i].Desc = v.Desc
			}
			rows[i].Services = append(rows[i].Services, src.service)
		}
	}
	return rows
}

// MarkdownTable renders ConfigTable as the README's table.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| variable | default | read by | meaning |\n|---|---|---|---|\n")
	for _, r := range ConfigTable() {
		def := r.Default
		if def != "" {
			def = "`" + def + "`"
		}
		services := strings.Join(r.Services, ", ")
		if len(r.Services) >= 6 {
			services = "all services"
		}
		desc := strings.ReplaceAll(r.Desc, "|", "\\|")
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Name, def, services, desc)
	}
	return b.String()
}

func printConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	_, _ = fmt.Fprint(stdout, MarkdownTable())
	return ExitOK
}
