// Package s3test runs a real S3-compatible server process for tests:
// versitygw with its posix backend, built from the repository's .ci/s3
// tools module (pinned there through a tool directive), once per machine
// and cached in the user cache directory under its version.
package s3test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/depthcap/depthcap/pkg/toolbin"
)

// Credentials and region of every test server. Region auto is what R2
// expects, so the tests sign requests as they would for R2.
const (
	AccessKey = "depthcap-test-access"
	SecretKey = "depthcap-test-secret-4f1c9a"
	Region    = "auto"
)

const toolModule = "github.com/versity/versitygw"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	// BuildTime is how long building versitygw took in this process (0
	// when the cached binary was used).
	BuildTime time.Duration
)

// Binary returns the path of the versitygw binary of the version pinned
// in .ci/s3/go.mod, building it on first use (about two minutes cold) and
// caching it as <user cache>/depthcap-test/versitygw-<version>. A file
// lock keeps parallel test processes from building it twice.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() { binPath, buildErr = build() })
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

func build() (string, error) {
	modDir, err := toolsDir()
	if err != nil {
		return "", err
	}
	bin, took, err := toolbin.Build(toolbin.Spec{Name: "versitygw", ModDir: modDir, Module: toolModule, Package: toolModule + "/cmd/versitygw", Env: []string{"GOWORK=off"}})
	BuildTime = took
	return bin, err
}

// toolsDir finds .ci/s3 above the working directory (the package under
// test).
func toolsDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, ".ci", "s3")
		if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no .ci/s3/go.mod above the working directory")
		}
		dir = parent
	}
}

// Server is a versitygw process serving a posix directory over HTTP.
type Server struct {
	tb   testing.TB
	bin  string
	Root string // posix backend root: one directory per bucket
	Port int
	log  *os.File
	cmd  *exec.Cmd
	wait chan struct{}
}

// Start builds (or reuses) versitygw and runs it on a free port with its
// data in a temp dir; it is killed at cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: Binary(tb), Root: tb.TempDir(), Port: freePort(tb)}
	logPath := filepath.Join(tb.TempDir(), "versitygw.log")
	f, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	s.log = f
	tb.Cleanup(func() {
		s.Kill()
		_ = f.Close()
		if tb.Failed() {
			if b, err := os.ReadFile(logPath); err == nil && len(b) > 0 {
				tb.Logf("versitygw log (last 4KiB):\n%s", tail(b, 4096))
			}
		}
	})
	s.Restart()
	return s
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Endpoint is the S3_ENDPOINT of the server.
func (s *Server) Endpoint() string { return fmt.Sprintf("http://127.0.0.1:%d", s.Port) }

// Restart starts the process (again) on the same port and directory and
// waits until it answers S3 requests.
func (s *Server) Restart() {
	s.tb.Helper()
	if s.cmd != nil {
		s.tb.Fatal("s3test: server already running")
	}
	cmd := exec.Command(s.bin,
		"--access", AccessKey, "--secret", SecretKey, "--region", Region,
		"--port", fmt.Sprintf("127.0.0.1:%d", s.Port),
		"posix", s.Root)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start versitygw: %v", err)
	}
	s.cmd = cmd
	s.wait = make(chan struct{})
	go func(w chan struct{}) { _ = cmd.Wait(); close(w) }(s.wait)

	c := s.Client(s.tb)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.wait:
			s.cmd = nil
			s.tb.Fatalf("versitygw exited at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("versitygw not ready after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the process with SIGKILL (an outage, not a shutdown) and
// waits for it to exit. The data stays.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.wait
	s.cmd = nil
}

// Client returns a minio client with the server's credentials.
func (s *Server) Client(tb testing.TB) *minio.Client {
	tb.Helper()
	c, err := minio.New(fmt.Sprintf("127.0.0.1:%d", s.Port), &minio.Options{
		Creds:  credentials.NewStaticV4(AccessKey, SecretKey, ""),
		Region: Region,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// MakeBucket creates a bucket.
func (s *Server) MakeBucket(tb testing.TB, name string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client(tb).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: Region}); err != nil {
		tb.Fatalf("make bucket %s: %v", name, err)
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
