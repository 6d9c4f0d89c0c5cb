package cli

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeServices maps the compose services built from this repository
// to the service names of the configuration table.
var composeServices = map[string]string{
	"spot-ws":          "spot-ws",
	"futures-ws":       "futures-ws",
	"rest-snapshotter": "rest-snapshotter",
	"writer":           "writer",
	"uploader":         "uploader",
	"sim":              "binance-sim",
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

// envExample reads .env.example: the variables it sets, and those it
// names in commented-out assignments (# VAR=...).
func envExample(t *testing.T, root string) (set map[string]string, named map[string]bool) {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	set, named = map[string]string{}, map[string]bool{}
	assign := regexp.MustCompile(`^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := assign.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		named[m[2]] = true
		if m[1] == "" {
			set[m[2]] = m[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return set, named
}

// TestComposeFile loads docker-compose.yml with the compose-spec loader
// (the one docker compose uses: schema validation, interpolation, merge
// keys, every profile) using .env.example's values, and checks that
//
//   - every variable a depthcap service's container gets is one that
//     service reads (its configuration struct, as in the README table);
//   - every variable the file interpolates is in .env.example.
func TestComposeFile(t *testing.T) {
	root := repoRoot(t)
	set, named := envExample(t, root)
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: set,
	}, loader.WithProfiles([]string{"*"}), func(o *loader.Options) { o.SetProjectName("depthcap", true) })
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}

	reads := map[string][]string{} // variable -> services reading it
	for _, r := range ConfigTable() {
		reads[r.Name] = r.Services
	}
	seen := map[string]bool{}
	for name, sc := range project.Services {
		svc, ours := composeServices[name]
		if !ours {
			continue
		}
		seen[name] = true
		if len(sc.Environment) == 0 {
			t.Errorf("compose service %s sets no environment", name)
		}
		for v := range sc.Environment {
			if !slices.Contains(reads[v], svc) {
				t.Errorf("compose service %s sets %s, which %s does not read", name, v, svc)
			}
		}
	}
	for name := range composeServices {
		if !seen[name] {
			t.Errorf("compose service %s is missing", name)
		}
	}

	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)`).FindAllStringSubmatch(string(raw), -1) {
		if !named[m[1]] {
			t.Errorf("docker-compose.yml reads ${%s}, which .env.example does not list", m[1])
		}
	}
}
