package bench

import "time"

// ProcResult is one process's share of a measurement window.
type ProcResult struct {
	Name       string  `json:"name"`
	Role       string  `json:"role"` // ours, nats, sim, infra, bench
	CPUSec     float64 `json:"cpu_s"`
	Cores      float64 `json:"cores"`
	USPerFrame float64 `json:"us_per_frame"` // CPU µs per frame received (both markets)
	PeakRSS    int64   `json:"peak_rss"`     // bytes, VmHWM over the step
}

// Latency is receive time → JetStream, in milliseconds.
type Latency struct {
	// From the collectors' depthcap_publish_latency_seconds histogram
	// (receive → publish ack), interpolated within its buckets.
	HistP50  float64 `json:"hist_p50_ms"`
	HistP99  float64 `json:"hist_p99_ms"`
	HistP999 float64 `json:"hist_p999_ms"`
	HistN    float64 `json:"hist_n"`
	// Exact, per message: JetStream's store timestamp − the envelope's
	// receive time, over a contiguous sample of the window's messages
	// (same clock: both processes run on this machine).
	ExactP50  float64 `json:"exact_p50_ms"`
	ExactP99  float64 `json:"exact_p99_ms"`
	ExactP999 float64 `json:"exact_p999_ms"`
	ExactMax  float64 `json:"exact_max_ms"`
	ExactN    int     `json:"exact_n"`
	// Stalls: runs of messages slower than stallMs, stored within 100 ms
	// of each other, in store order.
	Stalls []Stall `json:"stalls,omitempty"`
}

// StepResult is one rate step of the sustained-throughput search.
type StepResult struct {
	M        float64  `json:"m"`
	Tick     string   `json:"tick"`
	Pass     bool     `json:"pass"`
	Reasons  []string `json:"reasons,omitempty"`
	Drained  bool     `json:"drained"`   // the end-to-end accounting ran
	Lost     float64  `json:"lost"`      // frames missing or extra end to end
	WindowS  float64  `json:"window_s"`  // measurement window
	StartS   float64  `json:"start_s"`   // until every process was ready
	Received float64  `json:"received"`  // frames/s the collectors read (both markets)
	Sent     float64  `json:"sent"`      // frames/s the simulator wrote
	Pub      float64  `json:"published"` // frames/s published (unchanged spot partials are skipped)
	Snaps    float64  `json:"snapshots"` // REST snapshots/s
	Stored   float64  `json:"stored"`    // JetStream messages/s
	Rows     float64  `json:"rows"`      // writer rows/s
	// ByKind: frames/s received per market/kind.
	ByKind       map[string]float64 `json:"by_kind"`
	FrameBytes   float64            `json:"frame_bytes"` // mean websocket frame size
	Procs        []ProcResult       `json:"procs"`
	CoresOurs    float64            `json:"cores_ours"`
	CoresNATS    float64            `json:"cores_nats"`
	CoresSim     float64            `json:"cores_sim"`
	CoresInfra   float64            `json:"cores_infra"`
	CoresBench   float64            `json:"cores_bench"`
	CoresMachine float64            `json:"cores_machine"` // every process of the machine
	USPerFrame   float64            `json:"us_per_frame"`  // ours + NATS, CPU µs per frame received
	RSSOurs      int64              `json:"rss_ours"`      // sum of our services' peak RSS
	RSSNATS      int64              `json:"rss_nats"`
	Latency      Latency            `json:"latency"`
	LagEnd       float64            `json:"lag_end"`
	LagMax       float64            `json:"lag_max"`
	LagSlope     float64            `json:"lag_slope"`
	BufMax       float64            `json:"buf_max"`
}

// CeilingRun is one publish of the ceiling publisher.
type CeilingRun struct {
	Name       string  `json:"name"`
	IDs        bool    `json:"ids"`
	Window     string  `json:"duplicates_window"`
	N          int     `json:"n"`
	Rate       float64 `json:"rate"` // acked msgs/s
	Errors     int64   `json:"errors"`
	PubUS      float64 `json:"publisher_us_per_msg"`
	NATSUS     float64 `json:"nats_us_per_msg"`
	NATSRSSEnd int64   `json:"nats_rss_end"` // NATS RSS at the last ack
	NATSPeak   int64   `json:"nats_peak_rss"`
	MBPerS     float64 `json:"mb_per_s"`
}

