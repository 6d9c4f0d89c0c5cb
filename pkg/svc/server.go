package svc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Health collects readiness checks. /healthz answers 200 while the process
// serves; /readyz answers 200 only when every check passes.
type Health struct {
	mu     sync.RWMutex
	checks map[string]func() error
}

// NewHealth returns an empty Health.
func NewHealth() *Health { return &Health{checks: make(map[string]func() error)} }

// AddCheck registers a named readiness check. A nil error means ready.
func (h *Health) AddCheck(name string, check func() error) {
	h.mu.Lock()
	h.checks[name] = check
	h.mu.Unlock()
}

// Ready runs every check and returns the failures by name.
func (h *Health) Ready() map[string]string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	failed := map[string]string{}
	for name, c := range h.checks {
		if err := c(); err != nil {
			failed[name] = err.Error()
		}
	}
	return failed
}

func (h *Health) serveReady(w http.ResponseWriter, _ *http.Request) {
	failed := h.Ready()
	w.Header().Set("Content-Type", "application/json")
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	names := make([]string, 0, len(h.checks))
	h.mu.RLock()
	for n := range h.checks {
		names = append(names, n)
	}
	h.mu.RUnlock()
	sort.Strings(names)
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": len(failed) == 0, "checks": names, "failed": failed})
}

// NewRegistry returns a Prometheus registry with the Go and process
// collectors, so every service exports its memory and CPU.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Server is the metrics and health HTTP server of a service.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr (":0" or "127.0.0.1:0" picks a free port) and serves
// /metrics, /healthz, /readyz and /debug/pprof/ until Shutdown.
func Listen(addr string, reg prometheus.Gatherer, health *Health, log *zap.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen METRICS_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", health.serveReady)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", zap.Error(err))
		}
	}()
	log.Info("metrics server listening", zap.String("addr", ln.Addr().String()))
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
