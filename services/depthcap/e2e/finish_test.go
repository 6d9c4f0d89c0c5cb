//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0xD0)) }

// finish winds the run down so that everything the collectors captured is
// sealed and uploaded:
//
//  1. The simulator stalls every websocket connection (it writes nothing
//     more, and logs nothing more as sent), then the collectors get
//     SIGTERM: they flush their buffers to JetStream and exit 0. Stopping
//     them without the stall would leave frames in the send log that the
//     sim wrote into a socket just as the collector closed it.
//  2. The writer's watermark only moves with data: the snapshotter keeps
//     publishing, so the watermark passes the end of the collectors' last
//     period + WRITER_GRACE and the writer seals every diff and partial
//     file. Then the snapshotter stops; its newest snapshots stay in open
//     files (their period never ends in this run) and are left out of the
//     checks.
//  3. The writer catches up with the stream (processed seq = last seq,
//     consumer lag 0), the uploader ships every sealed file, and every
//     process stops with SIGTERM and exit status 0.
func (c *cluster) finish() {
	t := c.t
	ctx, cancel := ctxTimeout(10 * time.Minute)
	defer cancel()

	// 1. Collectors. A replica dropped several times in a row reconnects
	// with a growing backoff: wait until both are connected again.
	for _, m := range markets {
		var conns []simConn
		deadline := time.Now().Add(60 * time.Second)
		for {
			var err error
			conns, err = c.simc[m].conns(ctx)
			procs.Must(t, err)
			ok := len(conns) == 2
			for _, cn := range conns {
				ok = ok && time.Since(cn.Opened) > 2*time.Second
			}
			if ok || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(conns) != 2 {
			c.fail("%s: %d websocket connections 60s after the last drop, want 2 (one per replica)", m, len(conns))
		}
		if _, err := c.simc[m].fault(ctx, map[string]any{"type": "stall", "duration": "10m"}); err != nil {
			t.Fatalf("stall %s connections: %v", m, err)
		}
	}
	time.Sleep(1500 * time.Millisecond) // frames already written reach the collectors
	var collectors []*procs.Proc
	for _, m := range markets {
		for _, p := range c.collectors[m] {
			if ms, err := p.Scrape(ctx); err == nil {
				c.res.ingest[p.Name()] = ms
			} else {
				c.fail("scrape %s: %v", p.Name(), err)
			}
			collectors = append(collectors, p)
		}
	}
	for _, err := range stopAll(collectors...) {
		c.fail("collector did not stop cleanly: %v", err)
	}
	stopAt := time.Now()
	c.note("collectors stopped (SIGTERM, all buffers flushed)")
	for _, m := range markets {
		sent, err := c.simc[m].sent(ctx)
		procs.Must(t, err)
		faults, err := c.simc[m].faults(ctx)
		procs.Must(t, err)
		c.res.sent[m], c.res.faults[m] = sent, faults
	}
	ingestLast := c.streamLastSeq(ctx)

	// 2. Seal the last period with ingest data.
	c.res.lastPeriodEnd = stopAt.Truncate(period).Add(period)
	target := c.res.lastPeriodEnd.Add(grace + 500*time.Millisecond)
	c.note("waiting for the writer to seal the period ending %s (watermark >= %s)", c.res.lastPeriodEnd.UTC().Format("15:04:05"), target.UTC().Format("15:04:05.0"))
	wctx, wcancel := context.WithTimeout(ctx, time.Until(target)+90*time.Second)
	err := c.waitWriter(wctx, func(m procs.Metrics) bool {
		return m.Value("depthcap_writer_processed_seq") >= float64(ingestLast) &&
			m.Value("depthcap_writer_watermark_seconds") >= float64(target.UnixNano())/1e9
	})
	wcancel()
	if err != nil {
		t.Fatalf("the writer did not seal the last period: %v", err)
	}
	// The seal runs before the message that moved the watermark is
	// counted as processed: wait until everything stored so far is.
	if err := c.waitCaughtUp(ctx, 60*time.Second); err != nil {
		t.Fatalf("writer: %v", err)
	}
	if errs := stopAll(c.snap); len(errs) > 0 {
		c.fail("rest-snapshotter did not stop cleanly: %v", errs[0])
	}
	c.note("last period sealed; snapshotter stopped")

	// 3. Catch up, then the lag gauge.
	if err := c.waitCaughtUp(ctx, 60*time.Second); err != nil {
		t.Fatalf("writer: %v", err)
	}
	c.res.streamLast = c.streamLastSeq(ctx)
	c.res.lagOK = c.waitWriter(ctx, func(m procs.Metrics) bool {
		v, ok := m.Get("depthcap_writer_consumer_lag")
		c.res.lagSeen = v
		return ok && v == 0
	}, 15*time.Second) == nil
	wm, _ := c.writer.Scrape(ctx)
	c.res.writerFinal = wm
	c.note("writer caught up: processed seq %.0f = stream last seq %d; consumer_lag gauge %.0f; open files %.0f",
		wm.Value("depthcap_writer_processed_seq"), c.res.streamLast, wm.Value("depthcap_writer_consumer_lag"), wm.Value("depthcap_writer_open_files"))

	// Uploads.
	if err := c.waitUploaded(ctx, 120*time.Second); err != nil {
		c.fail("uploads: %v", err)
	}
	um, _ := c.uploader.Scrape(ctx)
	c.res.uploaderFinal = um
	c.note("uploader: every sealed file is in S3 (backlog %.0f)", um.Value("depthcap_upload_backlog_files"))

	// What the stream holds (snapshots are checked against it).
	c.res.snapshots = c.readSnapshots(ctx)
	c.res.streamMsgs = c.streamMsgs(ctx)
	c.res.dlqMsgs = c.dlqMsgs(ctx)

	for _, err := range stopAll(c.writer, c.uploader) {
		c.fail("did not stop cleanly: %v", err)
	}
	c.replay(ctx)
	if errs := stopAll(c.sim); len(errs) > 0 {
		c.fail("binance-sim did not stop cleanly: %v", errs[0])
	}
	c.g.StopSampling()
	c.note("writer, uploader, sim stopped")
}

// waitWriter polls the writer's metrics until ok; an optional timeout
// bounds the wait besides ctx.
func (c *cluster) waitWriter(ctx context.Context, ok func(procs.Metrics) bool, timeout ...time.Duration) error {
	if len(timeout) > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout[0])
		defer cancel()
	}
	var last procs.Metrics
	for {
		m, err := c.writer.Scrape(ctx)
		if err == nil {
			last = m
			if ok(m) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: processed seq %.0f, watermark %.3f, lag %.0f (scrape error: %v)", ctx.Err(),
				last.Value("depthcap_writer_processed_seq"), last.Value("depthcap_writer_watermark_seconds"), last.Value("depthcap_writer_consumer_lag"), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitCaughtUp waits until the writer's processed seq equals the stream's
// last sequence.
func (c *cluster) waitCaughtUp(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		last := c.streamLastSeq(ctx)
		m, err := c.writer.Scrape(ctx)
		if err == nil && m.Value("depthcap_writer_processed_seq") >= float64(last) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not caught up with MARKETDATA (last seq %d, processed %.0f): %w", last, m.Value("depthcap_writer_processed_seq"), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *cluster) streamInfo(ctx context.Context) *jetstream.StreamInfo {
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := c.js.Stream(rctx, md.StreamMarketData)
		if err == nil {
			var info *jetstream.StreamInfo
			info, err = s.Info(rctx)
			if err == nil {
				cancel()
				return info
			}
		}
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("MARKETDATA stream info: %v", ctx.Err())
	return nil
}

// dlqMsgs is the number of messages in the DLQ stream.
func (c *cluster) dlqMsgs(ctx context.Context) uint64 {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := c.js.Stream(rctx, md.StreamDLQ)
	if err != nil {
		c.fail("stream %s: %v", md.StreamDLQ, err)
		return 0
	}
	info, err := s.Info(rctx)
	if err != nil {
		c.fail("stream %s info: %v", md.StreamDLQ, err)
		return 0
	}
	return info.State.Msgs
}

func (c *cluster) streamLastSeq(ctx context.Context) uint64 { return c.streamInfo(ctx).State.LastSeq }
func (c *cluster) streamMsgs(ctx context.Context) uint64    { return c.streamInfo(ctx).State.Msgs }

// snapMsg is a REST snapshot as stored in MARKETDATA.
type snapMsg struct {
	market, symbol string
	id             int64
	recvNs         int64
}

// readSnapshots reads every snapshot message of MARKETDATA.
func (c *cluster) readSnapshots(ctx context.Context) []snapMsg {
	var out []snapMsg
	for _, m := range markets {
		msgs := bustest.StreamMessages(c.t, c.js, md.StreamMarketData, "md."+md.Exchange+"."+m+".snapshot.>")
		for _, msg := range msgs {
			var env envelope.Envelope
			if err := envelope.Unmarshal(msg.Data(), &env); err != nil {
				c.fail("snapshot message %s: %v", msg.Subject(), err)
				continue
			}
			id, ok := env.SeqID()
			if !ok {
				c.fail("snapshot message %s without an id", msg.Subject())
				continue
			}
			out = append(out, snapMsg{market: m, symbol: env.Symbol, id: id, recvNs: env.ReceivedNs})
		}
	}
	return out
}

// waitUploaded waits until every sealed local file has an object of the
// same size and the uploader's backlog is empty.
func (c *cluster) waitUploaded(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := c.s3.Client()
	if err != nil {
		return err
	}
	var missing []string
	for {
		local, err := localFiles(c.data)
		if err != nil {
			return err
		}
		objs, err := listObjects(ctx, cl)
		missing = missing[:0]
		if err == nil {
			for _, f := range local {
				if o, ok := objs[f.rel]; !ok || o.size != f.size {
					missing = append(missing, f.rel)
				}
			}
			if len(missing) == 0 && len(local) > 0 {
				m, err := c.uploader.Scrape(ctx)
				if err == nil && m.Value("depthcap_upload_backlog_files") == 0 {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of the sealed files have no matching object after %s (e.g. %v)", len(missing), timeout, first(missing, 5))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func first[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// replay runs a second writer, never killed, with an empty DATA_DIR over
// the same MARKETDATA (its consumer starts at sequence 1): the writer is a
// deterministic function of the stream, so its sealed files must be
// byte-identical to the objects of the run with two kill -9 and a NATS
// restart (checked in verify).
func (c *cluster) replay(ctx context.Context) {
	addr := procs.Addr(c.t)
	env := map[string]string{}
	for k, v := range c.writer.Spec().Env {
		env[k] = v
	}
	env["DATA_DIR"], env["METRICS_ADDR"] = c.replayData, addr
	p := c.g.Add(procs.Spec{Name: "writer-replay", Path: c.bins["writer"], MetricsAddr: addr, Env: env, StopTimeout: 40 * time.Second})
	c.limits[p.Name()] = c.limits["writer"]
	p.Start()
	last := c.streamLastSeq(ctx)
	rctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	var m procs.Metrics
	for {
		var err error
		m, err = p.Scrape(rctx)
		if err == nil && m.Value("depthcap_writer_processed_seq") >= float64(last) {
			break
		}
		select {
		case <-rctx.Done():
			c.fail("replay writer did not reach seq %d (at %.0f): %v", last, m.Value("depthcap_writer_processed_seq"), rctx.Err())
			_ = p.Stop()
			return
		case <-p.Exited():
			c.fail("replay writer exited: %v", p.ExitErr())
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	if errs := stopAll(p); len(errs) > 0 {
		c.fail("replay writer did not stop cleanly: %v", errs[0])
	}
	c.res.replayDone = true
	c.note("replay writer (no crash) processed MARKETDATA 1..%d", last)
}
