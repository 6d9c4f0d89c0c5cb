package binancesim

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	frames      *prometheus.CounterVec // written to clients
	malformed   *prometheus.CounterVec
	generated   *prometheus.CounterVec // encoded by the ticker (once per distinct frame)
	ticks       *prometheus.CounterVec
	tickLate    *prometheus.CounterVec
	conns       *prometheus.GaugeVec
	disconnects *prometheus.CounterVec
	rest        *prometheus.CounterVec
	faults      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "binance_sim_frames_sent_total",
			Help: "Websocket frames written to clients."}, []string{"market", "kind"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "binance_sim_frames_malformed_total",
			Help: "Frames replaced by malformed JSON (fault injection)."}, []string{"market"}),
		generated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "binance_sim_frames_encoded_total",
			Help: "Distinct frames encoded by the synthetic ticker."}, []string{"market"}),
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "binance_sim_ticks_total",
			Help: "Synthetic ticks."}, []string{"market"}),
		tickLate: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "binance_sim_ticks_late_total",
			Help: "Synthetic ticks that took longer than the tick interval."}, []string{"market"}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "binance_sim_connections",
			Help: "Open websocket connections."}, []string{"market"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "binance_sim_disconnects_total",
			Help: "Websocket connections closed, by reason."}, []string{"market", "reason"}),
		rest: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "binance_sim_rest_requests_total",
			Help: "REST requests by endpoint and status."}, []string{"market", "endpoint", "status"}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "binance_sim_faults_total",
			Help: "Faults and enforced limits, by type."}, []string{"market", "type"}),
	}
	for _, c := range []prometheus.Collector{m.frames, m.malformed, m.generated, m.ticks, m.tickLate, m.conns, m.disconnects, m.rest, m.faults} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
