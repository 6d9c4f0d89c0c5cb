//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

// skipReq is an injected exchange-side sequence skip.
type skipReq struct {
	market, symbol string
	events         int
	at             time.Duration
}

// dropRec is a connection drop the test injected.
type dropRec struct {
	market, owner string
	conn          int64
	at            time.Duration
}

// chaos runs the fault schedule for the configured duration: random
// websocket drops, sequence skips, two writer kill -9s, a NATS restart and
// an S3 outage, while a watchdog checks that nothing else dies.
func (c *cluster) chaos() {
	d := c.set.Duration
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	goFn := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	jitter := func(base time.Duration) time.Duration {
		return base + time.Duration(c.rng.Int64N(int64(3*time.Second))) - 1500*time.Millisecond
	}
	// Fixed plan, drawn before the goroutines start (the rng is not
	// safe for concurrent use).
	kill1, natsAt, kill2 := jitter(d*20/100), jitter(d*42/100), jitter(d*67/100)
	skips := c.planSkips()
	dropSeed := c.rng.Uint64()

	// Drops stop 6s before the end so that every replica is connected
	// and healthy when the run is wound down.
	dctx, dcancel := context.WithTimeout(ctx, d-6*time.Second)
	defer dcancel()
	if c.set.Drops == "guarded" {
		goFn(func() { c.dropper(dctx, dropSeed) })
	}
	goFn(func() { c.injectSkips(ctx, skips) })
	goFn(func() {
		c.sleepUntil(ctx, kill1)
		c.killWriter(ctx, 1)
		c.sleepUntil(ctx, natsAt)
		c.restartNATS(ctx)
		c.sleepUntil(ctx, kill2)
		c.killWriter(ctx, 2)
	})
	goFn(func() { c.s3Outage(ctx) })
	wctx, wcancel := context.WithCancel(ctx)
	var wdDone sync.WaitGroup
	wdDone.Add(1)
	go func() { defer wdDone.Done(); c.watchdog(wctx) }()

	c.sleepUntil(ctx, d)
	wg.Wait() // the S3 outage may end after d
	wcancel()
	wdDone.Wait()
	c.note("chaos phase over")
}

func (c *cluster) sleepUntil(ctx context.Context, at time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(c.t0.Add(at))):
	}
}

// planSkips spreads the skips over [5s, duration-12s], alternating
// markets, each on its own symbol (two skips of one symbol in flight would
// merge into one range).
func (c *cluster) planSkips() []skipReq {
	var out []skipReq
	n := c.set.Skips * len(markets)
	if n == 0 {
		return nil
	}
	lo, hi := 5*time.Second, c.set.Duration-12*time.Second
	perm := map[string][]int{}
	for _, m := range markets {
		perm[m] = c.rng.Perm(len(c.symbols))
	}
	for i := range n {
		m := markets[i%len(markets)]
		at := lo + (hi-lo)*time.Duration(i)/time.Duration(n) + time.Duration(c.rng.Int64N(int64((hi-lo)/time.Duration(n))))
		out = append(out, skipReq{market: m, symbol: c.symbols[perm[m][i/len(markets)]], events: 1 + c.rng.IntN(3), at: at})
	}
	return out
}

func (c *cluster) injectSkips(ctx context.Context, plan []skipReq) {
	for _, s := range plan {
		c.sleepUntil(ctx, s.at)
		if ctx.Err() != nil {
			return
		}
		if _, err := c.simc[s.market].fault(ctx, map[string]any{"type": "skip", "symbol": s.symbol, "events": s.events}); err != nil {
			c.fail("inject skip %s %s: %v", s.market, s.symbol, err)
			continue
		}
		s.at = time.Since(c.t0)
		c.mu.Lock()
		c.res.skipsInjected = append(c.res.skipsInjected, s)
		c.mu.Unlock()
		c.note("skip injected: %s %s, %d diff event(s)", s.market, s.symbol, s.events)
	}
}

