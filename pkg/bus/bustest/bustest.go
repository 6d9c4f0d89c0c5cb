// Package bustest provides real NATS servers for tests: an embedded
// JetStream server, and a nats-server process for tests that must stop or
// kill the server.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/depthcap/depthcap/pkg/toolbin"
)

// PublishAsync publishes m with js.PublishMsgAsync, retrying while the
// async window is full (jetstream.ErrTooManyStalledMsgs); any other error
// fails t.
func PublishAsync(t testing.TB, js jetstream.JetStream, m *nats.Msg, opts ...jetstream.PublishOpt) {
	t.Helper()
	for {
		_, err := js.PublishMsgAsync(m, opts...)
		if err == nil {
			return
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			t.Fatal(err)
		}
	}
}

// WaitPublished waits until every async publish of js is acknowledged;
// it fails t after d.
func WaitPublished(t testing.TB, js jetstream.JetStream, d time.Duration) {
	t.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(d):
		t.Fatalf("async publishes not acknowledged within %v", d)
	}
}

// RunServer starts an embedded JetStream server on a random port with its
// store in t.TempDir(), shut down at cleanup.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return RunServerDir(t, t.TempDir())
}

// RunServerDir is RunServer with a chosen store directory (to restart a
// server on the same data).
func RunServerDir(t testing.TB, dir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatalf("embedded nats: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded nats not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect connects to url with test-friendly reconnect settings.
func Connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond), nats.RetryOnFailedConnect(true)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context for nc.
func JetStream(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// StreamMessages reads every message of stream in order with an ordered
// consumer, stopping after idle without new messages.
func StreamMessages(t testing.TB, js jetstream.JetStream, stream string, subject string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if subject != "" {
		cfg.FilterSubjects = []string{subject}
	}
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for {
		if len(out) > 0 {
			md, _ := out[len(out)-1].Metadata()
			if md != nil && md.Sequence.Stream >= info.State.LastSeq {
				return out
			}
		} else if info.State.Msgs == 0 {
			return out
		}
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, m)
			n++
		}
		if n == 0 {
			// Filtered consumers may end before LastSeq; stop when idle.
			b2, err := c.Fetch(1000, jetstream.FetchMaxWait(500*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			for m := range b2.Messages() {
				out = append(out, m)
				n++
			}
			if n == 0 {
				return out
			}
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// NATSServerBinary builds the nats-server binary of the version this
// module depends on (once per machine, cached in the user cache dir by
// toolbin) and returns its path.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		const mod = "github.com/nats-io/nats-server/v2"
		binPath, _, buildErr = toolbin.Build(toolbin.Spec{Name: "nats-server", ModDir: moduleDir(), Module: mod, Package: mod})
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// moduleDir is the pkg module's directory (where go.mod names nats-server),
// found from the working directory or this source file (toolbin.RepoRoot:
// make build's depthcap is built with -trimpath).
func moduleDir() string {
	root, err := toolbin.RepoRoot()
	if err != nil {
		return "pkg" // toolbin.Build then names the missing go.mod
	}
	return filepath.Join(root, "pkg")
}

// Process is a nats-server running as a separate OS process.
type Process struct {
	t    testing.TB
	bin  string
	Dir  string
	Port int
	Args []string
	Env  []string // added to this process's environment at each Start
	cmd  *exec.Cmd
}

// Pid is the running server's process id (0 when stopped).
func (p *Process) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// StartProcess runs nats-server with JetStream on a free port and its
// store in a temp dir; it is killed at cleanup.
func StartProcess(t testing.TB, extraArgs ...string) *Process {
	t.Helper()
	return StartProcessEnv(t, nil, extraArgs...)
}

// StartProcessEnv is StartProcess with env added to the server's
// environment (GOGC=..., GODEBUG=...).
func StartProcessEnv(t testing.TB, env []string, extraArgs ...string) *Process {
	t.Helper()
	p := &Process{t: t, bin: NATSServerBinary(t), Dir: t.TempDir(), Port: FreePort(t), Args: extraArgs, Env: env}
	p.Start()
	t.Cleanup(func() { p.Kill() })
	return p
}

// URL is the client URL.
func (p *Process) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", p.Port) }

// Start (re)starts the process on the same port and store.
func (p *Process) Start() {
	p.t.Helper()
	args := append([]string{"-js", "-a", "127.0.0.1", "-p", fmt.Sprint(p.Port), "-sd", p.Dir}, p.Args...)
	p.cmd = exec.Command(p.bin, args...)
	if len(p.Env) > 0 {
		p.cmd.Env = append(os.Environ(), p.Env...)
	}
	if testing.Verbose() {
		p.cmd.Stderr = os.Stderr
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start nats-server: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port), 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatal("nats-server did not start listening")
}

// Stop sends SIGTERM and waits (lame-duck free shutdown).
func (p *Process) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}

// Kill sends SIGKILL and waits.
func (p *Process) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// FreePort returns a TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
