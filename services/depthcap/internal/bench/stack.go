package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

// Process roles: whose CPU and memory a figure counts.
const (
	roleOurs  = "ours"  // depthcap's services
	roleNATS  = "nats"  // the JetStream server
	roleSim   = "sim"   // binance-sim: the exchange, not ours
	roleInfra = "infra" // versitygw (the S3 store) and the ceiling publisher
	roleBench = "bench" // this orchestrator
)

// stackOpts choose which services a stack runs.
type stackOpts struct {
	writer    bool
	uploader  bool
	writerEnv map[string]string
}

// stack is one running pipeline: NATS, the simulator and the services,
// in their own procs.Group.
type stack struct {
	r        *scenarioRun
	g        *procs.Group
	dir      string
	rate     Rate
	nats     *procs.NATS
	sim      *procs.Proc
	simHTTP  [2]string // spot, futures base URLs
	writer   *procs.Proc
	uploader *procs.Proc
	snap     *procs.Proc
	coll     [2]*procs.Proc // spot-ws, futures-ws
	roles    map[string]string
	nc       *nats.Conn
	js       jetstream.JetStream
	data     string
	startDur time.Duration
	started  time.Time // when startStack began (before NATS started)
}

// svcEnv is the environment every depthcap service gets.
func svcEnv(metricsAddr, natsURL string, extra map[string]string) map[string]string {
	e := map[string]string{
		"LOG_FORMAT":       "json",
		"LOG_LEVEL":        "info",
		"METRICS_ADDR":     metricsAddr,
		"SHUTDOWN_TIMEOUT": "20s",
		"NATS_URL":         natsURL,
	}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

// startStack starts NATS, the simulator at rate and the services, and
// waits until each is ready.
func (r *scenarioRun) startStack(ctx context.Context, name string, rate Rate, so stackOpts) *stack {
	tb := r.tb
	t0 := time.Now()
	st := &stack{r: r, dir: filepath.Join(r.dir, name), rate: rate, roles: map[string]string{}}
	st.started = t0
	st.g = procs.NewGroup(tb, st.dir)
	st.data = filepath.Join(st.dir, "data")
	st.nats = st.g.AddNATS("nats")
	st.roles["nats"] = roleNATS

	spotAddr, futAddr, simMetrics := procs.Addr(tb), procs.Addr(tb), procs.Addr(tb)
	simEnv := r.sc.SimEnv(rate, r.o.Seed)
	for k, v := range map[string]string{"LOG_FORMAT": "json", "LOG_LEVEL": "info", "METRICS_ADDR": simMetrics, "SHUTDOWN_TIMEOUT": "5s",
		"SIM_SPOT_ADDR": spotAddr, "SIM_FUTURES_ADDR": futAddr} {
		simEnv[k] = v
	}
	st.sim = st.g.Add(procs.Spec{Name: "binance-sim", Path: r.bins["binance-sim"], Env: simEnv, MetricsAddr: simMetrics, StopTimeout: 10 * time.Second})
	st.roles["binance-sim"] = roleSim
	st.simHTTP = [2]string{"http://" + spotAddr, "http://" + futAddr}
	spotWS, spotREST := "ws://"+spotAddr, "http://"+spotAddr
	futWS, futREST := "ws://"+futAddr+"/public", "http://"+futAddr

	st.g.StartSampling(500 * time.Millisecond)
	st.nats.Start()
	st.sim.Start()
	rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	procs.Must(tb, st.nats.WaitReady(rctx))
	procs.Must(tb, st.sim.WaitReady(rctx))

	var ready []*procs.Proc
	if so.writer {
		addr := procs.Addr(tb)
		env := svcEnv(addr, st.nats.URL(), map[string]string{"DATA_DIR": st.data})
		for k, v := range so.writerEnv {
			env[k] = v
		}
		st.writer = st.g.Add(procs.Spec{Name: "writer", Path: r.bins["writer"], MetricsAddr: addr, Env: env, StopTimeout: 60 * time.Second})
		st.roles["writer"] = roleOurs
		st.writer.Start() // provisions the streams
		procs.Must(tb, st.writer.WaitReady(rctx))
	}
	if so.uploader {
		addr := procs.Addr(tb)
		st.uploader = st.g.Add(procs.Spec{Name: "uploader", Path: r.bins["uploader"], MetricsAddr: addr,
			Env: svcEnv(addr, st.nats.URL(), map[string]string{
				"DATA_DIR": st.data, "S3_ENDPOINT": r.s3.Endpoint(), "S3_BUCKET": benchBucket,
				"S3_ACCESS_KEY_ID": procs.S3AccessKey, "S3_SECRET_ACCESS_KEY": procs.S3SecretKey, "S3_REGION": procs.S3Region,
				"S3_PREFIX": r.sc.Name + "/" + name,
			})})
		st.roles["uploader"] = roleOurs
		ready = append(ready, st.uploader)
	}
	addr := procs.Addr(tb)
	st.snap = st.g.Add(procs.Spec{Name: "rest-snapshotter", Path: r.bins["rest-snapshotter"], MetricsAddr: addr,
		Env: svcEnv(addr, st.nats.URL(), map[string]string{
			"DATA_DIR": filepath.Join(st.dir, "snapshotter"), "SYMBOLS": "all", "SOURCE_ID": "bench/rest-snapshotter",
			"SPOT_REST_URL": spotREST, "FUTURES_REST_URL": futREST, "SPOT_WS_URL": spotWS, "FUTURES_WS_URL": futWS,
		})})
	st.roles["rest-snapshotter"] = roleOurs
	ready = append(ready, st.snap)
	for i, m := range genMarkets {
		name := m.String() + "-ws"
		addr := procs.Addr(tb)
		e := svcEnv(addr, st.nats.URL(), map[string]string{
			"DATA_DIR": filepath.Join(st.dir, name), "SYMBOLS": "all", "SOURCE_ID": "bench/" + name,
			"INGEST_STALL_TIMEOUT": "2m", // the drain stalls the simulator's connections
		})
		if m == md.Spot {
			e["SPOT_WS_URL"], e["SPOT_REST_URL"] = spotWS, spotREST
		} else {
			e["FUTURES_WS_URL"], e["FUTURES_REST_URL"] = futWS, futREST
		}
		st.coll[i] = st.g.Add(procs.Spec{Name: name, Path: r.bins[name], MetricsAddr: addr, Env: e})
		st.roles[name] = roleOurs
		ready = append(ready, st.coll[i])
	}
	for _, p := range ready {
		p.Start()
	}
	for _, p := range ready {
		procs.Must(tb, p.WaitReady(rctx))
	}
	var err error
	st.nc, err = nats.Connect(st.nats.URL(), nats.MaxReconnects(-1))
	procs.Must(tb, err)
	st.js, err = jetstream.New(st.nc)
	procs.Must(tb, err)
	if !so.writer {
		procs.Must(tb, bus.EnsureStreams(rctx, st.js, streamConfig(2*time.Minute)))
	}
	st.startDur = time.Since(t0)
	return st
}

// close kills every process of the stack (nothing is kept from a step
// but its figures) and removes its files unless asked to keep them.
func (st *stack) close() {
	if st.nc != nil {
		st.nc.Close()
	}
	st.g.Close()
	if !st.r.o.Keep {
		_ = os.RemoveAll(st.data)
		_ = os.RemoveAll(st.nats.StoreDir)
	}
}

// streamConfig is depthcap's stream provisioning with a chosen dedup
// window (the services' defaults otherwise).
func streamConfig(dup time.Duration) bus.StreamConfig {
	return bus.StreamConfig{MaxAge: 72 * time.Hour, MaxBytes: -1, Duplicates: dup, Replicas: 1,
		FilesMaxAge: 720 * time.Hour, DLQMaxAge: 168 * time.Hour, DLQMaxBytes: 1 << 30, Provision: true}
}

// lastSeq is MARKETDATA's last stream sequence.
func lastSeq(ctx context.Context, js jetstream.JetStream) (uint64, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, md.StreamMarketData)
	if err != nil {
		return 0, 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	return info.State.LastSeq, info.State.Msgs, nil
}

// simFault posts a fault to one market of the simulator.
func simFault(ctx context.Context, base string, req map[string]any) error {
	b, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/sim/fault", bytes.NewReader(b))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sim fault %s: status %d", b, resp.StatusCode)
	}
	return nil
}

