package writer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/writer/internal/core"
	"github.com/depthcap/depthcap/services/writer/internal/pq"
)

// Version is the producer version written into every file's metadata
// (set with -ldflags "-X github.com/depthcap/depthcap/services/writer.Version=...").
var Version = "0.1.0"

// storeClamp bounds the watermark by the JetStream store time: a
// collector whose clock runs far ahead cannot seal periods early.
const storeClamp = time.Minute

// Writer consumes one shard of MARKETDATA into Parquet files.
type Writer struct {
	cfg     Config
	conn    *bus.Conn
	log     *zap.Logger
	metrics *core.Metrics
	shard   string // "i-of-N"
	filters []string
	// With no filter for a shard of several, the consumer reads the whole
	// stream and the writer skips the partitions of other shards.
	shardI, shardN int
	skipForeign    bool

	mu      sync.Mutex // serializes Run and Finish
	running atomic.Bool

	// Set while running.
	core    *core.Core
	lastMsg jetstream.Msg
	lastSeq uint64
	acked   uint64
	stream  jetstream.Stream
	cons    jetstream.Consumer
	// received counts the messages read from cons (redeliveries too), for
	// Finish: caught up when it reaches the consumer's delivered count.
	received uint64
	// finalAck, when set, makes acks wait for the server's confirmation.
	finalAck context.Context
}

// New builds a writer. It validates cfg and registers the metrics; the
// shard lock and the checkpoint are taken by Run or Finish.
func New(cfg Config, conn *bus.Conn, env svc.Env) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	i, n, _ := ParseShard(cfg.Shard)
	w := &Writer{
		cfg:     cfg,
		conn:    conn,
		log:     env.Log,
		metrics: core.NewMetrics(env.Registry),
		shard:   strconv.Itoa(i) + "-of-" + strconv.Itoa(n),
		filters: ShardFilters(i, n),
		shardI:  i,
		shardN:  n,
	}
	w.skipForeign = n > 1 && w.filters == nil
	if env.Health != nil {
		env.Health.AddCheck("nats", conn.Ready)
		env.Health.AddCheck("writer", func() error {
			if !w.running.Load() {
				return errors.New("writer not consuming")
			}
			return nil
		})
	}
	return w, nil
}

// ConsumerName is the durable consumer of the writer's shard.
func (w *Writer) ConsumerName() string { return "writer-" + w.shard }

func (w *Writer) coreConfig() core.Config {
	o := pq.DefaultOptions()
	o.ZstdLevel = w.cfg.ZstdLevel
	o.RowGroupRows = w.cfg.RowGroupRows
	return core.Config{
		DataDir:     w.cfg.DataDir,
		Shard:       w.shard,
		Period:      w.cfg.Period,
		Grace:       w.cfg.Grace,
		DedupRecent: w.cfg.DedupRecent,
		MemoryLimit: w.cfg.MemoryLimit,
		PartBytes:   w.cfg.PartBytes,
		InlineLimit: max(w.cfg.MemoryLimit/4, w.cfg.PartBytes),
		Parquet:     o,
		Producer:    "depthcap-writer " + Version,
		StoreClamp:  storeClamp,
	}
}

