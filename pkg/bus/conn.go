// Package bus connects depthcap services to NATS JetStream: connection
// (remote or embedded), credentials and TLS, stream provisioning, and the
// bounded async publisher.
package bus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/svc"
)

// Config is the NATS part of every service's configuration.
type Config struct {
	URL            string `envconfig:"NATS_URL" desc:"NATS server URL(s), comma separated; empty starts an embedded server"`
	Creds          string `envconfig:"NATS_CREDS" desc:"path to a .creds file (JWT + nkey seed)"`
	User           string `envconfig:"NATS_USER" desc:"user name for user/password auth"`
	Password       string `envconfig:"NATS_PASSWORD" desc:"password for user/password auth (never logged)"`
	NkeySeed       string `envconfig:"NATS_NKEY_SEED" desc:"path to an nkey seed file for nkey auth"`
	TLSCA          string `envconfig:"NATS_TLS_CA" desc:"CA bundle to verify the server"`
	TLSCert        string `envconfig:"NATS_TLS_CERT" desc:"client certificate (mutual TLS)"`
	TLSKey         string `envconfig:"NATS_TLS_KEY" desc:"client key (mutual TLS)"`
	EmbeddedDir    string `envconfig:"NATS_EMBEDDED_DIR" desc:"JetStream store of the embedded server; empty means DATA_DIR/nats"`
	EmbeddedListen string `envconfig:"NATS_EMBEDDED_LISTEN" default:"127.0.0.1:4222" desc:"client listen address of the embedded server; 'none' serves in-process clients only"`
	StreamConfig
}

// Validate checks the NATS settings.
func (c Config) Validate() error {
	if c.Creds != "" && (c.User != "" || c.NkeySeed != "") {
		return svc.Invalid("NATS_CREDS", c.Creds, "only one of NATS_CREDS, NATS_USER/NATS_PASSWORD, NATS_NKEY_SEED")
	}
	if c.User != "" && c.NkeySeed != "" {
		return svc.Invalid("NATS_NKEY_SEED", c.NkeySeed, "only one of NATS_CREDS, NATS_USER/NATS_PASSWORD, NATS_NKEY_SEED")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return svc.Invalid("NATS_TLS_CERT", c.TLSCert, "NATS_TLS_CERT and NATS_TLS_KEY set together")
	}
	for name, path := range map[string]string{"NATS_CREDS": c.Creds, "NATS_NKEY_SEED": c.NkeySeed, "NATS_TLS_CA": c.TLSCA, "NATS_TLS_CERT": c.TLSCert, "NATS_TLS_KEY": c.TLSKey} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return svc.Invalid(name, path, "a readable file (%v)", err)
		}
	}
	if c.URL == "" && c.EmbeddedListen != "none" {
		if _, port, err := net.SplitHostPort(c.EmbeddedListen); err != nil {
			return svc.Invalid("NATS_EMBEDDED_LISTEN", c.EmbeddedListen, "host:port or none")
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return svc.Invalid("NATS_EMBEDDED_LISTEN", c.EmbeddedListen, "host:port with a port 0-65535, or none")
		}
	}
	return c.StreamConfig.Validate()
}

// Conn is a NATS connection with JetStream, and the embedded server when
// the service started one.
type Conn struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Embedded *server.Server // nil when connected to a remote server
	log      *zap.Logger
	everUp   atomic.Bool
}

// Option adjusts the nats.Options of a connection.
type Option = nats.Option

