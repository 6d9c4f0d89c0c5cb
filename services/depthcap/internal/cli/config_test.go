package cli

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestREADMEConfigTable proves the README's configuration table is exactly
// what the configuration structs say (regenerate with `depthcap config`).
func TestREADMEConfigTable(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	readme := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "README.md")
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	const start, end = "<!-- config-table:start -->\n", "<!-- config-table:end -->"
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README.md has no config-table markers")
	}
	if got, want := s[i+len(start):j], MarkdownTable(); got != want {
		t.Fatalf("README.md configuration table is out of date: run `depthcap config` and paste it between the markers\n--- want\n%s", want)
	}
}

// TestConfigTableDocumented proves every variable has a description.
func TestConfigTableDocumented(t *testing.T) {
	for _, r := range ConfigTable() {
		if strings.TrimSpace(r.Desc) == "" {
			t.Errorf("%s (read by %v) has no desc tag", r.Name, r.Services)
		}
	}
}