// CeilingResult is the raw JetStream ceiling for the scenario's payload
// mix, measured on a quiet machine (only NATS and the publisher).
type CeilingResult struct {
	Generated  int            `json:"generated"`
	MeanBytes  float64        `json:"mean_bytes"`
	Kinds      map[string]int `json:"kinds"`
	Runs       []CeilingRun   `json:"runs"`
	IDs        float64        `json:"ids_rate"`          // Nats-Msg-Id, 2m window, whole backlog
	IDsFirstN  float64        `json:"ids_rate_first_n"`  // the same run over its first CeilingEvents
	IDs100ms   float64        `json:"ids_100ms_rate"`    // Nats-Msg-Id, 100ms window
	NoIDs      float64        `json:"noids_rate"`        // no Nats-Msg-Id
	DedupBytes float64        `json:"dedup_bytes_entry"` // NATS RSS per id in the window
	RSS2mAtN   int64          `json:"rss_2m_at_n"`
	RSS100msN  int64          `json:"rss_100ms_at_n"`
	RSSNoIDsN  int64          `json:"rss_noids_at_n"`
	MachineAvg float64        `json:"machine_cores"` // busy CPUs during the runs
}

// ReplayResult is the writer catching up with a backlog.
type ReplayResult struct {
	Backlog   uint64  `json:"backlog"`
	Processed float64 `json:"processed"` // messages the writer processed in the timed replay
	CaughtUp  bool    `json:"caught_up"` // false: stopped at the time limit
	Limit     float64 `json:"limit_s"`   // the time limit
	Probes    []Probe `json:"probes"`    // NATS delivery alone, before the writer

	Seconds        float64 `json:"seconds"`      // first message processed → caught up
	StartSeconds   float64 `json:"start_s"`      // process start → first message processed
	Rate           float64 `json:"rate"`         // messages/s over Seconds
	RateFromStart  float64 `json:"rate_overall"` // including start-up
	WriterCores    float64 `json:"writer_cores"`
	NATSCores      float64 `json:"nats_cores"`
	WriterUSPerMsg float64 `json:"writer_us_per_msg"`
	WriterPeakRSS  int64   `json:"writer_peak_rss"`
	NATSPeakRSS    int64   `json:"nats_peak_rss"`
	Rows           float64 `json:"rows"`
	Checkpoints    float64 `json:"checkpoints"`
	CkptBytes      int64   `json:"checkpoint_bytes"` // checkpoint file after the shutdown checkpoint
	PartBytes      int64   `json:"part_bytes"`
	CkptPerRow     float64 `json:"checkpoint_bytes_per_row"` // (checkpoint + parts) / rows
	LiveRate       float64 `json:"live_rate"`                // the scenario's messages/s at its nominal rate
	Ratio          float64 `json:"ratio"`
	MachineAvg     float64 `json:"machine_cores"`
}

// Probe is a plain pull consumer reading the backlog (what NATS can
// deliver to one consumer), with the writer's consumer settings and a
// chosen filter.
type Probe struct {
	Name    string  `json:"name"`
	Filters int     `json:"filters"`
	Msgs    uint64  `json:"msgs"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"`
	NATSUS  float64 `json:"nats_us_per_msg"`
}

// KindBytes is the sealed Parquet size of one kind.
type KindBytes struct {
	Kind        string  `json:"kind"`
	Files       int     `json:"files"`
	Rows        int64   `json:"rows"`
	Bytes       int64   `json:"bytes"`
	FooterBytes int64   `json:"footer_bytes"`
	PerRow      float64 `json:"bytes_per_row"`
	DataPerRow  float64 `json:"data_bytes_per_row"` // without the footers (what a large file approaches)
	RowsPerFile float64 `json:"rows_per_file"`
}

// BytesResult is bytes on disk per event.
type BytesResult struct {
	Shard        string      `json:"shard"`
	Period       string      `json:"period"`
	Kinds        []KindBytes `json:"kinds"`
	SidecarBytes int64       `json:"sidecar_bytes"` // .gaps.json manifests
	Seconds      float64     `json:"seconds"`       // writer start → everything sealed
	SealSeconds  float64     `json:"seal_seconds"`  // time inside seals
	WriterCPUSec float64     `json:"writer_cpu_s"`
	USPerRow     float64     `json:"us_per_row"` // writer CPU per row, sealing included
}

