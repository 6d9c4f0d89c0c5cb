// Package toolbin builds the Go programs that tests and benchmarks run as
// separate processes (nats-server, versitygw) at the version a go.mod
// pins, once per machine: the binary is cached as
// <user cache dir>/depthcap-test/<name>-<version>, and a file lock keeps
// parallel test processes from building it twice.
package toolbin

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Spec names a program and the module that pins its version.
type Spec struct {
	Name    string   // cache file prefix, e.g. "versitygw"
	ModDir  string   // the module directory to build in; its go.mod pins Module
	Module  string   // the module whose required version names the binary
	Package string   // the main package to build
	Env     []string // added to the environment of go build, e.g. GOWORK=off
}

// Build returns the path of the cached binary of s, building it first if
// it is not there. took is how long the build ran (0 when cached).
func Build(s Spec) (path string, took time.Duration, err error) {
	version, err := PinnedVersion(filepath.Join(s.ModDir, "go.mod"), s.Module)
	if err != nil {
		return "", 0, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "depthcap-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, fmt.Errorf("%s cache dir: %w", s.Name, err)
	}
	bin := filepath.Join(dir, s.Name+"-"+version)
	if _, err := os.Stat(bin); err == nil {
		return bin, 0, nil
	}
	lock, err := os.OpenFile(bin+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", 0, fmt.Errorf("%s build lock: %w", s.Name, err)
	}
	defer func() { _ = lock.Close() }()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", 0, fmt.Errorf("%s build lock: %w", s.Name, err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if _, err := os.Stat(bin); err == nil { // built by another process meanwhile
		return bin, 0, nil
	}
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	start := time.Now()
	cmd := exec.Command("go", "-C", s.ModDir, "build", "-o", tmp, s.Package)
	cmd.Env = append(os.Environ(), s.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", 0, fmt.Errorf("build %s %s in %s: %w\n%s", s.Name, version, s.ModDir, err, out)
	}
	took = time.Since(start)
	if err := os.Rename(tmp, bin); err != nil {
		return "", 0, fmt.Errorf("install %s: %w", s.Name, err)
	}
	return bin, took, nil
}

// PinnedVersion returns the version of module that the go.mod at gomod
// requires.
func PinnedVersion(gomod, module string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", gomod, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == module {
			return f[1], nil
		}
		if len(f) >= 3 && f[0] == "require" && f[1] == module {
			return f[2], nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", gomod, module)
}

// RepoRoot finds the repository root (the directory holding go.work)
// above the working directory, then above the calling function's source
// file when the binary knows its absolute path (not built with -trimpath).
func RepoRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(1); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	return repoRoot(starts...)
}

// repoRoot finds go.work above the working directory, then above each of
// starts.
func repoRoot(starts ...string) (string, error) {
	if wd, err := os.Getwd(); err == nil {
		starts = append([]string{wd}, starts...)
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("no go.work above the working directory or %s", strings.Join(starts, ", "))
}
