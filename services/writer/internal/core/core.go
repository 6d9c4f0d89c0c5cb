// Package core is the writer's deterministic state machine, independent of
// NATS: it takes stream messages in order, checks sequences, buffers rows,
// checkpoints them durably, and seals files when the watermark passes a
// period. The writer package feeds it from a JetStream consumer and acks
// what a checkpoint made durable.
package core

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/writer/internal/chain"
	"github.com/depthcap/depthcap/services/writer/internal/period"
	"github.com/depthcap/depthcap/services/writer/internal/pq"
	"github.com/depthcap/depthcap/services/writer/internal/rows"
)

// Config configures the core.
type Config struct {
	DataDir      string
	Shard        string // "i-of-N", the directory name of the shard's state
	Period       time.Duration
	Grace        time.Duration
	DedupRecent  int
	MemoryLimit  int64 // raw rows + encoded chunks in memory
	PartBytes    int64 // an open file's encoded chunks go to a part file past this
	InlineLimit  int64 // encoded chunks kept in the checkpoint file, in total
	Parquet      pq.Options
	Producer     string
	StoreClamp   time.Duration // watermark clamp: store time + this
	SealRetryMax time.Duration // FileSealed publish retry backoff cap
}

// Msg is one stream message.
type Msg struct {
	Seq     uint64
	Subject string
	Data    []byte
	StoreNs int64 // JetStream store timestamp
}

// Sink is where the core's side effects go.
type Sink interface {
	// DeadLetter publishes a quarantined message and returns once it is
	// stored.
	DeadLetter(ctx context.Context, subject, msgID string, data []byte, hdr map[string]string) error
	// Sealed publishes a FileSealed message and returns once it is stored.
	Sealed(ctx context.Context, subject, msgID string, data []byte) error
	// Durable says that every message through seq is durable: ack it.
	Durable(seq uint64)
}

// DLQ reasons (label values of depthcap_writer_dlq_total and the
// Depthcap-Reason header).
const (
	ReasonEnvelope   = "envelope"      // not a valid envelope
	ReasonSubject    = "subject"       // subject unparsable or disagreeing with the envelope
	ReasonMalformed  = "malformed"     // payload is not a valid depth payload
	ReasonImpossible = "impossible"    // NaN, negative size, zero price, U > u...
	ReasonMissing    = "missing_field" // payload lacks a field its kind requires
	ReasonMismatch   = "mismatch"      // envelope ids/symbol disagree with the payload
	ReasonGapRecord  = "gap_record"    // a gap record without a valid gap
)

// Header names of dead-letter messages.
const (
	HdrReason  = "Depthcap-Reason"
	HdrError   = "Depthcap-Error"
	HdrSubject = "Depthcap-Subject"
	HdrSeq     = "Depthcap-Stream-Seq"
)

// Core is the writer state machine of one shard. It is not safe for
// concurrent use.
type Core struct {
	cfg     Config
	log     *zap.Logger
	sink    Sink
	m       *Metrics
	st      *state
	lock    *os.File
	dir     string // DATA_DIR/.writer/<shard>
	partDir string // DATA_DIR/.parts/<shard>

	buffered   int64 // sum of memBytes over files
	nextSealAt int64 // smallest seal deadline of the open files (math.MaxInt64 if none)
	dlqLimit   *svc.Limiter

	env   envelope.Envelope
	depth binance.Depth
	ev    rows.Event

	chunkBuf []byte        // chunk encoding scratch
	ckptBuf  []byte        // the checkpoint encoder's buffer (encFlush and a bit), reused
	partW    *bufio.Writer // write buffer of part files
	sealBuf  *bufio.Writer // write buffer of sealed files
}

// ErrLocked is returned by Open when another writer holds the shard.
var ErrLocked = errors.New("shard is locked by another writer")

