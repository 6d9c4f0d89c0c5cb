package uploader

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a file, the result label of depthcap_upload_files_total.
const (
	ResultUploaded        = "uploaded"         // uploaded and verified
	ResultExistsIdentical = "exists_identical" // the store already held the same object; verified, not uploaded
	ResultAlreadyVerified = "already_verified" // the ledger already had it; nothing sent
	ResultConflict        = "conflict"         // a different object is under the key: parked
	ResultLocalMismatch   = "local_mismatch"   // the local file differs from its FileSealed message: parked
	ResultMissing         = "missing"          // neither the local file nor a matching object exists
)

type metrics struct {
	files        *prometheus.CounterVec
	bytes        prometheus.Counter
	duration     prometheus.Histogram
	errors       *prometheus.CounterVec
	messages     *prometheus.CounterVec
	deleted      prometheus.Counter
	deletedBytes prometheus.Counter
	storeUp      prometheus.Gauge
	conflicts    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, b *backlog) *metrics {
	m := &metrics{
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "depthcap_upload_files_total",
			Help: "Files handled, by result: uploaded, exists_identical, already_verified, conflict, local_mismatch, missing.",
		}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "depthcap_upload_bytes_total",
			Help: "Bytes uploaded and verified.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "depthcap_upload_duration_seconds",
			Help:    "Time to upload and verify one file (successful attempt).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 14), // 10ms .. ~10min
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "depthcap_upload_errors_total",
			Help: "Failed upload attempts that will be retried, by class: transient, credentials, region, bucket, local.",
		}, []string{"class"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "depthcap_upload_messages_total",
			Help: "FILES messages settled, by action: ack, term (bad message or parked file), nak (shutdown).",
		}, []string{"action"}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "depthcap_upload_retention_deleted_files_total",
			Help: "Local files deleted by LOCAL_RETENTION after their object was verified again.",
		}),
		deletedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "depthcap_upload_retention_deleted_bytes_total",
			Help: "Bytes of local files deleted by LOCAL_RETENTION.",
		}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "depthcap_upload_store_up",
			Help: "1 when the last store request succeeded, 0 otherwise.",
		}),
		conflicts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "depthcap_upload_parked_files",
			Help: "Files parked for an operator (conflicting object or local mismatch), from the ledger.",
		}),
	}
	reg.MustRegister(m.files, m.bytes, m.duration, m.errors, m.messages, m.deleted, m.deletedBytes, m.storeUp, m.conflicts,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "depthcap_upload_backlog_files",
			Help: "Sealed files in DATA_DIR without a verified upload.",
		}, func() float64 { n, _, _ := b.stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "depthcap_upload_backlog_bytes",
			Help: "Bytes of sealed files in DATA_DIR without a verified upload.",
		}, func() float64 { _, s, _ := b.stats(); return float64(s) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "depthcap_upload_oldest_pending_age_seconds",
			Help: "Age (by modification time) of the oldest sealed file without a verified upload; 0 when there is none.",
		}, func() float64 {
			_, _, oldest := b.stats()
			if oldest.IsZero() {
				return 0
			}
			return time.Since(oldest).Seconds()
		}),
	)
	for _, r := range []string{ResultUploaded, ResultExistsIdentical, ResultAlreadyVerified, ResultConflict, ResultLocalMismatch, ResultMissing} {
		m.files.WithLabelValues(r)
	}
	for _, c := range []string{"transient", "credentials", "region", "bucket", "local"} {
		m.errors.WithLabelValues(c)
	}
	for _, a := range []string{"ack", "term", "nak"} {
		m.messages.WithLabelValues(a)
	}
	return m
}

// backlog tracks the sealed files that have no verified upload yet. The
// scan rebuilds it; messages add to it; verification removes from it.
type backlog struct {
	mu       sync.Mutex
	files    map[string]pendingFile
	verified func(rel string) bool // ledger check, under mu
}

type pendingFile struct {
	size    int64
	modTime time.Time
	added   time.Time
}

func newBacklog(verified func(string) bool) *backlog {
	return &backlog{files: make(map[string]pendingFile), verified: verified}
}

// add records an unverified file unless it is verified by now. The
// ledger check under the lock pairs with done, which runs after the
// ledger write: either add sees the record, or done removes the entry.
func (b *backlog) add(f localFile) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.files[f.rel]; ok || b.verified(f.rel) {
		return
	}
	b.files[f.rel] = pendingFile{size: f.size, modTime: f.modTime, added: time.Now()}
}

// done removes a verified file.
func (b *backlog) done(rel string) {
	b.mu.Lock()
	delete(b.files, rel)
	b.mu.Unlock()
}

// replace installs the result of a scan that started at start, keeping
// entries added after start and dropping the ones verified meanwhile.
func (b *backlog) replace(next map[string]pendingFile, start time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for rel, f := range b.files {
		if _, ok := next[rel]; !ok && f.added.After(start) {
			next[rel] = f
		}
	}
	for rel := range next {
		if b.verified(rel) {
			delete(next, rel)
		}
	}
	b.files = next
}

func (b *backlog) stats() (n int, bytes int64, oldest time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.files {
		n++
		bytes += f.size
		if oldest.IsZero() || f.modTime.Before(oldest) {
			oldest = f.modTime
		}
	}
	return n, bytes, oldest
}
