package writer_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer"
	"github.com/depthcap/depthcap/services/writer/internal/core"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

// lagProbe reads the writer's lag and processed-seq gauges.
type lagProbe struct {
	t   *testing.T
	reg *prometheus.Registry
}

func (p lagProbe) read() (lag, processed float64) {
	return metricValue(p.t, p.reg, "depthcap_writer_consumer_lag"), metricValue(p.t, p.reg, "depthcap_writer_processed_seq")
}

// waitFor polls until ok holds for the gauges, or fails after d.
func (p lagProbe) waitFor(d time.Duration, what string, ok func(lag, processed float64) bool) {
	p.t.Helper()
	var lag, processed float64
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if lag, processed = p.read(); ok(lag, processed) {
			return
		}
	}
	p.t.Fatalf("%s: lag gauge %v, processed seq %v after %v", what, lag, processed, d)
}

// TestConsumerLag proves that depthcap_writer_consumer_lag follows the
// consumer while Run consumes (nats.go never refreshes the consumer's
// cached info on its own): after a restart with a backlog the gauge shows
// a backlog, no larger than it, while the writer has not processed the
// stream's last message, and it reads 0 once it has.
func TestConsumerLag(t *testing.T) {
	envs := dataset(t, 2, testrec.SmallRecordings()...)
	h := newHarness(t)
	cfg := testConfig(t.TempDir(), h.url)
	half := len(envs) / 2

	lastSeq := func() uint64 {
		t.Helper()
		ctx, cancel := contextTimeout(10 * time.Second)
		defer cancel()
		st, err := h.js.Stream(ctx, md.StreamMarketData)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	// run starts a writer (a new process: a new registry), waits until
	// it processed the stream's last message and the gauge reads 0, and
	// stops it. It returns the largest lag seen before the last message
	// was processed.
	run := func(backlog uint64) float64 {
		t.Helper()
		last := lastSeq()
		reg := prometheus.NewRegistry()
		w := h.newWriter(cfg, reg)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}()
		var maxLag, lag, processed float64
		var caughtUp time.Time
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
			select {
			case err := <-done:
				t.Fatalf("writer stopped: %v", err)
			default:
			}
			lag = metricValue(t, reg, "depthcap_writer_consumer_lag")
			processed = metricValue(t, reg, "depthcap_writer_processed_seq")
			if lag > float64(backlog) {
				t.Fatalf("lag %v with a backlog of %d messages at start", lag, backlog)
			}
			if processed < float64(last) {
				maxLag = max(maxLag, lag)
				continue
			}
			if lag == 0 {
				return maxLag
			}
			if caughtUp.IsZero() {
				caughtUp = time.Now()
			}
			if time.Since(caughtUp) > 10*time.Second {
				break
			}
		}
		t.Fatalf("lag gauge %v, processed seq %v of %d: the gauge does not follow the consumer", lag, processed, last)
		return 0
	}

	h.publish(envs[:half], false)
	run(uint64(half))
	h.publish(envs[half:], false) // the backlog of the restart
	if maxLag := run(uint64(len(envs) - half)); maxLag == 0 {
		t.Fatalf("lag read 0 throughout a backlog of %d messages", len(envs)-half)
	} else {
		t.Logf("restart with %d messages of backlog: largest lag seen %v, 0 after the last one", len(envs)-half, maxLag)
	}
}

// TestConsumerLagStalled proves that the lag gauge shows a backlog that
// the consumer does not deliver (paused here; a stalled consumer in
// production), which no message can report: the idle writer asks the
// server. That is what the DepthcapWriterStalled alert needs (lag > 0
// and no progress).
func TestConsumerLagStalled(t *testing.T) {
	h, w, p, envs, half := halfwayWriter(t)

	pctx, pcancel := contextTimeout(10 * time.Second)
	defer pcancel()
	if _, err := h.js.PauseConsumer(pctx, md.StreamMarketData, w.ConsumerName(), time.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	h.publish(envs[half:], false)
	backlog := float64(len(envs) - half)
	p.waitFor(30*time.Second, "paused consumer with a backlog", func(lag, processed float64) bool {
		if processed != float64(half) {
			t.Fatalf("processed seq %v while the consumer is paused", processed)
		}
		return lag == backlog
	})
}

// TestConsumerGone proves that the writer notices when the server no
// longer has its consumer (memory storage: a NATS restart loses it; here
// it is deleted) and creates it again at the next sequence: the rest of
// the stream is processed and depthcap_writer_consumer_recreated_total
// counts it once, as does its checkpoint's trigger="consumer".
func TestConsumerGone(t *testing.T) {
	h, w, p, envs, half := halfwayWriter(t)

	dctx, dcancel := contextTimeout(10 * time.Second)
	defer dcancel()
	if err := h.js.DeleteConsumer(dctx, md.StreamMarketData, w.ConsumerName()); err != nil {
		t.Fatal(err)
	}
	h.publish(envs[half:], false)
	p.waitFor(time.Minute, "after the consumer was deleted", func(lag, processed float64) bool {
		return processed == float64(len(envs)) && lag == 0
	})
	if n := metricValue(t, p.reg, "depthcap_writer_consumer_recreated_total"); n != 1 {
		t.Fatalf("consumer recreated %v times, want 1", n)
	}
	if n := testutil.ToFloat64(counterVec(t, p.reg, "depthcap_writer_checkpoints_total", core.TriggerConsumer)); n != 1 {
		t.Fatalf("checkpoints before recreating the consumer: %v, want 1 (trigger=%q)", n, core.TriggerConsumer)
	}
}

// halfwayWriter publishes half of a dataset, runs a writer on it and
// waits until the writer has processed that half (lag 0). The caller
// publishes envs[half:].
func halfwayWriter(t *testing.T) (*harness, *writer.Writer, lagProbe, []envelope.Envelope, int) {
	t.Helper()
	envs := dataset(t, 1, testrec.SmallRecordings()...)
	h := newHarness(t)
	half := len(envs) / 2
	h.publish(envs[:half], false)
	w, p := runWriter(t, h, testConfig(t.TempDir(), h.url))
	p.waitFor(time.Minute, "catching up", func(lag, processed float64) bool { return processed == float64(half) && lag == 0 })
	return h, w, p, envs, half
}

// runWriter runs a writer on cfg until the test ends, when it must stop
// without error, and returns it with a probe of its gauges.
func runWriter(t *testing.T, h *harness, cfg writer.Config) (*writer.Writer, lagProbe) {
	t.Helper()
	reg := prometheus.NewRegistry()
	w := h.newWriter(cfg, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return w, lagProbe{t: t, reg: reg}
}