// start opens the core (lock, checkpoint, interrupted seal) and
// (re)creates the consumer at the checkpoint's sequence + 1.
func (w *Writer) start(ctx context.Context) (jetstream.MessagesContext, error) {
	c, err := core.Open(ctx, w.coreConfig(), sink{w}, w.metrics, w.log)
	if err != nil {
		return nil, fmt.Errorf("open writer state: %w", err)
	}
	w.core = c
	w.lastMsg, w.lastSeq, w.acked = nil, c.LastSeq(), c.LastSeq()
	stream, err := w.conn.JS.Stream(ctx, md.StreamMarketData)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("stream %s: %w", md.StreamMarketData, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("stream %s info: %w", md.StreamMarketData, err)
	}
	if err := checkStream(filepath.Join(w.cfg.DataDir, ".writer", w.shard), info, c.LastSeq()); err != nil {
		c.Close()
		return nil, err
	}
	if s := c.LastSeq(); s > 0 && info.State.FirstSeq > s+1 {
		w.log.Error("messages aged out of MARKETDATA before the writer processed them",
			zap.Uint64("checkpoint_seq", s), zap.Uint64("stream_first_seq", info.State.FirstSeq))
	}
	w.stream = stream
	it, err := w.consume(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	w.running.Store(true)
	return it, nil
}

// consume (re)creates the shard's consumer at the core's last sequence +
// 1 and starts reading it.
//
// The consumer keeps its state in memory (MemoryStorage): the writer's
// checkpoint, not the consumer, says where a restart resumes, and a file
// consumer's state costs the server O(unacked messages) ten times a
// second. The writer acks only at checkpoints, so hundreds of thousands
// of messages are unacked at the market rate: encoding that state took
// 27 % of nats-server's CPU in make bench's market scenario, under the
// consumer's lock. A NATS restart loses a memory consumer; the loop
// notices (errConsumerGone) and Run calls consume again.
func (w *Writer) consume(ctx context.Context) (jetstream.MessagesContext, error) {
	// A consumer left by an earlier run would redeliver its unacked
	// messages only after AckWait and out of order: start afresh.
	name := w.ConsumerName()
	if err := w.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("delete consumer %s: %w", name, err)
	}
	start := w.core.LastSeq() + 1
	cons, err := w.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:        name,
		Description:    "depthcap writer shard " + w.cfg.Shard,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
		AckPolicy:      jetstream.AckAllPolicy,
		AckWait:        max(4*w.cfg.CheckpointInterval, time.Minute),
		MaxDeliver:     -1,
		MaxAckPending:  -1,
		MemoryStorage:  true,
		FilterSubjects: w.filters,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", name, err)
	}
	w.cons, w.received = cons, 0
	// The backlog at creation; each message updates it (handle).
	if ci := cons.CachedInfo(); ci != nil {
		w.metrics.Lag.Set(float64(ci.NumPending))
	}
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(pullMaxMessages, w.cfg.PullMaxBytes))
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", name, err)
	}
	w.log.Info("writer consuming", zap.String("consumer", name), zap.Uint64("start_seq", start), zap.String("shard", w.cfg.Shard), zap.Int("filters", len(w.filters)))
	return it, nil
}

// errConsumerGone says the server no longer has the writer's consumer
// (a NATS restart lost it, or an operator deleted it).
var errConsumerGone = errors.New("consumer gone")

// consumerErr maps nats.go's ways of saying that the consumer does not
// exist (Next: deleted or not found; Info: not found) to errConsumerGone.
func consumerErr(err error) error {
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return errConsumerGone
	}
	return err
}

// run is loop, recreating the consumer when it is gone: after a
// checkpoint (every handled message durable and acked), at the next
// sequence. It returns the iterator in use.
func (w *Writer) run(ctx context.Context, it jetstream.MessagesContext, done func() (bool, error)) (jetstream.MessagesContext, error) {
	for {
		err := w.loop(ctx, it, done)
		if !errors.Is(err, errConsumerGone) {
			return it, err
		}
		it.Stop()
		w.log.Warn("consumer gone: checkpointing and creating it again", zap.Uint64("stream_seq", w.core.LastSeq()))
		w.metrics.ConsumerRecreated.Inc()
		if err := w.checkpoint(core.TriggerConsumer); err != nil {
			return it, err
		}
		next, err := w.consume(ctx)
		if err != nil {
			return it, err // the stopped iterator: stop() calls it.Stop() again
		}
		it = next
	}
}

// handle processes one message and checkpoints when memory is over budget.
// It allocates nothing in steady state (BenchmarkConsume).
func (w *Writer) handle(ctx context.Context, msg jetstream.Msg) error {
	seq, storeNs, pending, err := parseAckReply(msg.Reply())
	if err != nil {
		return fmt.Errorf("message metadata of %s: %w", msg.Subject(), err)
	}
	if w.mine(msg.Subject()) {
		if err := w.core.Handle(ctx, core.Msg{Seq: seq, Subject: msg.Subject(), Data: msg.Data(), StoreNs: storeNs}); err != nil {
			return err
		}
	} else {
		w.core.Skip(seq)
	}
	w.lastMsg, w.lastSeq = msg, seq
	w.received++
	if pending >= 0 {
		// The consumer's num_pending when the server delivered this
		// message: the messages after it, delivered to the client's
		// buffer since or not yet. nats.go refreshes CachedInfo only on
		// Info() or creation, never while Messages() runs.
		w.metrics.Lag.Set(float64(pending))
	}
	if w.core.OverBudget() {
		return w.checkpoint(core.TriggerMemory)
	}
	return nil
}

