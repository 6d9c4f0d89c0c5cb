package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
	writersvc "github.com/depthcap/depthcap/services/writer"
)

// backlogBase is the receive time of the backlog's first message: the
// start of the hour two hours ago, plus a minute, so that the whole
// backlog (under an hour of market time) lies in one past hour: with
// WRITER_PERIOD=1h its files seal as soon as the watermark reaches now.
func backlogBase(now time.Time) time.Time {
	return now.Add(-2 * time.Hour).Truncate(time.Hour).Add(time.Minute)
}

// rssSeries samples the RSS of processes every interval.
type rssSeries struct {
	mu   sync.Mutex
	pts  map[string][][2]int64 // name -> (unix ns, rss)
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(ps []*procs.Proc, every time.Duration) *rssSeries {
	s := &rssSeries{pts: map[string][][2]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			for _, p := range ps {
				if pid := p.Pid(); pid != 0 {
					if st, err := procs.ReadProcStatus(pid); err == nil {
						s.mu.Lock()
						s.pts[p.Name()] = append(s.pts[p.Name()], [2]int64{time.Now().UnixNano(), st.RSS})
						s.mu.Unlock()
					}
				}
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSeries) close() { close(s.stop); <-s.done }

// at is the first sample of name at or after t (the last one if none).
func (s *rssSeries) at(name string, t int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	pts := s.pts[name]
	for _, p := range pts {
		if p[0] >= t {
			return p[1]
		}
	}
	if len(pts) > 0 {
		return pts[len(pts)-1][1]
	}
	return 0
}

// ceilingAndReplay measures, on a machine with nothing else of ours
// running: the raw JetStream ceiling (one publisher process, three
// nats-server processes: ids with the 2m and the 100ms window, no ids),
// the dedup window's memory, then the writer's replay of the 2m server's
// backlog, the checkpoint's and the sealed files' bytes per row.
func (r *scenarioRun) ceilingAndReplay(ctx context.Context) error {
	tb := r.tb
	dir := filepath.Join(r.dir, "ceiling")
	g := procs.NewGroup(tb, dir)
	defer g.Close()
	natsA, natsB, natsC := g.AddNATS("nats-2m"), g.AddNATS("nats-100ms"), g.AddNATS("nats-noids")
	g.StartSampling(250 * time.Millisecond)
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, n := range []*procs.NATS{natsA, natsB, natsC} {
		n.Start()
	}
	for _, n := range []*procs.NATS{natsA, natsB, natsC} {
		procs.Must(tb, n.WaitReady(rctx))
	}

	// The replay writer exists before the backlog: it is stopped, the
	// stream fills, it is restarted.
	wData := filepath.Join(dir, "writer-data")
	wAddr := procs.Addr(tb)
	writer := g.Add(procs.Spec{Name: "writer", Path: r.bins["writer"], MetricsAddr: wAddr, StopTimeout: 180 * time.Second,
		Env: svcEnv(wAddr, natsA.URL(), map[string]string{"DATA_DIR": wData})})
	writer.Start()
	procs.Must(tb, writer.WaitReady(rctx))
	if err := writer.Stop(); err != nil {
		return fmt.Errorf("stop the writer before the backlog: %w", err)
	}
	for _, x := range []struct {
		n   *procs.NATS
		dup time.Duration
	}{{natsB, 100 * time.Millisecond}, {natsC, 2 * time.Minute}} {
		if err := ensureStreamsAt(rctx, x.n.URL(), x.dup); err != nil {
			return err
		}
	}

	// The ceiling publisher.
	base := backlogBase(time.Now())
	req := PublishRequest{Scenario: r.sc.Name, M: r.sc.Nominal, Seed: r.o.Seed, BaseNs: base.UnixNano(), N: r.sc.ReplayEvents, MaxPending: 4096,
		Runs: []PublishRun{
			{Name: "ids-100ms", URL: natsB.URL(), IDs: true, N: r.sc.CeilingEvents},
			{Name: "noids-2m", URL: natsC.URL(), IDs: false, N: r.sc.CeilingEvents},
			{Name: "ids-2m", URL: natsA.URL(), IDs: true, N: r.sc.ReplayEvents},
		}}
	reqPath, outPath := filepath.Join(dir, "publish-request.json"), filepath.Join(dir, "publish-result.json")
	if err := writeJSON(reqPath, req); err != nil {
		return err
	}
	pub := g.Add(procs.Spec{Name: "publisher", Path: r.o.Self, Args: []string{"bench", "publish", reqPath, outPath}, StopTimeout: 5 * time.Second})
	servers := []*procs.Proc{natsA.Proc, natsB.Proc, natsC.Proc}
	rss := sampleRSS(servers, 100*time.Millisecond)
	c0 := snapCPU(servers)
	r.logf("ceiling: publishing %d messages of the scenario's mix (ids, 2m window; first %d also with a 100ms window and without ids)", r.sc.ReplayEvents, r.sc.CeilingEvents)
	pub.Start()
	select {
	case <-pub.Exited():
	case <-ctx.Done():
		pub.Kill()
		rss.close()
		return ctx.Err()
	case <-time.After(10 * time.Minute):
		pub.Kill()
		rss.close()
		return fmt.Errorf("ceiling publisher did not finish within 10 minutes:\n%s", pub.LogTail(2000))
	}
	c1 := snapCPU(servers)
	rss.close()
	if err := pub.ExitErr(); err != nil {
		return fmt.Errorf("ceiling publisher: %v\n%s", err, pub.LogTail(2000))
	}
	var out PublishOutput
	b, err := os.ReadFile(outPath)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	r.fillCeiling(out, c0, c1, rss, map[string]*procs.NATS{"ids-100ms": natsB, "ids-2m": natsA, "noids-2m": natsC})
	natsB.Kill()
	natsC.Kill()
	if !r.o.Keep {
		_ = os.RemoveAll(natsB.StoreDir)
		_ = os.RemoveAll(natsC.StoreDir)
	}
	c := &r.res.Ceiling
	r.logf("ceiling: ids 2m %.0f msg/s (first %d: %.0f), ids 100ms %.0f, no ids %.0f; mean envelope %.0f B; dedup %.0f B per id in the window",
		c.IDs, r.sc.CeilingEvents, c.IDsFirstN, c.IDs100ms, c.NoIDs, c.MeanBytes, c.DedupBytes)

	if err := r.replay(ctx, natsA, writer, wData); err != nil {
		return err
	}
	return r.sealBytes(ctx, g, natsA, base)
}

func ensureStreamsAt(ctx context.Context, url string, dup time.Duration) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return bus.EnsureStreams(ctx, js, streamConfig(dup))
}

// fillCeiling turns the publisher's output into the ceiling results.
func (r *scenarioRun) fillCeiling(out PublishOutput, c0, c1 cpuSnap, rss *rssSeries, servers map[string]*procs.NATS) {
	c := &r.res.Ceiling
	c.Generated, c.MeanBytes, c.Kinds = out.Generated, out.MeanBytes, out.Kinds
	c.MachineAvg = c0.machine.Cores(c1.machine, runtime.NumCPU())
	for _, run := range out.Runs {
		n := servers[run.Name]
		cr := CeilingRun{Name: run.Name, IDs: run.IDs, Window: "2m", N: run.N, Rate: run.Rate, Errors: run.Errors}
		if strings.HasSuffix(run.Name, "100ms") {
			cr.Window = "100ms"
		}
		if run.Acked > 0 {
			cr.PubUS = run.CPU.Seconds() * 1e6 / float64(run.Acked)
			cr.NATSUS = float64(c1.ticks[n.Name()]-c0.ticks[n.Name()]) / 100 * 1e6 / float64(run.Acked)
		}
		if d := float64(run.EndNs-run.StartNs) / 1e9; d > 0 {
			cr.MBPerS = float64(run.Bytes) / d / 1e6
		}
		cr.NATSRSSEnd = rss.at(n.Name(), run.EndNs)
		cr.NATSPeak = n.Usage().PeakRSS
		c.Runs = append(c.Runs, cr)
		switch run.Name {
		case "ids-2m":
			c.IDs = run.Rate
			for _, mk := range run.Marks {
				if mk.N == r.sc.CeilingEvents {
					c.RSS2mAtN = rss.at(n.Name(), mk.AtNs)
					c.IDsFirstN = float64(mk.N) / (float64(mk.AtNs-run.StartNs) / 1e9)
				}
			}
		case "ids-100ms":
			c.IDs100ms, c.RSS100msN = run.Rate, cr.NATSRSSEnd
		case "noids-2m":
			c.NoIDs, c.RSSNoIDsN = run.Rate, cr.NATSRSSEnd
		}
	}
	if c.RSS2mAtN > 0 && c.RSS100msN > 0 {
		c.DedupBytes = float64(c.RSS2mAtN-c.RSS100msN) / float64(r.sc.CeilingEvents)
	}
}

// replay restarts the stopped writer on the backlog and times its
// catch-up; its shutdown checkpoint then gives the bytes per buffered row.
func (r *scenarioRun) replay(ctx context.Context, natsA *procs.NATS, writer *procs.Proc, wData string) error {
	nc, err := nats.Connect(natsA.URL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	last, msgs, err := lastSeq(ctx, js)
	if err != nil {
		return err
	}
	rep := &r.res.Replay
	rep.Backlog = msgs
	rep.Limit = r.o.ReplayMax.Seconds()
	for _, pr := range []struct {
		name    string
		filters []string
		limit   time.Duration
	}{
		{"no filter", nil, 30 * time.Second},
		// Why the writer shards read unfiltered (services/writer.ShardFilters).
		{"32 partition filters (what WRITER_SHARD=0/2 would need)", writersvc.PartitionFilters(0, 2), 10 * time.Second},
	} {
		p, err := deliveryProbe(ctx, js, natsA.Proc, pr.name, pr.filters, pr.limit)
		if err != nil {
			return fmt.Errorf("delivery probe %s: %w", pr.name, err)
		}
		rep.Probes = append(rep.Probes, p)
		r.logf("replay: NATS delivery to a plain pull consumer, %s: %d messages in %.1fs, %.0f msg/s, %.1f µs NATS CPU per message", p.Name, p.Msgs, p.Seconds, p.Rate, p.NATSUS)
	}
	r.logf("replay: writer restarted on a backlog of %d messages (timed for at most %s)", msgs, r.o.ReplayMax)
	both := []*procs.Proc{writer, natsA.Proc}
	t0 := time.Now()
	writer.Start()
	c0 := snapCPU(both)
	var tFirst time.Time
	var m procs.Metrics
	seq := 0.0
	for {
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
		if writer.Pid() == 0 {
			return fmt.Errorf("writer exited during the replay (%v):\n%s", writer.ExitErr(), writer.LogTail(3000))
		}
		mm, err := writer.Scrape(ctx)
		if err != nil {
			continue // not listening yet
		}
		m = mm
		seq = m.Value("depthcap_writer_processed_seq")
		if seq > 0 && tFirst.IsZero() {
			tFirst = time.Now()
			if r.o.Profile > 0 {
				go r.profileWriter(ctx, writer)
			}
		}
		if seq >= float64(last) {
			rep.CaughtUp = true
			break
		}
		if !tFirst.IsZero() && time.Since(tFirst) >= r.o.ReplayMax {
			break
		}
		if time.Since(t0) > r.o.ReplayMax+time.Minute {
			return fmt.Errorf("writer replay: no message processed within %s", time.Since(t0).Round(time.Second))
		}
	}
	rep.Processed = seq // the stream starts at sequence 1
	c1 := snapCPU(both)
	done := time.Now()
	rep.StartSeconds = tFirst.Sub(t0).Seconds()
	rep.Seconds = done.Sub(tFirst).Seconds()
	rep.Rate = rep.Processed / done.Sub(tFirst).Seconds()
	rep.RateFromStart = rep.Processed / done.Sub(t0).Seconds()
	win := c1.at.Sub(c0.at).Seconds()
	wcpu := float64(c1.ticks["writer"]-c0.ticks["writer"]) / 100
	rep.WriterCores = wcpu / win
	rep.NATSCores = float64(c1.ticks["nats-2m"]-c0.ticks["nats-2m"]) / 100 / win
	rep.WriterUSPerMsg = wcpu * 1e6 / math.Max(rep.Processed, 1)
	rep.MachineAvg = c0.machine.Cores(c1.machine, runtime.NumCPU())
	rep.Rows = m.Sum("depthcap_writer_rows_total")
	rep.Checkpoints = m.Sum("depthcap_writer_checkpoints_total")
	if err := writer.Stop(); err != nil {
		return fmt.Errorf("stop the writer after the replay: %w", err)
	}
	rep.WriterPeakRSS, rep.NATSPeakRSS = writer.Usage().PeakRSS, natsA.Usage().PeakRSS
	rep.CkptBytes = dirBytes(filepath.Join(wData, ".writer"))
	rep.PartBytes = dirBytes(filepath.Join(wData, ".parts"))
	if rep.Rows > 0 {
		rep.CkptPerRow = float64(rep.CkptBytes+rep.PartBytes) / rep.Rows
	}
	r.logf("replay: %.0f of %d messages (caught up: %v) in %.1fs (+%.1fs start-up): %.0f msg/s, writer %.2f cores (%.1f µs/msg), NATS %.2f cores; checkpoint %s + parts %s = %.0f B/row",
		rep.Processed, msgs, rep.CaughtUp, rep.Seconds, rep.StartSeconds, rep.Rate, rep.WriterCores, rep.WriterUSPerMsg, rep.NATSCores, mib(rep.CkptBytes), mib(rep.PartBytes), rep.CkptPerRow)
	if !r.o.Keep {
		_ = os.RemoveAll(wData)
	}
	return nil
}

// sealBytes publishes closers and runs a second writer with
// WRITER_PERIOD=1h over a share of the backlog's partitions: it seals
// every file of that share, whose sizes give the bytes per row.
func (r *scenarioRun) sealBytes(ctx context.Context, g *procs.Group, natsA *procs.NATS, base time.Time) error {
	gen, err := NewGenerator(r.sc, r.sc.RateAt(r.sc.Nominal), r.o.Seed, base)
	if err != nil {
		return err
	}
	closers, err := gen.Closers(time.Now(), 1<<52)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(natsA.URL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		return err
	}
	for _, m := range closers {
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: m.Subject, Data: m.Data, Header: nats.Header{jetstream.MsgIDHeader: []string{string(m.ID)}}}); err != nil {
			return fmt.Errorf("publish closer: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		return fmt.Errorf("closers not acknowledged within 30s")
	}
	shard := fmt.Sprintf("0/%d", r.sc.BytesShards)
	data := filepath.Join(r.dir, "ceiling", "seal-data")
	addr := procs.Addr(r.tb)
	w := g.Add(procs.Spec{Name: "writer-seal", Path: r.bins["writer"], MetricsAddr: addr, StopTimeout: 60 * time.Second,
		Env: svcEnv(addr, natsA.URL(), map[string]string{"DATA_DIR": data, "WRITER_PERIOD": "1h", "WRITER_GRACE": "5s", "WRITER_SHARD": shard})})
	bres := &r.res.Bytes
	bres.Shard, bres.Period = shard, "1h"
	r.logf("bytes: writer-seal (WRITER_SHARD=%s, WRITER_PERIOD=1h) seals its share of the backlog", shard)
	t0 := time.Now()
	w.Start()
	consumer := "writer-" + strings.ReplaceAll(shard, "/", "-of-")
	var m procs.Metrics
	lastSealed, stable := -1.0, 0
	for {
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return ctx.Err()
		}
		if w.Pid() == 0 {
			return fmt.Errorf("writer-seal exited (%v):\n%s", w.ExitErr(), w.LogTail(3000))
		}
		if time.Since(t0) > 8*time.Minute {
			return fmt.Errorf("writer-seal not done within 8 minutes")
		}
		if m, err = w.Scrape(ctx); err != nil {
			continue
		}
		pending, err := consumerPending(ctx, js, consumer)
		if err != nil {
			continue // not created yet
		}
		sealed := m.Sum("depthcap_writer_sealed_files_total")
		if pending == 0 && sealed > 0 && sealed == lastSealed {
			stable++
		} else {
			stable = 0
		}
		lastSealed = sealed
		if stable >= 2 {
			break
		}
	}
	bres.Seconds = time.Since(t0).Seconds()
	bres.SealSeconds = m.Sum("depthcap_writer_seal_seconds_sum")
	bres.WriterCPUSec = w.Usage().CPU.Seconds()
	if pid := w.Pid(); pid != 0 {
		if t, err := procs.ReadCPUTicks(pid); err == nil {
			bres.WriterCPUSec = float64(t) / 100
		}
	}
	if rows := m.Sum("depthcap_writer_rows_total"); rows > 0 {
		bres.USPerRow = bres.WriterCPUSec * 1e6 / rows
	}
	w.Kill()
	kinds, sidecars, err := parquetBytes(data)
	if err != nil {
		return err
	}
	bres.Kinds, bres.SidecarBytes = kinds, sidecars
	for _, k := range kinds {
		r.logf("bytes: %s: %d files, %d rows, %.1f B/row (%.1f without footers, %.0f rows/file)", k.Kind, k.Files, k.Rows, k.PerRow, k.DataPerRow, k.RowsPerFile)
	}
	if !r.o.Keep {
		_ = os.RemoveAll(data)
	}
	natsA.Kill()
	if !r.o.Keep {
		_ = os.RemoveAll(natsA.StoreDir)
	}
	return nil
}

// deliveryProbe reads the stream from the start with a pull consumer set
// up as the writer's (AckAll, unlimited ack pending, PullMaxBytes 16 MiB)
// and the given filters, for at most limit, and measures NATS's CPU.
func deliveryProbe(ctx context.Context, js jetstream.JetStream, server *procs.Proc, name string, filters []string, limit time.Duration) (Probe, error) {
	p := Probe{Name: name, Filters: len(filters)}
	s, err := js.Stream(ctx, md.StreamMarketData)
	if err != nil {
		return p, err
	}
	cname := fmt.Sprintf("bench-probe-%d", len(filters))
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: cname, AckPolicy: jetstream.AckAllPolicy, MaxAckPending: -1,
		MaxDeliver: -1, AckWait: 5 * time.Minute, FilterSubjects: filters})
	if err != nil {
		return p, err
	}
	defer func() { _ = s.DeleteConsumer(context.Background(), cname) }()
	info, err := c.Info(ctx)
	if err != nil {
		return p, err
	}
	it, err := c.Messages(jetstream.PullMaxBytes(16 << 20))
	if err != nil {
		return p, err
	}
	defer it.Stop()
	cpu0, _ := procs.ReadCPUTicks(server.Pid())
	t0 := time.Now()
	deadline := t0.Add(limit)
	var last jetstream.Msg
	for p.Msgs < info.NumPending && time.Now().Before(deadline) {
		m, err := it.Next()
		if err != nil {
			return p, err
		}
		last = m
		p.Msgs++
		if p.Msgs%10000 == 0 {
			_ = m.Ack()
		}
	}
	if last != nil {
		_ = last.Ack()
	}
	p.Seconds = time.Since(t0).Seconds()
	cpu1, _ := procs.ReadCPUTicks(server.Pid())
	if p.Msgs > 0 {
		p.Rate = float64(p.Msgs) / p.Seconds
		p.NATSUS = float64(cpu1-cpu0) / 100 * 1e6 / float64(p.Msgs)
	}
	return p, nil
}