// Open takes the shard lock, loads the checkpoint, removes orphaned part
// files and finishes a seal that was in progress.
func Open(ctx context.Context, cfg Config, sink Sink, m *Metrics, log *zap.Logger) (*Core, error) {
	c := &Core{
		cfg:      cfg,
		log:      log,
		sink:     sink,
		m:        m,
		dir:      filepath.Join(cfg.DataDir, ".writer", cfg.Shard),
		partDir:  filepath.Join(cfg.DataDir, ".parts", cfg.Shard),
		dlqLimit: svc.NewLimiter(10 * time.Second),
	}
	if c.cfg.Parquet.Mem == nil {
		c.cfg.Parquet.Mem = memory.DefaultAllocator
	}
	for _, d := range []string{c.dir, c.partDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	lock, err := lockFile(filepath.Join(c.dir, "lock"))
	if err != nil {
		return nil, err
	}
	c.lock = lock
	if err := c.load(); err != nil {
		c.Close()
		return nil, err
	}
	if len(c.st.sealing) > 0 {
		log.Info("finishing interrupted seal", zap.Int("files", len(c.st.sealing)))
		if err := c.runSeal(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	c.recompute()
	return c, nil
}

// Close releases the shard lock. It does not checkpoint.
func (c *Core) Close() {
	if c.lock != nil {
		_ = c.lock.Close()
		c.lock = nil
	}
}

// LastSeq is the stream sequence of the last processed message.
func (c *Core) LastSeq() uint64 { return c.st.lastSeq }

// Watermark is the current watermark, ns.
func (c *Core) Watermark() int64 { return c.st.watermark }

// Buffered is the memory held by open files.
func (c *Core) Buffered() int64 { return c.buffered }

// OverBudget reports whether buffered memory passed WRITER_MEMORY_LIMIT.
func (c *Core) OverBudget() bool { return c.buffered > c.cfg.MemoryLimit }

// recompute refreshes the derived values after load or seal.
func (c *Core) recompute() {
	c.buffered = 0
	c.nextSealAt = maxInt64
	for _, f := range c.st.files {
		c.buffered += f.memBytes()
		c.nextSealAt = min(c.nextSealAt, c.deadline(f))
	}
	c.m.Buffered.Set(float64(c.buffered))
	c.m.OpenFiles.Set(float64(len(c.st.files)))
	c.m.LastSeq.Set(float64(c.st.lastSeq))
	c.m.Watermark.Set(float64(c.st.watermark) / 1e9)
}

const maxInt64 = int64(^uint64(0) >> 1)

// deadline is the watermark at which f seals: period end + grace for a
// main file, open watermark + grace for a supplement.
func (c *Core) deadline(f *file) int64 {
	if f.key.supp == 0 {
		return period.Index(f.key.period).End(c.cfg.Period) + int64(c.cfg.Grace)
	}
	return f.openWM + int64(c.cfg.Grace)
}

// Handle processes one message. Messages must come in stream order; a
// message at or below the last processed sequence is skipped. An error is
// an I/O failure of a checkpoint or seal: the caller must stop (a restart
// resumes from the checkpoint).
func (c *Core) Handle(ctx context.Context, msg Msg) error {
	if msg.Seq <= c.st.lastSeq {
		c.m.Redelivered.Inc()
		return nil
	}
	if err := c.handle(ctx, msg); err != nil {
		return err
	}
	c.st.lastSeq = msg.Seq
	c.m.LastSeq.Set(float64(msg.Seq))
	return nil
}

// Skip advances past a message of another writer shard: its stream
// sequence counts as processed.
func (c *Core) Skip(seq uint64) {
	if seq > c.st.lastSeq {
		c.st.lastSeq = seq
		c.m.LastSeq.Set(float64(seq))
	}
}

func (c *Core) handle(ctx context.Context, msg Msg) error {
	env := &c.env
	if err := envelope.Unmarshal(msg.Data, env); err != nil {
		return c.deadLetter(ctx, msg, md.MarketUnknown, md.KindUnknown, ReasonEnvelope, err)
	}
	sm, sk, ssym, err := md.ParseSubject(msg.Subject)
	if err != nil || sm != env.Market || sk != env.Kind || ssym != env.Symbol {
		if err == nil {
			err = fmt.Errorf("subject %s disagrees with envelope %s %s %s", msg.Subject, env.Market, env.Kind, env.Symbol)
		}
		return c.deadLetter(ctx, msg, env.Market, env.Kind, ReasonSubject, err)
	}

	// Watermark first: a seal it triggers happens at this stream
	// position, before this message.
	wm := env.ReceivedNs
	if clamp := msg.StoreNs + int64(c.cfg.StoreClamp); wm > clamp {
		wm = clamp
	}
	if wm > c.st.watermark {
		c.st.watermark = wm
		c.m.Watermark.Set(float64(wm) / 1e9)
		if wm >= c.nextSealAt {
			if err := c.sealDue(ctx); err != nil {
				return err
			}
		}
	}

	if env.Kind == md.Gap {
		return c.gapRecord(ctx, msg, env)
	}
	return c.event(ctx, msg, env)
}

func (c *Core) event(ctx context.Context, msg Msg, env *envelope.Envelope) error {
	d := &c.depth
	if err := binance.DecodeDepth(env.Payload, d); err != nil {
		reason := ReasonMalformed
		switch {
		case errors.Is(err, binance.ErrImpossibleValue):
			reason = ReasonImpossible
		case errors.Is(err, binance.ErrMissingField):
			reason = ReasonMissing
		}
		return c.deadLetter(ctx, msg, env.Market, env.Kind, reason, err)
	}
	if err := d.Check(env.Market, env.Kind); err != nil {
		reason := ReasonMissing
		switch {
		case errors.Is(err, binance.ErrImpossibleValue):
			reason = ReasonImpossible
		case !errors.Is(err, binance.ErrMissingField):
			reason = ReasonMalformed
		}
		return c.deadLetter(ctx, msg, env.Market, env.Kind, reason, err)
	}
	if err := crossCheck(env, d); err != nil {
		return c.deadLetter(ctx, msg, env.Market, env.Kind, ReasonMismatch, err)
	}

	sk, st := c.stream(env.Market, env.Kind, env.Symbol)
	f := c.route(sk, env.ReceivedNs)
	if st.rowsC == nil {
		st.rowsC = c.m.Rows.WithLabelValues(sk.m.String(), sk.k.String())
		st.dupsC = c.m.Duplicates.WithLabelValues(sk.m.String(), sk.k.String())
	}

	var verdict chain.Verdict
	var covered []chain.Report
	if sk.chained() {
		prev := d.FirstUpdateID - 1
		if sk.m == md.Futures {
			prev = d.PrevFinalUpdateID
		}
		prevLast, wasStarted := st.chain.LastU, st.chain.Started
		res := st.chain.Observe(chain.Event{Prev: prev, U: d.FinalUpdateID, EventMs: d.EventTime, RecvNs: env.ReceivedNs, File: f.key.ref()})
		verdict, covered = res.Verdict, res.Covered
		if res.Evicted > 0 {
			c.m.GapsForgotten.Add(float64(res.Evicted))
		}
		if verdict == chain.Reset {
			f.resets = append(f.resets, resetNote{PrevLastID: prevLast, NewID: d.FinalUpdateID, RecvNs: env.ReceivedNs})
		}
		if verdict != chain.Duplicate {
			c.diffRow(st, f, d.FirstUpdateID, d.FinalUpdateID, wasStarted, verdict == chain.Reset)
		}
	} else {
		id := d.LastUpdateID
		if d.Has&binance.HasLastUpdateID == 0 {
			id = d.FinalUpdateID
		}
		verdict = st.sampled.Observe(id, env.Source, c.cfg.DedupRecent)
		if sk.k == md.Snapshot && verdict != chain.Duplicate {
			c.snapshotRow(sk.m, sk.sym, d.LastUpdateID, env.ReceivedNs)
		}
	}
	for _, r := range covered {
		c.addCovered(f, r)
		c.m.Reports.WithLabelValues(sk.m.String(), sk.k.String(), "covered").Inc()
	}
	switch verdict {
	case chain.Duplicate:
		st.dupsC.Inc()
		if sk.chained() || !st.sampled.HasClaims(f.key.ref()) {
			c.dropIfEmpty(f)
		}
		return nil
	case chain.Append:
	default:
		c.m.Verdicts.WithLabelValues(sk.m.String(), sk.k.String(), verdict.String()).Inc()
	}
	before := f.rows.Bytes()
	c.ev = rows.Event{RecvNs: env.ReceivedNs, ReqNs: env.RequestNs, Depth: d, Limit: env.DepthLimit}
	f.rows.Append(sk.layout(), &c.ev)
	c.buffered += f.rows.Bytes() - before
	if f.nRows == 0 {
		f.firstSeq = msg.Seq
	}
	f.nRows++
	f.lastSeq = msg.Seq
	st.rowsC.Inc()
	return nil
}

// stream returns the stream state, creating it; the key's symbol is the
// state's own copy, so that keys never alias message bytes.
func (c *Core) stream(m md.Market, k md.Kind, sym string) (streamKey, *stream) {
	sk := streamKey{m: m, k: k, sym: sym}
	st := c.st.streams[sk]
	if st == nil {
		sk.sym = strings.Clone(sym)
		st = &stream{sym: sk.sym}
		c.st.streams[sk] = st
	}
	sk.sym = st.sym
	return sk, st
}

// crossCheck verifies that the envelope's routing fields agree with the
// payload the writer decoded: a collector bug must not file an event
// under the wrong symbol or id.
func crossCheck(env *envelope.Envelope, d *binance.Depth) error {
	if d.Has&binance.HasSymbol != 0 && string(d.Symbol) != env.Symbol {
		return fmt.Errorf("payload symbol %q, envelope %q", d.Symbol, env.Symbol)
	}
	if env.Has&envelope.HasFinal != 0 && d.Has&binance.HasFinalUpdateID != 0 && env.FinalID != d.FinalUpdateID {
		return fmt.Errorf("payload u %d, envelope %d", d.FinalUpdateID, env.FinalID)
	}
	if env.Has&envelope.HasLast != 0 && d.Has&binance.HasLastUpdateID != 0 && env.LastID != d.LastUpdateID {
		return fmt.Errorf("payload lastUpdateId %d, envelope %d", d.LastUpdateID, env.LastID)
	}
	if env.Has&envelope.HasFirst != 0 && d.Has&binance.HasFirstUpdateID != 0 && env.FirstID != d.FirstUpdateID {
		return fmt.Errorf("payload U %d, envelope %d", d.FirstUpdateID, env.FirstID)
	}
	if env.Has&envelope.HasPrev != 0 && d.Has&binance.HasPrevFinalUpdateID != 0 && env.PrevID != d.PrevFinalUpdateID {
		return fmt.Errorf("payload pu %d, envelope %d", d.PrevFinalUpdateID, env.PrevID)
	}
	return nil
}

// route returns the open file a row received at recvNs goes to: the
// period's main file while the period is open, else the period's open
// supplement, opening the next one if needed.
func (c *Core) route(sk streamKey, recvNs int64) *file {
	p := period.Of(recvNs, c.cfg.Period)
	key := fileKey{streamKey: sk, period: int64(p)}
	if p.End(c.cfg.Period)+int64(c.cfg.Grace) <= c.st.watermark {
		// Sealed period: a late event goes to the period's open
		// supplement, or opens the next one.
		pk := periodKey{streamKey: sk, period: int64(p)}
		next := c.st.nextSupp[pk]
		if cur := next - 1; cur >= 1 {
			if f := c.st.files[fileKey{streamKey: sk, period: int64(p), supp: cur}]; f != nil {
				return f
			}
		}
		n := max(next, 1)
		c.st.nextSupp[pk] = n + 1
		key.supp = n
	}
	f := c.st.files[key]
	if f == nil {
		f = &file{key: key, openWM: c.st.watermark}
		c.st.files[key] = f
		c.nextSealAt = min(c.nextSealAt, c.deadline(f))
		c.m.OpenFiles.Set(float64(len(c.st.files)))
	}
	return f
}

// dropIfEmpty forgets a file that route opened for an event that was then
// not written, so that a duplicate does not open a supplement. The caller
// makes sure that no claim of the stream refers to the file.
func (c *Core) dropIfEmpty(f *file) {
	if f.nRows == 0 && len(f.parts) == 0 && len(f.chunks) == 0 && len(f.covered) == 0 && len(f.reported) == 0 && len(f.resets) == 0 {
		delete(c.st.files, f.key)
		if f.key.supp > 0 {
			pk := periodKey{streamKey: f.key.streamKey, period: f.key.period}
			if c.st.nextSupp[pk] == f.key.supp+1 {
				c.st.nextSupp[pk] = f.key.supp
				if f.key.supp == 1 {
					delete(c.st.nextSupp, pk)
				}
			}
		}
		c.m.OpenFiles.Set(float64(len(c.st.files)))
	}
}

func (c *Core) addCovered(f *file, r chain.Report) {
	if len(f.covered) < chain.MaxCoveredKeep {
		f.covered = append(f.covered, r)
	}
}

func (c *Core) gapRecord(ctx context.Context, msg Msg, env *envelope.Envelope) error {
	g := &env.Gap
	if env.Has&envelope.HasGap == 0 || (g.StreamKind != md.Diff && g.StreamKind != md.Partial && g.StreamKind != md.Snapshot) {
		return c.deadLetter(ctx, msg, env.Market, env.Kind, ReasonGapRecord, fmt.Errorf("gap record without a gap of a data kind (stream kind %s)", g.StreamKind))
	}
	sk, st := c.stream(env.Market, g.StreamKind, env.Symbol)
	r := chain.Report{Source: strings.Clone(env.Source), Reason: uint8(g.Reason), AfterID: g.AfterID, ResumePrevID: g.ResumePrevID,
		StartNs: g.StartNs, EndNs: g.EndNs, FramesLost: g.FramesLost, Detail: strings.Clone(g.Detail), StreamSeq: msg.Seq}
	mk := []string{sk.m.String(), sk.k.String()}
	if !sk.chained() {
		// Decided when the file seals (resolveClaims): by then every
		// overlapping report of another source that arrived within
		// WRITER_GRACE is known.
		f := c.route(sk, env.ReceivedNs)
		if old := st.sampled.Report(r, f.key.ref()); old != nil {
			c.decideClaim(sk, old)
		}
		c.m.Reports.WithLabelValues(mk[0], mk[1], "pending").Inc()
		return nil
	}
	pending := len(st.chain.Pending)
	if st.chain.Report(r) {
		f := c.route(sk, env.ReceivedNs)
		c.addCovered(f, r)
		c.m.Reports.WithLabelValues(mk[0], mk[1], "covered").Inc()
		return nil
	}
	if len(st.chain.Pending) > pending {
		c.m.Reports.WithLabelValues(mk[0], mk[1], "pending").Inc()
	} else {
		c.m.Reports.WithLabelValues(mk[0], mk[1], "open").Inc()
	}
	return nil
}

// resolveClaims decides the gap reports of an unchained stream whose
// manifest entries go to the file k, before k seals.
func (c *Core) resolveClaims(k fileKey) {
	st := c.st.streams[k.streamKey]
	f := c.st.files[k]
	if k.chained() || st == nil || f == nil {
		return
	}
	covered, gaps := st.sampled.Resolve(k.ref())
	mk := []string{k.m.String(), k.k.String()}
	for _, r := range covered {
		c.addCovered(f, r)
		c.m.Reports.WithLabelValues(mk[0], mk[1], "covered").Inc()
	}
	for _, r := range gaps {
		c.addReported(f, r)
		c.m.Reports.WithLabelValues(mk[0], mk[1], "unfilled").Inc()
	}
}

// decideClaim decides a claim evicted by the MaxClaims bound with the
// evidence it has.
func (c *Core) decideClaim(sk streamKey, cl *chain.Claim) {
	f := c.st.files[fileKey{streamKey: sk, period: cl.File.Period, supp: cl.File.Supp}]
	if f == nil {
		return
	}
	mk := []string{sk.m.String(), sk.k.String()}
	if cl.Covered() {
		c.addCovered(f, cl.Report)
		c.m.Reports.WithLabelValues(mk[0], mk[1], "covered").Inc()
		return
	}
	c.addReported(f, cl.Report)
	c.m.Reports.WithLabelValues(mk[0], mk[1], "unfilled").Inc()
}

func (c *Core) addReported(f *file, r chain.Report) {
	if len(f.reported) < chain.MaxCoveredKeep {
		f.reported = append(f.reported, r)
	}
}

// deadLetter quarantines a message: it is published to the DLQ subject
// with the reason, counted and rate-limit logged. It is acked with the
// next checkpoint like any other message.
func (c *Core) deadLetter(ctx context.Context, msg Msg, m md.Market, k md.Kind, reason string, cause error) error {
	if !m.Valid() {
		m = md.MarketUnknown
	}
	if !k.Valid() {
		k = md.KindUnknown
	}
	c.m.DLQ.WithLabelValues(reason).Inc()
	if ok, suppressed := c.dlqLimit.Allow(reason); ok {
		c.log.Warn("message quarantined", zap.String("reason", reason), zap.String("subject", msg.Subject),
			zap.Uint64("stream_seq", msg.Seq), zap.Int("suppressed", suppressed), zap.Error(cause))
	}
	hdr := map[string]string{
		HdrReason:  reason,
		HdrError:   truncate(cause.Error(), 512),
		HdrSubject: msg.Subject,
		HdrSeq:     strconv.FormatUint(msg.Seq, 10),
	}
	id := "writer." + c.cfg.Shard + "." + strconv.FormatUint(msg.Seq, 10)
	if err := c.sink.DeadLetter(ctx, md.DLQSubject("writer", m, k), id, msg.Data, hdr); err != nil {
		return fmt.Errorf("dead-letter stream seq %d: %w", msg.Seq, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