// mine reports whether the writer's shard writes a message of subject.
// A subject without a partition token (bad input) belongs to shard 0,
// which dead-letters it.
func (w *Writer) mine(subject string) bool {
	if !w.skipForeign {
		return true
	}
	p, ok := md.SubjectPartition(subject)
	if !ok {
		return w.shardI == 0
	}
	return Owns(w.shardI, w.shardN, p)
}

func (w *Writer) checkpoint(trigger string) error {
	if err := w.core.Checkpoint(trigger); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// Run consumes until ctx ends, checkpointing every
// WRITER_CHECKPOINT_INTERVAL, when memory passes WRITER_MEMORY_LIMIT and
// around seals. On shutdown it drains the consumer, checkpoints and acks,
// within SHUTDOWN_TIMEOUT. An I/O error stops it: the next start resumes
// from the last checkpoint.
func (w *Writer) Run(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	it, err := w.start(ctx)
	if err != nil {
		return err
	}
	it, runErr := w.run(ctx, it, nil)
	return w.stop(it, runErr)
}

// Finish consumes until no message of the shard is pending, then seals
// every open file regardless of the watermark, checkpoints and returns.
// depthcap import calls it after publishing a recording. Later events of
// the sealed periods go to supplements.
func (w *Writer) Finish(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	it, err := w.start(ctx)
	if err != nil {
		return err
	}
	it, runErr := w.run(ctx, it, func() (bool, error) {
		info, err := w.cons.Info(ctx)
		if err = consumerErr(err); err != nil {
			return false, fmt.Errorf("consumer info: %w", err)
		}
		// Every message the server has delivered was read. Not
		// LastSeq >= Delivered.Stream: a filtered consumer's delivered
		// stream sequence passes messages it skipped (a memory
		// consumer's does), which the writer never sees.
		return info.NumPending == 0 && w.received >= info.Delivered.Consumer, nil
	})
	if runErr == nil {
		if err := w.core.SealAll(ctx); err != nil {
			runErr = fmt.Errorf("seal all: %w", err)
		}
	}
	return w.stop(it, runErr)
}

// pullMaxMessages bounds the messages the consumer buffers in the client
// (WRITER_PULL_MAX_BYTES bounds their bytes, and binds first at the market
// scenario's 700-byte messages: about 24,000). nats.go asks for more once
// half is consumed, so this is the delivery window per round trip, and
// the round trip is long under load: nats-server delivers through the
// same goroutine that stores the stream's inbound messages (the stream's
// internalLoop), behind the collectors' bursts. With 4,096 the server had
// no pull request of the writer's for much of make bench's market step
// (jsz num_waiting 0 with a backlog) and delivered 15.5-17.6k of 19.4k
// msg/s; with 32,768 it kept three requests waiting and the writer kept
// up until its first checkpoint stall (fixed since: part files, see
// core.writeParts).
const pullMaxMessages = 32768

// idleWait is how long loop waits for a message before it looks at the
// clock (checkpoint interval) and, in Finish, at the consumer.
const idleWait = 100 * time.Millisecond

// lagRefresh is how often an idle loop asks the server for the consumer's
// num_pending. While messages flow, each one carries it (handle); when
// none arrives, only the server can tell a caught-up writer from a
// consumer that stopped delivering.
const lagRefresh = 5 * time.Second

// loop reads messages until ctx ends, an error, or done reports true.
func (w *Writer) loop(ctx context.Context, it jetstream.MessagesContext, done func() (bool, error)) error {
	lastCkpt := time.Now()
	ckptSeq := w.core.LastSeq()
	lagAt := time.Now() // start set the gauge from the new consumer's info
	handled := false    // a message arrived since the last tick
	// Next waits on a context that ends every idleWait rather than with
	// NextMaxWait, which starts a timer per call: 15 allocations per
	// message in the iterator instead of 9.
	tick := tickCtx{parent: ctx}
	tick.restart()
	defer tick.stop()
	wait := jetstream.NextContext(tick.ctx)
	for ctx.Err() == nil {
		msg, err := it.Next(wait)
		switch {
		case err == nil:
			if err := w.handle(ctx, msg); err != nil {
				return err
			}
			handled = true
		case tick.ctx.Err() != nil:
			if ctx.Err() != nil {
				return nil
			}
			tick.restart()
			wait = jetstream.NextContext(tick.ctx)
			if !handled && time.Since(lagAt) >= lagRefresh {
				if err := w.refreshLag(ctx); err != nil {
					return err
				}
				lagAt = time.Now()
			}
			handled = false
			if done != nil {
				ok, err := done()
				if err != nil {
					return err
				}
				if ok {
					return nil
				}
			}
		case consumerErr(err) == errConsumerGone:
			return errConsumerGone
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return fmt.Errorf("consumer closed: %w", err)
		default:
			w.log.Warn("consumer error", zap.Error(err))
		}
		if time.Since(lastCkpt) >= w.cfg.CheckpointInterval {
			if w.core.LastSeq() != ckptSeq || w.core.Buffered() > 0 {
				if err := w.checkpoint(core.TriggerInterval); err != nil {
					return err
				}
			}
			lastCkpt, ckptSeq = time.Now(), w.core.LastSeq()
		}
	}
	return nil
}

// refreshLag sets the lag gauge from the consumer's info, asked with a
// short timeout. It runs only when no message arrived in the last tick
// (up to idleWait), so the client holds no delivered message: num_pending
// is the whole lag. On error the gauge keeps its value (NATS being
// unreachable has its own alerts); a consumer the server does not know
// is errConsumerGone.
func (w *Writer) refreshLag(ctx context.Context) error {
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	info, err := w.cons.Info(ictx)
	if err == nil {
		w.metrics.Lag.Set(float64(info.NumPending))
	}
	if err = consumerErr(err); err == errConsumerGone {
		return err
	}
	return nil
}

// tickCtx is a context that ends idleWait after its last restart.
type tickCtx struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
}

