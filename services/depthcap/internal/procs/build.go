package procs

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/toolbin"
)

// RepoRoot finds the repository root (the directory holding go.work)
// above the working directory, or above this source file.
func RepoRoot() (string, error) { return toolbin.RepoRoot() }

// Binaries are the paths of built executables by name.
type Binaries map[string]string

// BuildServices builds the named services (services/<name>/cmd/<name>) of
// the workspace with one `go build` into dir and returns their paths. The
// Go build cache makes a rebuild of unchanged code a link step.
func BuildServices(tb testing.TB, dir string, names ...string) Binaries {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		tb.Fatalf("procs: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("procs: %v", err)
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	out := Binaries{}
	for _, n := range names {
		args = append(args, "./services/"+n+"/cmd/"+n)
		out[n] = filepath.Join(dir, n)
	}
	start := time.Now()
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("procs: go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	tb.Logf("procs: built %s in %s", strings.Join(names, ", "), time.Since(start).Round(10*time.Millisecond))
	return out
}

// NATSServerBinary is the nats-server of the version pinned in pkg/go.mod
// (built once per machine by bustest and cached in the user cache dir).
func NATSServerBinary(tb testing.TB) string {
	tb.Helper()
	return bustest.NATSServerBinary(tb)
}

const versitygwModule = "github.com/versity/versitygw"

var (
	vgwOnce sync.Once
	vgwPath string
	vgwErr  error
)

// VersityGWBinary returns the versitygw binary of the version pinned in
// .ci/s3/go.mod, building it on first use (minutes cold) and caching it as
// <user cache>/depthcap-test/versitygw-<version>, the same file the
// uploader's tests use; a file lock keeps parallel builds apart.
func VersityGWBinary(tb testing.TB) string {
	tb.Helper()
	vgwOnce.Do(func() { vgwPath, vgwErr = buildVersityGW(tb) })
	if vgwErr != nil {
		tb.Fatalf("procs: %v", vgwErr)
	}
	return vgwPath
}

func buildVersityGW(tb testing.TB) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin, took, err := toolbin.Build(toolbin.Spec{Name: "versitygw", ModDir: filepath.Join(root, ".ci", "s3"), Module: versitygwModule,
		Package: versitygwModule + "/cmd/versitygw", Env: []string{"GOWORK=off"}})
	if took > 0 {
		tb.Logf("procs: built versitygw in %s", took.Round(time.Second))
	}
	return bin, err
}

var (
	portsMu sync.Mutex
	handed  = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that this process has not handed out before (so that a port given to a
// process that is down for a while is not given to another).
func FreePort(tb testing.TB) int {
	tb.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("procs: free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !handed[port] {
			handed[port] = true
			return port
		}
	}
	tb.Fatal("procs: no new free port after 100 tries")
	return 0
}

// Addr is "127.0.0.1:<FreePort>".
func Addr(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(tb))
}
