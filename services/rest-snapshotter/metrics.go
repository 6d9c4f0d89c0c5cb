package snapshotter

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the depthcap_snapshot_* collectors. Only
// last_timestamp_seconds has a symbol label (see README: its cardinality
// is the number of captured symbols, and it can be switched off).
type metrics struct {
	requests       *prometheus.CounterVec   // market, status
	duration       *prometheus.HistogramVec // market
	snapshots      *prometheus.CounterVec   // market, result: stored, duplicate
	invalid        *prometheus.CounterVec   // market, reason
	failed         *prometheus.CounterVec   // market, reason
	pauses         *prometheus.CounterVec   // market, reason: 429, 418, backoff
	weightUsed     *prometheus.GaugeVec     // market
	weightLimit    *prometheus.GaugeVec     // market
	weightBudget   *prometheus.GaugeVec     // market
	weightAllowed  *prometheus.GaugeVec     // market
	weightOthers   *prometheus.GaugeVec     // market
	weightWindow   *prometheus.GaugeVec     // market
	weightSpent    *prometheus.CounterVec   // market
	interval       *prometheus.GaugeVec     // market
	effective      *prometheus.GaugeVec     // market
	symbols        *prometheus.GaugeVec     // market
	lastTimestamp  *prometheus.GaugeVec     // market, symbol
	onDemand       *prometheus.CounterVec   // market, result
	onDemandLat    *prometheus.HistogramVec // market
	onDemandLagged *prometheus.CounterVec   // market
	banned         *prometheus.GaugeVec     // market
	bans           *prometheus.CounterVec   // market
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_snapshot_requests_total",
			Help: "REST depth requests by market and outcome: the HTTP status, or timeout / error when there was none."}, []string{"market", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "depthcap_snapshot_request_duration_seconds",
			Help:    "REST depth request time, from send to the last body byte.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"market"}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_snapshot_snapshots_total",
			Help: "Snapshots acknowledged by JetStream: stored, or duplicate (same lastUpdateId already in the stream)."}, []string{"market", "result"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_snapshot_invalid_total",
			Help: "200 answers that were not a depth snapshot (bad JSON, an error body, a missing field), sent to the dead-letter subject."}, []string{"market", "reason"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_snapshot_failed_total",
			Help: "Snapshots given up until the symbol's next turn, by reason."}, []string{"market", "reason"}),
		pauses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_snapshot_pauses_total",
			Help: "Pauses of every request of a market: 429 (Retry-After), 418 (ban) or backoff (5xx, 403, timeouts)."}, []string{"market", "reason"}),
		weightUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_snapshot_weight_used",
			Help: "Request weight the whole IP used in the exchange's current window, from the last X-MBX-USED-WEIGHT-<window> header."}, []string{"market"}),
		weightLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_snapshot_weight_limit",
			Help: "The exchange's REQUEST_WEIGHT limit per window (exchangeInfo rateLimits)."}, []string{"market"}),
		weightBudget: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_snapshot_weight_budget",
			Help: "Weight per window this snapshotter may use: SNAPSHOT_BUDGET × limit, at most 90 %."}, []string{"market"}),
		weightAllowed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_snapshot_weight_allowed",
			Help: "Weight per window this snapshotter allows itself now: the budget, lowered while other clients on the IP use weight."}, []string{"market"}),
		weightOthers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_snapshot_weight_others",
			Help: "Estimated weight per window other clients on the same IP use (header minus our own)."}, []string{"market"}),
		weightWindow: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_snapshot_weight_window_seconds",
			Help: "Length of the exchange's weight window."}, []string{"market"}),
		weightSpent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_snapshot_weight_spent_total",
			Help: "Request weight this snapshotter spent (requests refused with 429/418 excluded)."}, []string{"market"}),
		interval: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_snapshot_interval_seconds",
			Help: "Configured per-symbol interval (SNAPSHOT_INTERVAL)."}, []string{"market"}),
		effective: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_snapshot_effective_interval_seconds",
			Help: "Per-symbol interval the scheduler keeps now: the configured one, stretched by the budget and by other clients' weight."}, []string{"market"}),
		symbols: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_snapshot_symbols",
			Help: "Symbols in the rotation (after SHARD)."}, []string{"market"}),
		lastTimestamp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_snapshot_last_timestamp_seconds",
			Help: "Receive time of the symbol's last snapshot stored in JetStream; age = time() - this."}, []string{"market", "symbol"}),
		onDemand: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_snapshot_ondemand_requests_total",
			Help: "On-demand requests by result: fetched, coalesced, unknown_symbol, banned, busy, failed, bad_request, bad_payload, stale."}, []string{"market", "result"}),
		onDemandLagged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_snapshot_ondemand_stale_total",
			Help: "Snapshots stored below a waiting on-demand request's min_update_id, per request: it waits for the next snapshot, or gives up (result stale)."}, []string{"market"}),
		onDemandLat: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "depthcap_snapshot_ondemand_latency_seconds",
			Help:    "From an on-demand request's arrival to its reply (sent after JetStream stored the snapshot).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"market"}),
		banned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "depthcap_snapshot_ip_banned",
			Help: "1 while the exchange bans this IP (HTTP 418) and every request of the market waits for Retry-After. Alert on it."}, []string{"market"}),
		bans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "depthcap_snapshot_bans_total",
			Help: "HTTP 418 answers (IP bans)."}, []string{"market"}),
	}
	reg.MustRegister(m.requests, m.duration, m.snapshots, m.invalid, m.failed, m.pauses,
		m.weightUsed, m.weightLimit, m.weightBudget, m.weightAllowed, m.weightOthers, m.weightWindow, m.weightSpent,
		m.interval, m.effective, m.symbols, m.lastTimestamp, m.onDemand, m.onDemandLat, m.onDemandLagged, m.banned, m.bans)
	return m
}