func (t *tickCtx) restart() {
	t.stop()
	t.ctx, t.cancel = context.WithTimeout(t.parent, idleWait)
}

func (t *tickCtx) stop() {
	if t.cancel != nil {
		t.cancel()
	}
}

// stop shuts down in order under one timeout: drain the consumer and
// handle what it still delivers, checkpoint, ack (confirmed), release the
// state. The caller drains the NATS connection afterwards.
func (w *Writer) stop(it jetstream.MessagesContext, runErr error) error {
	defer func() {
		w.finalAck = nil
		w.running.Store(false)
		w.core.Close()
		w.core = nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.ShutdownTimeout)
	defer cancel()
	if runErr != nil {
		// State may be half-updated: do not checkpoint it. The last
		// checkpoint stands and JetStream redelivers the rest.
		it.Stop()
		return runErr
	}
	it.Drain()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			break
		}
		if err := w.handle(ctx, msg); err != nil {
			return err
		}
	}
	w.finalAck = ctx // the shutdown checkpoint's ack is confirmed
	if err := w.core.Checkpoint(core.TriggerShutdown); err != nil {
		return fmt.Errorf("shutdown checkpoint: %w", err)
	}
	w.log.Info("writer stopped", zap.Uint64("stream_seq", w.core.LastSeq()))
	return nil
}

// sink implements core.Sink on the writer's NATS connection.
type sink struct{ w *Writer }

func (s sink) Durable(seq uint64) {
	w := s.w
	if w.lastMsg == nil || w.lastSeq != seq || seq <= w.acked {
		return
	}
	ack := w.lastMsg.Ack
	if w.finalAck != nil {
		ack = func() error { return w.lastMsg.DoubleAck(w.finalAck) }
	}
	if err := ack(); err != nil {
		w.log.Warn("ack failed; redelivered messages will be skipped", zap.Uint64("stream_seq", seq), zap.Error(err))
		return
	}
	w.acked = seq
}

func (s sink) DeadLetter(ctx context.Context, subject, msgID string, data []byte, hdr map[string]string) error {
	m := nats.NewMsg(subject)
	m.Data = data
	for k, v := range hdr {
		m.Header.Set(k, v)
	}
	return s.publish(ctx, m, msgID)
}

func (s sink) Sealed(ctx context.Context, subject, msgID string, data []byte) error {
	m := nats.NewMsg(subject)
	m.Data = data
	return s.publish(ctx, m, msgID)
}

// publish publishes synchronously and retries until JetStream stores the
// message or ctx ends.
func (s sink) publish(ctx context.Context, m *nats.Msg, msgID string) error {
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := s.w.conn.JS.PublishMsg(pctx, m, jetstream.WithMsgID(msgID))
		cancel()
		if err == nil {
			return nil
		}
		s.w.metrics.PublishRetry.Inc()
		if attempt == 0 || attempt%20 == 0 {
			s.w.log.Warn("publish failed, retrying", zap.String("subject", m.Subject), zap.Int("attempt", attempt), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish %s: %w (last error: %w)", m.Subject, ctx.Err(), err)
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, 5*time.Second)):
		}
	}
}
