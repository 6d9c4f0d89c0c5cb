package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpdateReadme(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "README.md")
	before, after := "# x\n\n## Performance\n\n", "\n## Next\ntext\n"
	if err := os.WriteFile(path, []byte(before+readmeBegin+"\nold table\n"+readmeEnd+after), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := []*ScenarioResult{{Scenario: "seed50", Date: "2026-11-22", Machine: Machine{CPUs: 2, CPUModel: "cpu", MemTotal: "24 GiB", Commit: "abc"}}}
	if err := UpdateReadme(path, filepath.Join(dir, "bench", "results"), rs); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	if !strings.HasPrefix(s, before+readmeBegin+"\n| scenario |") || !strings.HasSuffix(s, readmeEnd+after) {
		t.Fatalf("markers or surroundings changed:\n%s", s)
	}
	if strings.Contains(s, "old table") || !strings.Contains(s, "| seed50 |") || !strings.Contains(s, "(bench/results/2026-11-22-seed50.md)") {
		t.Fatalf("table not replaced:\n%s", s)
	}
	// Without markers it refuses rather than appending somewhere.
	if err := os.WriteFile(path, []byte("# no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateReadme(path, "bench/results", rs); err == nil {
		t.Fatal("no error without markers")
	}
}