func consumerPending(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "MARKETDATA")
	if err != nil {
		return 0, err
	}
	c, err := s.Consumer(ctx, name)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// parquetBytes sums the sealed Parquet files under dir by kind directory:
// bytes, rows (from the footers) and footer bytes.
func parquetBytes(dir string) ([]KindBytes, int64, error) {
	by := map[string]*KindBytes{}
	var sidecars int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasPrefix(rel, ".") {
			return nil // .writer, .parts
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".gaps.json") {
			sidecars += fi.Size()
			return nil
		}
		if !strings.HasSuffix(path, ".parquet") {
			return nil
		}
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) != 4 {
			return nil
		}
		kind := parts[0] + "/" + parts[1]
		rows, footer, err := parquetRows(path)
		if err != nil {
			return err
		}
		k := by[kind]
		if k == nil {
			k = &KindBytes{Kind: kind}
			by[kind] = k
		}
		k.Files++
		k.Rows += rows
		k.Bytes += fi.Size()
		k.FooterBytes += footer
		return nil
	})
	var out []KindBytes
	for _, k := range by {
		if k.Rows > 0 {
			k.PerRow = float64(k.Bytes) / float64(k.Rows)
			k.DataPerRow = float64(k.Bytes-k.FooterBytes) / float64(k.Rows)
			k.RowsPerFile = float64(k.Rows) / float64(k.Files)
		}
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out, sidecars, err
}

// parquetRows returns a Parquet file's row count and the bytes of its
// footer (metadata, its length and the magics).
func parquetRows(path string) (int64, int64, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return 0, 0, fmt.Errorf("open %s: %w", path, err)
	}
	rows := rdr.NumRows()
	_ = rdr.Close()
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], fi.Size()-8); err != nil {
		return 0, 0, err
	}
	return rows, int64(binary.LittleEndian.Uint32(tail[:4])) + 8 + 4, nil
}

// dirBytes is the size of every file under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// profileWriter saves a CPU profile of the writer (its /debug/pprof) to
// the work directory.
func (r *scenarioRun) profileWriter(ctx context.Context, writer *procs.Proc) {
	path := filepath.Join(r.dir, r.sc.Name+"-writer-replay.pprof")
	url := writer.MetricsURL(fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(1, int(r.o.Profile.Seconds()))))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		r.logf("replay profile: %v", err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.logf("replay profile: %v", err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, b)
	}
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		r.logf("replay profile: %v", err)
		return
	}
	r.logf("replay: writer CPU profile in %s", path)
}
