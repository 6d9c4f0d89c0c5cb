package procs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// NATS is a nats-server process with JetStream on a fixed port and store
// directory, so that it can be stopped and started again on the same data.
type NATS struct {
	*Proc
	Port        int
	MonitorPort int
	StoreDir    string
}

// AddNATS registers a nats-server (not started) with its store under the
// group directory. extraArgs are appended to the command line.
func (g *Group) AddNATS(name string, extraArgs ...string) *NATS {
	g.tb.Helper()
	n := &NATS{Port: FreePort(g.tb), MonitorPort: FreePort(g.tb), StoreDir: filepath.Join(g.Dir, name+"-store")}
	args := append([]string{"-js", "-a", "127.0.0.1", "-p", fmt.Sprint(n.Port), "-m", fmt.Sprint(n.MonitorPort), "-sd", n.StoreDir}, extraArgs...)
	n.Proc = g.Add(Spec{Name: name, Path: NATSServerBinary(g.tb), Args: args, MetricsAddr: fmt.Sprintf("127.0.0.1:%d", n.MonitorPort), StopTimeout: 20 * time.Second})
	return n
}

// URL is the client URL.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.Port) }

// WaitReady waits until the server's monitoring /healthz says JetStream
// is up (it answers 200 only then).
func (n *NATS) WaitReady(ctx context.Context) error {
	return n.WaitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", n.MonitorPort))
}

// S3 credentials and region of the test S3 server (region auto, as R2).
const (
	S3AccessKey = "depthcap-e2e-access"
	S3SecretKey = "depthcap-e2e-secret-9b2d7e"
	S3Region    = "auto"
)

// S3 is a versitygw process serving a posix directory over HTTP.
type S3 struct {
	*Proc
	Port int
	Root string // one directory per bucket
}

// AddS3 registers a versitygw (not started) on a fixed free port with its
// data under the group directory.
func (g *Group) AddS3(name string) *S3 {
	g.tb.Helper()
	s := &S3{Port: FreePort(g.tb), Root: filepath.Join(g.Dir, name+"-root")}
	if err := os.MkdirAll(s.Root, 0o755); err != nil {
		g.tb.Fatalf("procs: %v", err)
	}
	args := []string{"--access", S3AccessKey, "--secret", S3SecretKey, "--region", S3Region,
		"--port", fmt.Sprintf("127.0.0.1:%d", s.Port), "posix", s.Root}
	s.Proc = g.Add(Spec{Name: name, Path: VersityGWBinary(g.tb), Args: args, StopTimeout: 10 * time.Second})
	return s
}

// Endpoint is the S3_ENDPOINT of the server.
func (s *S3) Endpoint() string { return fmt.Sprintf("http://127.0.0.1:%d", s.Port) }

// Client returns a minio client with the server's credentials.
func (s *S3) Client() (*minio.Client, error) {
	return minio.New(fmt.Sprintf("127.0.0.1:%d", s.Port), &minio.Options{
		Creds:  credentials.NewStaticV4(S3AccessKey, S3SecretKey, ""),
		Region: S3Region,
	})
}

// WaitReady waits until the server answers a signed ListBuckets.
func (s *S3) WaitReady(ctx context.Context) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, last = c.ListBuckets(rctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-s.Exited():
			return fmt.Errorf("%s exited at start (%v): %w", s.Name(), s.ExitErr(), last)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %v)", s.Name(), ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// MakeBucket creates a bucket.
func (s *S3) MakeBucket(ctx context.Context, name string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	return c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: S3Region})
}

// Must fails tb with err's message when err is not nil.
func Must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
