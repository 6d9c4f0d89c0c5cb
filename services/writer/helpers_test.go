package writer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/writer"
)

func streamConfig() bus.StreamConfig {
	return bus.StreamConfig{MaxAge: 72 * time.Hour, MaxBytes: -1, Duplicates: 2 * time.Minute, Replicas: 1,
		FilesMaxAge: 720 * time.Hour, DLQMaxAge: 168 * time.Hour, DLQMaxBytes: 1 << 30, Provision: true}
}

// testConfig is a valid configuration with the documented defaults.
func testConfig(dataDir, url string) writer.Config {
	return writer.Config{
		Base:               svc.Base{LogConfig: svc.LogConfig{LogFormat: "json", LogLevel: "info"}, ShutdownTimeout: 30 * time.Second},
		Config:             bus.Config{URL: url, EmbeddedListen: "none", StreamConfig: streamConfig()},
		DataDir:            dataDir,
		Shard:              "0/1",
		Period:             24 * time.Hour,
		Grace:              5 * time.Minute,
		CheckpointInterval: 30 * time.Second,
		MemoryLimit:        256 << 20,
		PartBytes:          1 << 20,
		RowGroupRows:       16384,
		ZstdLevel:          1,
		DedupRecent:        1024,
		PullMaxBytes:       16 << 20,
	}
}

type harness struct {
	t    testing.TB
	srv  *server.Server
	url  string
	conn *bus.Conn
	js   jetstream.JetStream
	nc   *nats.Conn
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	s := bustest.RunServer(t)
	return connectHarness(t, s, s.ClientURL())
}

func connectHarness(t testing.TB, s *server.Server, url string) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := bus.Connect(ctx, bus.Config{URL: url, StreamConfig: streamConfig()}, t.TempDir(), "writer-test", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	if err := bus.EnsureStreams(ctx, conn.JS, streamConfig()); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, srv: s, url: url, conn: conn, js: conn.JS, nc: conn.NC}
}

// publish publishes envelopes in order, with their dedup ids unless
// noDedup, and waits for every ack.
func (h *harness) publish(envs []envelope.Envelope, noDedup bool) {
	h.t.Helper()
	js, err := jetstream.New(h.nc, jetstream.WithPublishAsyncMaxPending(2048))
	if err != nil {
		h.t.Fatal(err)
	}
	var buf, id []byte
	for i := range envs {
		e := &envs[i]
		buf = e.AppendMarshal(buf[:0])
		m := nats.NewMsg(md.Subject(e.Market, e.Kind, e.Symbol))
		m.Data = append([]byte(nil), buf...)
		var opts []jetstream.PublishOpt
		if !noDedup {
			id, err = e.AppendMsgID(id[:0])
			if err != nil {
				h.t.Fatal(err)
			}
			opts = append(opts, jetstream.WithMsgID(string(id)))
		}
		bustest.PublishAsync(h.t, js, m, opts...)
	}
	bustest.WaitPublished(h.t, js, 2*time.Minute)
}

// publishRaw publishes a message with raw bytes to a subject.
func (h *harness) publishRaw(subject string, data []byte) {
	h.t.Helper()
	if _, err := h.js.Publish(context.Background(), subject, data); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) newWriter(cfg writer.Config, reg *prometheus.Registry) *writer.Writer {
	h.t.Helper()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var log *zap.Logger
	if tt, ok := h.t.(*testing.T); ok && testing.Verbose() {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.InfoLevel))
	} else {
		log = zap.NewNop()
	}
	w, err := writer.New(cfg, h.conn, svc.Env{Log: log, Registry: reg, Health: svc.NewHealth()})
	if err != nil {
		h.t.Fatal(err)
	}
	return w
}

func (h *harness) finish(cfg writer.Config) {
	h.t.Helper()
	h.finishWith(cfg, nil)
}

// finishWith runs Finish with the metrics registered on reg (nil: a new
// registry).
func (h *harness) finishWith(cfg writer.Config, reg *prometheus.Registry) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := h.newWriter(cfg, reg).Finish(ctx); err != nil {
		h.t.Fatal(err)
	}
}

