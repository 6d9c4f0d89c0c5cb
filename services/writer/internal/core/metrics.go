package core

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the writer's Prometheus collectors.
type Metrics struct {
	Rows              *prometheus.CounterVec // market, kind
	Duplicates        *prometheus.CounterVec // market, kind
	Verdicts          *prometheus.CounterVec // market, kind, verdict (gap, fill, overlap, reset, beyond_horizon)
	Gaps              *prometheus.CounterVec // market, kind: gaps listed in sealed manifests
	Reports           *prometheus.CounterVec // market, kind, outcome (open, covered, pending, unfilled)
	DLQ               *prometheus.CounterVec // reason
	Redelivered       prometheus.Counter
	CkptDuration      prometheus.Histogram
	CkptBytes         prometheus.Gauge
	Checkpoints       *prometheus.CounterVec // trigger
	Parts             prometheus.Counter
	PartBytes         prometheus.Counter
	Sealed            *prometheus.CounterVec // market, kind
	SealedBytes       prometheus.Counter
	SealDuration      prometheus.Histogram
	Buffered          prometheus.Gauge
	OpenFiles         prometheus.Gauge
	Watermark         prometheus.Gauge
	LastSeq           prometheus.Gauge
	Lag               prometheus.Gauge
	ConsumerRecreated prometheus.Counter
	PublishRetry      prometheus.Counter
	GapsForgotten     prometheus.Counter
}

// NewMetrics builds the collectors and registers them on reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	mk := []string{"market", "kind"}
	m := &Metrics{
		Rows:              prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_writer_rows_total", Help: "Rows written (buffered for a file), by market and kind."}, mk),
		Duplicates:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_writer_duplicates_total", Help: "Events skipped as duplicates of events already written."}, mk),
		Verdicts:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_writer_sequence_events_total", Help: "Events by sequence-check verdict other than in-order append and duplicate: gap, fill, overlap, reset, beyond_horizon."}, []string{"market", "kind", "verdict"}),
		Gaps:              prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_writer_gaps_total", Help: "Unfilled gaps listed in sealed files' manifests."}, mk),
		Reports:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_writer_gap_reports_total", Help: "Collector gap records by outcome: open (diffs: matches an open gap), pending (waiting for evidence: diffs until the chain passes the range, partials and snapshots until their file seals), covered (the events are in the files: another replica delivered them), unfilled (partials and snapshots: listed as a gap at seal)."}, []string{"market", "kind", "outcome"}),
		DLQ:               prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_writer_dlq_total", Help: "Messages quarantined to the dead-letter subject, by reason."}, []string{"reason"}),
		Redelivered:       prometheus.NewCounter(prometheus.CounterOpts{Name: "depthcap_writer_redelivered_total", Help: "Messages skipped because their stream sequence was already processed."}),
		CkptDuration:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "depthcap_writer_checkpoint_seconds", Help: "Checkpoint duration.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		CkptBytes:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "depthcap_writer_checkpoint_bytes", Help: "Size of the last checkpoint file."}),
		Checkpoints:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_writer_checkpoints_total", Help: "Checkpoints by trigger: interval, memory, seal, shutdown, consumer (before the consumer is created again)."}, []string{"trigger"}),
		Parts:             prometheus.NewCounter(prometheus.CounterOpts{Name: "depthcap_writer_parts_total", Help: "Part files written."}),
		PartBytes:         prometheus.NewCounter(prometheus.CounterOpts{Name: "depthcap_writer_part_bytes_total", Help: "Bytes of part files written."}),
		Sealed:            prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_writer_sealed_files_total", Help: "Files sealed."}, mk),
		SealedBytes:       prometheus.NewCounter(prometheus.CounterOpts{Name: "depthcap_writer_sealed_bytes_total", Help: "Bytes of sealed Parquet files."}),
		SealDuration:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "depthcap_writer_seal_seconds", Help: "Duration of one seal (all due files).", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12)}),
		Buffered:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "depthcap_writer_buffered_bytes", Help: "Memory held by open files: raw rows and encoded chunks (the WRITER_MEMORY_LIMIT budget)."}),
		OpenFiles:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "depthcap_writer_open_files", Help: "Output files not yet sealed."}),
		Watermark:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "depthcap_writer_watermark_seconds", Help: "Watermark (receive time clamped by store time + 1 min), Unix seconds."}),
		LastSeq:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "depthcap_writer_processed_seq", Help: "Stream sequence of the last processed message."}),
		Lag:               prometheus.NewGauge(prometheus.GaugeOpts{Name: "depthcap_writer_consumer_lag", Help: "Messages of this shard not yet processed (consumer num_pending)."}),
		ConsumerRecreated: prometheus.NewCounter(prometheus.CounterOpts{Name: "depthcap_writer_consumer_recreated_total", Help: "Times the writer found its consumer gone (a NATS restart loses it: memory storage) and created it again."}),
		PublishRetry:      prometheus.NewCounter(prometheus.CounterOpts{Name: "depthcap_writer_publish_retries_total", Help: "Retried publishes of FileSealed and DLQ messages."}),
		GapsForgotten:     prometheus.NewCounter(prometheus.CounterOpts{Name: "depthcap_writer_gaps_forgotten_total", Help: "Open gaps dropped from the sequence state (bounded per stream); they stay listed in their manifests."}),
	}
	if reg != nil {
		reg.MustRegister(m.Rows, m.Duplicates, m.Verdicts, m.Gaps, m.Reports, m.DLQ, m.Redelivered, m.CkptDuration, m.CkptBytes,
			m.Checkpoints, m.Parts, m.PartBytes, m.Sealed, m.SealedBytes, m.SealDuration, m.Buffered, m.OpenFiles, m.Watermark,
			m.LastSeq, m.Lag, m.ConsumerRecreated, m.PublishRetry, m.GapsForgotten)
	}
	return m
}