// Connect connects to cfg.URL, or starts an embedded JetStream server
// under dataDir/nats when cfg.URL is empty. It reconnects forever with
// jittered exponential backoff; the initial connection is retried too, so
// a service may start before NATS. Ready reports the connection state.
func Connect(ctx context.Context, cfg Config, dataDir, name string, log *zap.Logger, extra ...Option) (*Conn, error) {
	c := &Conn{log: log}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(backoff),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(nc *nats.Conn) {
			c.everUp.Store(true)
			log.Info("nats connected", zap.String("url", nc.ConnectedUrlRedacted()))
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil on a deliberate Close or Drain
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", zap.String("url", nc.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", zap.String("subject", subj), zap.Error(err))
		}),
	}
	auth, err := authOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)
	opts = append(opts, extra...)

	url := cfg.URL
	if url == "" {
		dir := cfg.EmbeddedDir
		if dir == "" {
			dir = filepath.Join(dataDir, "nats")
		}
		s, err := StartEmbedded(dir, cfg.EmbeddedListen, log)
		if err != nil {
			return nil, err
		}
		c.Embedded = s
		opts = append(opts, nats.InProcessServer(s))
		url = s.ClientURL()
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		c.shutdownEmbedded()
		return nil, fmt.Errorf("connect NATS_URL %s: %w", redact(url), err)
	}
	if nc.IsConnected() {
		c.everUp.Store(true)
	}
	c.NC = nc
	c.JS, err = jetstream.New(nc)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return c, nil
}

// backoff is the reconnect delay: exponential from 250ms, capped at 10s,
// with full jitter so that many clients do not reconnect in step.
func backoff(attempts int) time.Duration {
	d := 250 * time.Millisecond << min(attempts, 6)
	d = min(d, 10*time.Second)
	return d/2 + rand.N(d/2+1)
}

func authOptions(cfg Config) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case cfg.Creds != "":
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	case cfg.NkeySeed != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NkeySeed)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED %s: %w", cfg.NkeySeed, err)
		}
		opts = append(opts, o)
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	return opts, nil
}

// redact removes user info from a comma-separated URL list for logs and
// errors.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		scheme, rest, ok := strings.Cut(p, "://")
		if at := strings.LastIndexByte(rest, '@'); ok && at >= 0 {
			parts[i] = scheme + "://[REDACTED]" + rest[at:]
		}
	}
	return strings.Join(parts, ",")
}

// StartEmbedded starts a JetStream-enabled nats-server in this process with
// its store under dir. listen is host:port, or "none" for in-process
// clients only.
func StartEmbedded(dir, listen string, log *zap.Logger) (*server.Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded nats store NATS_EMBEDDED_DIR %s: %w", dir, err)
	}
	opts := &server.Options{
		ServerName: "depthcap-embedded",
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		DontListen: listen == "none",
	}
	if listen != "none" {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats NATS_EMBEDDED_LISTEN %q: %w", listen, err)
		}
		opts.Host = host
		opts.Port, _ = strconv.Atoi(port)
		if opts.Port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded nats: not ready after 30s")
	}
	log.Info("embedded nats started", zap.String("store", dir), zap.String("listen", listen))
	return s, nil
}

// Ready reports nil when the connection is up. It is the /readyz check.
func (c *Conn) Ready() error {
	if c.NC == nil {
		return errors.New("nats not connected")
	}
	if st := c.NC.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats %s", st)
	}
	return nil
}

// Drain drains the connection (flushing publishes and subscriptions) and
// then stops the embedded server, if any.
func (c *Conn) Drain(ctx context.Context) error {
	if c.NC == nil {
		return nil
	}
	var err error
	if c.NC.IsConnected() {
		closed := make(chan struct{})
		c.NC.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err = c.NC.Drain(); err == nil {
			select {
			case <-closed:
			case <-ctx.Done():
				err = fmt.Errorf("nats drain: %w", ctx.Err())
			}
		}
	}
	c.Close()
	return err
}

// Close closes the connection without draining, then the embedded server.
func (c *Conn) Close() {
	if c.NC != nil {
		c.NC.Close()
	}
	c.shutdownEmbedded()
}

func (c *Conn) shutdownEmbedded() {
	if c.Embedded != nil {
		c.Embedded.Shutdown()
		c.Embedded.WaitForShutdown()
		c.Embedded = nil
	}
}

// WaitConnected blocks until the connection is up or ctx ends.
func (c *Conn) WaitConnected(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !c.NC.IsConnected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for nats: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