// dropper drops websocket connections on per-connection random schedules
// (exponential, mean E2E_DROP_MEAN), one replica at a time: a connection
// whose time has come is dropped only while every connection of its market
// has been open for 3s and no other drop of the market happened in the
// last 3s; otherwise it waits (re-checked every 200ms). Two replicas down
// together would lose events for real, which the checks would (rightly)
// report as gaps: that is not what this test is about.
func (c *cluster) dropper(ctx context.Context, seed uint64) {
	rng := newRand(seed)
	due := map[string]map[int64]time.Time{}
	last := map[string]time.Time{}
	for _, m := range markets {
		due[m] = map[int64]time.Time{}
	}
	const settle = 3 * time.Second
	for ctx.Err() == nil {
		for _, m := range markets {
			conns, err := c.simc[m].conns(ctx)
			if err != nil {
				if ctx.Err() == nil {
					c.note("dropper: %v", err)
				}
				continue
			}
			now := time.Now()
			healthy := len(conns) == 2
			open := map[int64]bool{}
			for _, cn := range conns {
				open[cn.ID] = true
				if now.Sub(cn.Opened) < settle {
					healthy = false
				}
				if _, ok := due[m][cn.ID]; !ok {
					due[m][cn.ID] = now.Add(time.Duration(rng.ExpFloat64() * float64(c.set.DropMean)))
				}
			}
			for id := range due[m] {
				if !open[id] {
					delete(due[m], id)
				}
			}
			slices.SortFunc(conns, func(a, b simConn) int { return due[m][a.ID].Compare(due[m][b.ID]) })
			for _, cn := range conns {
				if now.Before(due[m][cn.ID]) {
					continue
				}
				if !healthy || now.Sub(last[m]) < settle {
					due[m][cn.ID] = now.Add(200 * time.Millisecond)
					continue
				}
				owner := c.ownerOf(m, cn.Remote)
				if _, err := c.simc[m].fault(ctx, map[string]any{"type": "drop", "conn": cn.ID}); err != nil {
					if ctx.Err() == nil {
						c.note("dropper: %v", err)
					}
					continue
				}
				last[m], healthy = now, false
				delete(due[m], cn.ID)
				c.mu.Lock()
				c.res.drops = append(c.res.drops, dropRec{market: m, owner: owner, conn: cn.ID, at: time.Since(c.t0)})
				c.mu.Unlock()
				c.note("drop: %s connection %d of %s", m, cn.ID, owner)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ownerOf names the collector process whose TCP socket has the local port
// of remote (the sim's view of the client address).
func (c *cluster) ownerOf(market, remote string) string {
	_, portS, err := net.SplitHostPort(remote)
	if err != nil {
		return "?"
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return "?"
	}
	for _, p := range c.collectors[market] {
		if ports, err := p.TCPLocalPorts(); err == nil && ports[port] {
			return p.Name()
		}
	}
	return "?"
}

// killWriter SIGKILLs the writer, restarts it a second later and waits
// until it consumes again.
func (c *cluster) killWriter(ctx context.Context, n int) {
	if ctx.Err() != nil {
		return
	}
	c.setBusy("writer", true)
	defer c.setBusy("writer", false)
	m, _ := c.writer.Scrape(ctx)
	c.writer.Kill()
	c.note("writer kill -9 #%d (processed seq %.0f, open files %.0f)", n, m.Value("depthcap_writer_processed_seq"), m.Value("depthcap_writer_open_files"))
	time.Sleep(time.Second)
	c.writer.Start()
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.writer.WaitReady(rctx); err != nil {
		c.fail("writer after kill #%d: %v", n, err)
		return
	}
	c.note("writer restarted after kill #%d, ready", n)
}

// restartNATS stops nats-server (SIGTERM), keeps it down 4s and starts it
// again on the same port and store. The writer's consumer lives in
// memory, so the restart loses it: the writer must find it gone and
// create it again (depthcap_writer_consumer_recreated_total) before the
// next writer kill would hide a failure to.
func (c *cluster) restartNATS(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	c.setBusy("nats", true)
	defer c.setBusy("nats", false)
	before, _ := c.writer.Scrape(ctx)
	recreated := before.Sum("depthcap_writer_consumer_recreated_total")
	if err := c.nats.Stop(); err != nil {
		c.fail("nats stop: %v", err)
	}
	c.note("nats stopped")
	time.Sleep(4 * time.Second)
	c.nats.Start()
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.nats.WaitReady(rctx); err != nil {
		c.fail("nats restart: %v", err)
		return
	}
	c.note("nats started again, JetStream healthy")
	if err := c.waitWriter(ctx, func(m procs.Metrics) bool {
		return m.Sum("depthcap_writer_consumer_recreated_total") > recreated
	}, 60*time.Second); err != nil {
		c.fail("writer did not create its consumer again within 60s of the NATS restart: %v", err)
		return
	}
	c.note("writer created its consumer again after the NATS restart")
}

// s3Outage kills versitygw for 10s around the first seal of a period (a
// minute boundary + WRITER_GRACE), so that the uploader has files to ship
// while the store is down; it records what the uploader saw.
func (c *cluster) s3Outage(ctx context.Context) {
	first := c.t0.Add(4 * time.Second).Truncate(period).Add(period) // first boundary >= t0+4s
	startAt := first.Add(grace - 3*time.Second)
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Until(startAt)):
	}
	c.setBusy("versitygw", true)
	defer c.setBusy("versitygw", false)
	before, _ := c.uploader.Scrape(ctx)
	c.s3.Kill()
	c.note("S3 (versitygw) killed for 10s; the seal of the period ending %s is due in 3s", first.UTC().Format("15:04:05"))
	end := time.Now().Add(10 * time.Second)
	down := false
	for time.Now().Before(end) {
		if m, err := c.uploader.Scrape(ctx); err == nil {
			if v, ok := m.Get("depthcap_upload_store_up"); ok && v == 0 {
				down = true
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	after, _ := c.uploader.Scrape(ctx)
	c.s3.Start()
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.s3.WaitReady(rctx); err != nil {
		c.fail("S3 restart: %v", err)
		return
	}
	errs := after.Sum("depthcap_upload_errors_total") - before.Sum("depthcap_upload_errors_total")
	sealed := c.sealedFilesSince(first)
	c.mu.Lock()
	c.res.s3Errors, c.res.s3DownSeen, c.res.s3SealedDuring = errs, down, sealed
	c.mu.Unlock()
	c.note("S3 back after 10s: uploader saw the store down: %v, %0.f failed attempts, %d files sealed during the outage", down, errs, sealed)
}

// sealedFilesSince counts local sealed files modified after t.
func (c *cluster) sealedFilesSince(t time.Time) int {
	files, err := localFiles(c.data)
	if err != nil {
		return 0
	}
	n := 0
	for _, f := range files {
		if f.mod.After(t) {
			n++
		}
	}
	return n
}

// watchdog reports any process that exits while the test did not stop or
// kill it.
func (c *cluster) watchdog(ctx context.Context) {
	seen := map[string]bool{}
	for {
		for _, p := range c.g.Procs() {
			if seen[p.Name()] || c.isBusy(p.Name()) || p.Running() {
				continue
			}
			time.Sleep(50 * time.Millisecond) // a restart may be in progress
			if c.isBusy(p.Name()) || p.Running() {
				continue
			}
			seen[p.Name()] = true
			c.fail("%s exited unexpectedly (%v); log tail:\n%s", p.Name(), p.ExitErr(), p.LogTail(2000))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stopAll stops processes concurrently with SIGTERM and returns an error
// per process that did not exit with status 0.
func stopAll(ps ...*procs.Proc) []error {
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Stop(); err != nil {
				errs[i] = fmt.Errorf("%s: SIGTERM: %w", p.Name(), err)
			}
		}()
	}
	wg.Wait()
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}