// simQueued is the number of frames queued on the simulator's
// connections of one market.
func simQueued(ctx context.Context, base string) (float64, error) {
	code, body, err := procs.HTTPGet(ctx, base+"/sim/conns")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("GET /sim/conns: status %d", code)
	}
	var out struct {
		Conns []struct {
			Queued int `json:"queued"`
		} `json:"conns"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		return 0, err
	}
	n := 0
	for _, c := range out.Conns {
		n += c.Queued
	}
	return float64(n), nil
}

// kindKeys are the websocket streams, as "market/kind".
var kindKeys = []string{"spot/diff", "spot/partial", "futures/diff", "futures/partial"}

func splitKey(k string) (market, kind string) {
	for i := range k {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

// countsOf sums a counter by market and kind over several scrapes.
func countsOf(name string, ms ...procs.Metrics) Counts {
	c := Counts{}
	for _, k := range kindKeys {
		m, kind := splitKey(k)
		for _, x := range ms {
			c[k] += x.Sum(name, "market", m, "kind", kind)
		}
	}
	return c
}

func (c Counts) total() float64 {
	t := 0.0
	for _, v := range c {
		t += v
	}
	return t
}

func (c Counts) minus(o Counts) Counts {
	out := Counts{}
	for k, v := range c {
		out[k] = v - o[k]
	}
	return out
}

// benchBucket is the S3 bucket the uploader ships to.
const benchBucket = "depthcap-bench"
