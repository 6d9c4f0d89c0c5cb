package futuresws_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/pkg/svc/svctest"
	futuresws "github.com/depthcap/depthcap/services/futures-ws"
)

// TestConfig proves futures-ws's configuration: validated for USD-M (the
// 0ms diff and 500ms streams are allowed, spot-only values are not), and
// every error names the variable.
func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"defaults", nil, ""},
		{"0ms diff", map[string]string{"INGEST_DIFF_SPEED": "0ms"}, ""},
		{"500ms partial", map[string]string{"INGEST_PARTIAL_SPEED": "500ms"}, ""},
		{"1000ms diff is spot's", map[string]string{"INGEST_DIFF_SPEED": "1000ms"}, "INGEST_DIFF_SPEED"},
		{"partial levels", map[string]string{"INGEST_PARTIAL_LEVELS": "25"}, "INGEST_PARTIAL_LEVELS"},
		{"max conn age beyond 24h", map[string]string{"INGEST_MAX_CONN_AGE": "25h"}, "INGEST_MAX_CONN_AGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svctest.ClearEnv(t, &futuresws.Config{})
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var c futuresws.Config
			err := svc.Load(&c)
			switch {
			case tt.wantVar == "" && err != nil:
				t.Fatalf("valid config rejected: %v", err)
			case tt.wantVar != "" && (!errors.Is(err, svc.ErrConfig) || !strings.Contains(err.Error(), tt.wantVar)):
				t.Fatalf("err = %v, want a config error naming %s", err, tt.wantVar)
			}
		})
	}
}

// TestRun proves the service wiring: futuresws.Run connects to NATS,
// provisions the streams, subscribes under <FUTURES_WS_URL>/stream,
// publishes a USD-M diff with its envelope and dedup id, and stops
// cleanly when its context ends.
func TestRun(t *testing.T) {
	frame := `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":10,"u":20,"pu":5,"b":[["1.0","2"]],"a":[]}}`
	paths := make(chan string, 10)
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths <- r.URL.Path + "?" + r.URL.RawQuery
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_ = c.Write(context.Background(), websocket.MessageText, []byte(frame))
		_, _, _ = c.Read(context.Background()) // until the client goes
	}))
	t.Cleanup(ws.Close)
	srv := bustest.RunServer(t)
	cfg := futuresws.DefaultConfig()
	cfg.URL = srv.ClientURL()
	cfg.Symbols = "BTCUSDT"
	cfg.SourceID = "run-test"
	cfg.PartialLevels = 0
	cfg.FuturesWSURL = "ws" + strings.TrimPrefix(ws.URL, "http") + "/public"
	env := svc.Env{Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Registry: prometheus.NewRegistry(), Health: svc.NewHealth()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- futuresws.Run(ctx, &cfg, env) }()
	select {
	case p := <-paths:
		if p != "/public/stream?streams=btcusdt@depth@100ms" {
			t.Errorf("connected to %s", p)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no websocket connection")
	}
	nc := bustest.Connect(t, srv.ClientURL())
	js := bustest.JetStream(t, nc)
	var msgs int
	for deadline := time.Now().Add(10 * time.Second); msgs == 0; {
		if s, err := js.Stream(ctx, md.StreamMarketData); err == nil {
			if info, err := s.Info(ctx); err == nil {
				msgs = int(info.State.Msgs)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing stored")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	stored := bustest.StreamMessages(t, js, md.StreamMarketData, "")
	if len(stored) != 1 {
		t.Fatalf("%d messages stored, want 1", len(stored))
	}
	var env2 envelope.Envelope
	if err := envelope.Unmarshal(stored[0].Data(), &env2); err != nil {
		t.Fatal(err)
	}
	id := stored[0].Headers().Get("Nats-Msg-Id")
	if id != "futures.diff.BTCUSDT.20" || env2.PrevID != 5 || env2.Source != "run-test" || !strings.HasSuffix(frame, string(env2.Payload)+"}") {
		t.Errorf("stored %s: %+v", id, env2)
	}
}