// IngestOnlyResult is the collectors publishing as fast as they can
// (writer stopped), against the ceiling.
type IngestOnlyResult struct {
	M            float64      `json:"m"`
	Tick         string       `json:"tick"`
	WindowS      float64      `json:"window_s"`
	Sent         float64      `json:"sent"`     // frames/s the simulator wrote
	Received     float64      `json:"received"` // frames/s the collectors read
	Acked        float64      `json:"acked"`    // messages/s JetStream acknowledged
	Offered      float64      `json:"offered"`  // messages/s the collectors tried to publish
	Dropped      float64      `json:"dropped"`  // frames/s dropped at the full buffer
	Saturated    bool         `json:"saturated"`
	Ratio        float64      `json:"ratio"` // Acked / ceiling with ids
	Procs        []ProcResult `json:"procs"`
	USPerMsg     float64      `json:"us_per_msg"` // collectors + NATS CPU per acked message
	CeilingUS    float64      `json:"ceiling_us"` // publisher + NATS CPU per message in the ceiling
	CPURatio     float64      `json:"cpu_ratio"`  // CeilingUS / USPerMsg
	CoresSim     float64      `json:"cores_sim"`
	CoresMachine float64      `json:"cores_machine"`
	Reasons      []string     `json:"notes,omitempty"`

	// The sustained search from the saturated rate: the highest rate the
	// collectors published whole (0 when no trial passed).
	Trials         []IngestTrial `json:"trials,omitempty"`
	SustainedM     float64       `json:"sustained_m,omitempty"`
	SustainedAcked float64       `json:"sustained_acked,omitempty"` // msg/s
	SustainedRatio float64       `json:"sustained_ratio,omitempty"` // SustainedAcked / ceiling with ids
}

// BestRatio is the better of the saturated and the sustained ratio to the
// ceiling, and which one it is.
func (r IngestOnlyResult) BestRatio() (float64, string) {
	if r.SustainedRatio > r.Ratio {
		return r.SustainedRatio, "sustained, zero loss"
	}
	return r.Ratio, "saturated"
}

// lowestFail is the failing trial at the lowest rate, or nil.
func (r IngestOnlyResult) lowestFail() *IngestTrial {
	var f *IngestTrial
	for i := range r.Trials {
		if t := &r.Trials[i]; !t.Pass && (f == nil || t.M < f.M) {
			f = t
		}
	}
	return f
}

// IngestTrial is one rate of the collectors' sustained search.
type IngestTrial struct {
	M            float64 `json:"m"`
	Tick         string  `json:"tick"`
	Offered      float64 `json:"offered"` // msg/s
	Acked        float64 `json:"acked"`   // msg/s
	Dropped      float64 `json:"dropped"` // frames/s
	BufGrowth    int64   `json:"buffer_growth"`
	USPerMsg     float64 `json:"us_per_msg"`
	CoresSim     float64 `json:"cores_sim"`
	CoresMachine float64 `json:"cores_machine"`
	Pass         bool    `json:"pass"`
	Why          string  `json:"why,omitempty"`
}

// Stall is a run of slow messages (exact latency above stallMs).
type Stall struct {
	At    time.Time `json:"at"`     // store time of its first message
	Msgs  int       `json:"msgs"`   // slow messages in it
	MaxMs float64   `json:"max_ms"` // the slowest
	// GapMs: from the message stored before it to its first (-1: it
	// began the sample).
	GapMs   float64  `json:"gap_ms"`
	Markets []string `json:"markets"`
}

// Target is one of the targets, met or not.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
	Why  string `json:"why,omitempty"`
}

// ScenarioResult is everything one scenario measured.
type ScenarioResult struct {
	Scenario   string             `json:"scenario"`
	Describe   string             `json:"describe"`
	Date       string             `json:"date"`
	Machine    Machine            `json:"machine"`
	NominalM   float64            `json:"nominal_m"`
	Steps      []StepResult       `json:"steps"`
	Sustained  float64            `json:"sustained_m"` // highest passing multiplier (0: none)
	Ceiling    CeilingResult      `json:"ceiling"`
	Replay     ReplayResult       `json:"replay"`
	Bytes      BytesResult        `json:"bytes"`
	IngestOnly IngestOnlyResult   `json:"ingest_only"`
	Targets    []Target           `json:"targets"`
	Notes      []string           `json:"notes"`
	Phases     map[string]float64 `json:"phase_seconds"`
	Seconds    float64            `json:"seconds"`
}

// Step returns the step run at multiplier m, or nil.
func (r *ScenarioResult) Step(m float64) *StepResult {
	for i := range r.Steps {
		if r.Steps[i].M == m {
			return &r.Steps[i]
		}
	}
	return nil
}
