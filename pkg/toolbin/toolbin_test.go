package toolbin

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPinnedVersion(t *testing.T) {
	gomod := filepath.Join(t.TempDir(), "go.mod")
	body := "module x\n\ngo 1.25\n\nrequire example.com/one v1.2.3\n\nrequire (\n\texample.com/two v0.4.0 // indirect\n)\n"
	if err := os.WriteFile(gomod, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	for mod, want := range map[string]string{"example.com/one": "v1.2.3", "example.com/two": "v0.4.0"} {
		got, err := PinnedVersion(gomod, mod)
		if err != nil || got != want {
			t.Errorf("PinnedVersion(%s) = %q, %v; want %q", mod, got, err, want)
		}
	}
	if _, err := PinnedVersion(gomod, "example.com/three"); err == nil {
		t.Error("a module the go.mod does not require has no error")
	}
	if _, err := PinnedVersion(filepath.Join(t.TempDir(), "none"), "example.com/one"); err == nil {
		t.Error("a missing go.mod has no error")
	}
}

// TestRepoRoot finds go.work above the working directory first, then
// above the given starts (RepoRoot: the caller's source file), and fails
// when there is none.
func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "pkg", "go.mod")); err != nil {
		t.Fatalf("RepoRoot from the package directory = %s: %v", root, err)
	}

	other := t.TempDir()
	deep := filepath.Join(other, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "go.work"), []byte("go 1.25\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // no go.work above it
	if got, err := repoRoot(deep); err != nil || got != other {
		t.Fatalf("repoRoot(%s) = %q, %v; want %s", deep, got, err, other)
	}
	if got, err := repoRoot(); err == nil {
		t.Fatalf("repoRoot() without a go.work above = %q, want an error", got)
	}
	// From elsewhere, RepoRoot finds the repository above this file.
	if got, err := RepoRoot(); err != nil || got != root {
		t.Fatalf("RepoRoot() from a directory outside = %q, %v; want %s", got, err, root)
	}
}