// parquetFiles lists the sealed Parquet files under dir, relative, sorted.
func parquetFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != dir {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// Row is one row read back, with every column as a generic value.
type Row struct {
	Scalars
	BidPx, BidQty, AskPx, AskQty []float64
}

// Scalars are a row's columns other than the levels (comparable).
type Scalars struct {
	RecvUs, ReqUs, EventUs, TxUs int64
	ReqNull, EventNull           bool
	First, Final, Prev, Last     int64
	FirstNull                    bool
	Limit                        int32
	LimitNull                    bool
	Symbol                       string
}

// readMeta returns a file's key-value metadata (the footer only).
func readMeta(t testing.TB, path string) map[string]string {
	t.Helper()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer pf.Close()
	kv := map[string]string{}
	for _, e := range pf.MetaData().KeyValueMetadata() {
		if e.Value != nil {
			kv[e.Key] = *e.Value
		}
	}
	return kv
}

// readRows reads a file with arrow-go's reader and returns its rows and
// key-value metadata.
func readRows(t testing.TB, path string) ([]Row, map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer pf.Close()
	kv := map[string]string{}
	for _, e := range pf.MetaData().KeyValueMetadata() {
		if e.Value != nil {
			kv[e.Key] = *e.Value
		}
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 8192}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 8192)
	defer tr.Release()
	var out []Row
	for tr.Next() {
		rec := tr.RecordBatch()
		n := int(rec.NumRows())
		base := len(out)
		out = append(out, make([]Row, n)...)
		for ci, fld := range rec.Schema().Fields() {
			col := rec.Column(ci)
			for i := 0; i < n; i++ {
				r := &out[base+i]
				switch fld.Name {
				case "received_time":
					r.RecvUs = int64(col.(*array.Timestamp).Value(i))
				case "request_time":
					r.ReqNull = col.IsNull(i)
					r.ReqUs = int64(col.(*array.Timestamp).Value(i))
				case "event_time":
					r.EventNull = col.IsNull(i)
					r.EventUs = int64(col.(*array.Timestamp).Value(i))
				case "transaction_time":
					r.TxUs = int64(col.(*array.Timestamp).Value(i))
				case "symbol":
					r.Symbol = col.(*array.String).Value(i)
				case "first_update_id":
					r.FirstNull = col.IsNull(i)
					r.First = col.(*array.Int64).Value(i)
				case "final_update_id":
					r.Final = col.(*array.Int64).Value(i)
				case "prev_final_update_id":
					r.Prev = col.(*array.Int64).Value(i)
				case "last_update_id":
					r.Last = col.(*array.Int64).Value(i)
				case "limit":
					r.LimitNull = col.IsNull(i)
					r.Limit = col.(*array.Int32).Value(i)
				case "bid_prices":
					r.BidPx = listAt(col, i)
				case "bid_sizes":
					r.BidQty = listAt(col, i)
				case "ask_prices":
					r.AskPx = listAt(col, i)
				case "ask_sizes":
					r.AskQty = listAt(col, i)
				default:
					t.Fatalf("%s: unexpected column %s", path, fld.Name)
				}
			}
		}
	}
	for i := range out {
		r := &out[i]
		if r.ReqNull {
			r.ReqUs = 0
		}
		if r.EventNull {
			r.EventUs = 0
		}
		if r.FirstNull {
			r.First = 0
		}
		if r.LimitNull {
			r.Limit = 0
		}
	}
	return out, kv
}

func listAt(col arrow.Array, i int) []float64 {
	l := col.(*array.List)
	start, end := l.ValueOffsets(i)
	vals := l.ListValues().(*array.Float64)
	out := make([]float64, 0, end-start)
	for j := start; j < end; j++ {
		out = append(out, vals.Value(int(j)))
	}
	return out
}

