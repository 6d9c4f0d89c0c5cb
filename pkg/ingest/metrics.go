package ingest

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/depthcap/depthcap/pkg/md"
)

// metricVecs are the ingest collectors. Both engines of an all-in-one
// process (spot and futures) share one set: registering a second time
// returns the collectors already registered.
type metricVecs struct {
	frames, bytes, published, duplicates, deferred, dropped *prometheus.CounterVec // market, kind
	ignored                                                 *prometheus.CounterVec // market, reason
	gaps                                                    *prometheus.CounterVec // market, kind, reason
	gapsPending                                             *prometheus.GaugeVec   // market
	reconnects                                              *prometheus.CounterVec // market, reason
	rotations                                               *prometheus.CounterVec // market, reason
	attempts                                                *prometheus.CounterVec // market, result
	conns                                                   *prometheus.GaugeVec   // market
	streams                                                 *prometheus.GaugeVec   // market
	bufferBytes, bufferFill                                 *prometheus.GaugeVec   // market
	dlq                                                     *prometheus.CounterVec // market, kind, reason
	dlqDropped                                              *prometheus.CounterVec // market
	snapshotReqs                                            *prometheus.CounterVec // market, result
	ageMax                                                  *prometheus.GaugeVec   // market, kind
	silent                                                  *prometheus.GaugeVec   // market, kind, over
	controlErrors                                           *prometheus.CounterVec // market
}

func newMetricVecs(reg prometheus.Registerer) (*metricVecs, error) {
	mk := []string{"market", "kind"}
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_ingest_" + name, Help: help}, labels)
	}
	gv := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_ingest_" + name, Help: help}, labels)
	}
	v := &metricVecs{
		frames:        cv("frames_total", "Depth frames received (every verdict).", mk...),
		bytes:         cv("bytes_total", "Bytes of depth frames received.", mk...),
		published:     cv("published_total", "Depth frames handed to the publisher.", mk...),
		duplicates:    cv("duplicates_total", "Frames skipped because their id was not above the last one (rotation overlap, unchanged spot partials).", mk...),
		deferred:      cv("deferred_total", "Frames of a rotation's new connection left to the old one because they would open a gap.", mk...),
		dropped:       cv("dropped_total", "Frames dropped because the publish buffer was full (reported in buffer_overflow gap records).", mk...),
		ignored:       cv("ignored_total", "Frames counted and ignored: not_depth (trade etc.), subscribe replies.", "market", "reason"),
		gaps:          cv("gaps_total", "Gap records created.", "market", "kind", "reason"),
		gapsPending:   gv("gap_records_pending", "Gap records waiting for room in the publish buffer.", "market"),
		reconnects:    cv("reconnects_total", "Connections replaced after a failure.", "market", "reason"),
		rotations:     cv("rotations_total", "Make-before-break connection rotations.", "market", "reason"),
		attempts:      cv("connection_attempts_total", "Websocket connection attempts.", "market", "result"),
		conns:         gv("connections", "Open websocket connections.", "market"),
		streams:       gv("streams", "Streams assigned to connections.", "market"),
		bufferBytes:   gv("buffer_bytes", "Bytes held by the publish buffer.", "market"),
		bufferFill:    gv("buffer_fill_ratio", "Publish buffer bytes / INGEST_PUBLISH_BUFFER_BYTES.", "market"),
		dlq:           cv("dlq_total", "Frames sent to the dead-letter subject.", "market", "kind", "reason"),
		dlqDropped:    cv("dlq_dropped_total", "Dead-letter messages dropped because the dead-letter queue was full.", "market"),
		snapshotReqs:  cv("snapshot_requests_total", "ctl.snapshot requests after diff gaps, by result.", "market", "result"),
		ageMax:        gv("last_frame_age_max_seconds", "Age of the oldest last frame over the market's streams of a kind.", mk...),
		silent:        gv("silent_streams", "Streams whose last frame is older than the threshold.", "market", "kind", "over"),
		controlErrors: cv("control_errors_total", "Error replies from the exchange.", "market"),
	}
	var err error
	r := func(c prometheus.Collector) prometheus.Collector { return register(reg, c, &err) }
	v.frames = r(v.frames).(*prometheus.CounterVec)
	v.bytes = r(v.bytes).(*prometheus.CounterVec)
	v.published = r(v.published).(*prometheus.CounterVec)
	v.duplicates = r(v.duplicates).(*prometheus.CounterVec)
	v.deferred = r(v.deferred).(*prometheus.CounterVec)
	v.dropped = r(v.dropped).(*prometheus.CounterVec)
	v.ignored = r(v.ignored).(*prometheus.CounterVec)
	v.gaps = r(v.gaps).(*prometheus.CounterVec)
	v.gapsPending = r(v.gapsPending).(*prometheus.GaugeVec)
	v.reconnects = r(v.reconnects).(*prometheus.CounterVec)
	v.rotations = r(v.rotations).(*prometheus.CounterVec)
	v.attempts = r(v.attempts).(*prometheus.CounterVec)
	v.conns = r(v.conns).(*prometheus.GaugeVec)
	v.streams = r(v.streams).(*prometheus.GaugeVec)
	v.bufferBytes = r(v.bufferBytes).(*prometheus.GaugeVec)
	v.bufferFill = r(v.bufferFill).(*prometheus.GaugeVec)
	v.dlq = r(v.dlq).(*prometheus.CounterVec)
	v.dlqDropped = r(v.dlqDropped).(*prometheus.CounterVec)
	v.snapshotReqs = r(v.snapshotReqs).(*prometheus.CounterVec)
	v.ageMax = r(v.ageMax).(*prometheus.GaugeVec)
	v.silent = r(v.silent).(*prometheus.GaugeVec)
	v.controlErrors = r(v.controlErrors).(*prometheus.CounterVec)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// register registers c, or returns the collector already registered
// under the same description (the other engine of the process). The
// first other error is stored in *errp.
func register(reg prometheus.Registerer, c prometheus.Collector, errp *error) prometheus.Collector {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return are.ExistingCollector
	}
	if *errp == nil {
		*errp = fmt.Errorf("register ingest metrics: %w", err)
	}
	return c
}

// kindMetrics are the per-frame counters of one market and kind, resolved
// once so that the frame path does not look labels up.
type kindMetrics struct {
	frames, bytes, published, duplicates, deferred, dropped prometheus.Counter
}

// silentThresholds are the "over" labels of silent_streams.
var silentThresholds = []struct {
	label string
	secs  float64
}{{"10s", 10}, {"60s", 60}, {"300s", 300}}

// engineMetrics are one engine's resolved collectors.
type engineMetrics struct {
	v    *metricVecs
	kind [md.Gap + 1]kindMetrics
}

func newEngineMetrics(reg prometheus.Registerer, m md.Market) (*engineMetrics, error) {
	v, err := newMetricVecs(reg)
	if err != nil {
		return nil, err
	}
	em := &engineMetrics{v: v}
	for _, k := range []md.Kind{md.Diff, md.Partial} {
		l := []string{m.String(), k.String()}
		em.kind[k] = kindMetrics{
			frames:     v.frames.WithLabelValues(l...),
			bytes:      v.bytes.WithLabelValues(l...),
			published:  v.published.WithLabelValues(l...),
			duplicates: v.duplicates.WithLabelValues(l...),
			deferred:   v.deferred.WithLabelValues(l...),
			dropped:    v.dropped.WithLabelValues(l...),
		}
	}
	return em, nil
}