// payload is every field of the depth payloads, for encoding/json (which
// matches keys case-insensitively when no field matches exactly: "e" and
// "E" both need a field).
type payload struct {
	EventType    string     `json:"e"`
	Symbol       string     `json:"s"`
	E            *int64     `json:"E"`
	T            *int64     `json:"T"`
	U            *int64     `json:"U"`
	LowerU       *int64     `json:"u"`
	PU           *int64     `json:"pu"`
	LastUpdateID *int64     `json:"lastUpdateId"`
	B            [][]string `json:"b"`
	A            [][]string `json:"a"`
	Bids         [][]string `json:"bids"`
	Asks         [][]string `json:"asks"`
}

// expectedRow decodes a payload with encoding/json and strconv, the
// independent reference for the writer's decoder.
func expectedRow(t testing.TB, e *envelope.Envelope) Row {
	t.Helper()
	var p payload
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		t.Fatalf("payload: %v", err)
	}
	num := func(v *int64) (int64, bool) {
		if v == nil {
			return 0, false
		}
		return *v, true
	}
	levels := func(lists ...[][]string) (px, qty []float64) {
		for _, ls := range lists {
			if ls == nil {
				continue
			}
			px, qty = make([]float64, 0, len(ls)), make([]float64, 0, len(ls))
			for _, l := range ls {
				a, err1 := strconv.ParseFloat(l[0], 64)
				b, err2 := strconv.ParseFloat(l[1], 64)
				if err1 != nil || err2 != nil {
					t.Fatalf("level %v", l)
				}
				px, qty = append(px, a), append(qty, b)
			}
		}
		return px, qty
	}
	r := Row{Scalars: Scalars{RecvUs: e.ReceivedNs / 1000, Symbol: e.Symbol}}
	r.BidPx, r.BidQty = levels(p.B, p.Bids)
	r.AskPx, r.AskQty = levels(p.A, p.Asks)
	E, hasE := num(p.E)
	T, _ := num(p.T)
	U, hasU := num(p.U)
	u, _ := num(p.LowerU)
	pu, _ := num(p.PU)
	last, _ := num(p.LastUpdateID)
	r.EventUs, r.EventNull = E*1000, !hasE
	r.TxUs = T * 1000
	switch e.Kind {
	case md.Snapshot:
		r.ReqUs, r.ReqNull = e.RequestNs/1000, e.RequestNs == 0
		r.Last = last
		r.Limit, r.LimitNull = e.DepthLimit, e.DepthLimit == 0
		if e.Market == md.Spot {
			r.EventUs, r.EventNull = 0, false
		}
	case md.Partial:
		if e.Market == md.Spot {
			r.Final, r.FirstNull, r.EventNull = last, true, true
			r.EventUs = 0
		} else {
			r.First, r.Final, r.Prev = U, u, pu
		}
	default:
		r.First, r.Final, r.Prev, r.FirstNull = U, u, pu, !hasU
	}
	if e.Market == md.Spot {
		r.TxUs, r.Prev = 0, 0
	}
	return r
}

// diffRow reports the first difference between two rows, or "". Level
// values must be equal bit for bit.
func diffRow(got, want Row) string {
	if got.Scalars != want.Scalars {
		return fmt.Sprintf("got  %+v\nwant %+v", got, want)
	}
	for _, p := range [][2][]float64{{got.BidPx, want.BidPx}, {got.BidQty, want.BidQty}, {got.AskPx, want.AskPx}, {got.AskQty, want.AskQty}} {
		if len(p[0]) != len(p[1]) {
			return fmt.Sprintf("got  %+v\nwant %+v", got, want)
		}
		for i := range p[0] {
			if math.Float64bits(p[0][i]) != math.Float64bits(p[1][i]) {
				return fmt.Sprintf("level value %v != %v", p[0][i], p[1][i])
			}
		}
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// metricValue returns the value of an unlabelled counter or gauge.
func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// counterVec returns the collector of one labelled series from reg.
func counterVec(t testing.TB, reg *prometheus.Registry, name, label string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
					c.Add(m.GetCounter().GetValue())
					return c
				}
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return nil
}
