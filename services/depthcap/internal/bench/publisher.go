package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishRun is one timed publish of the first N generated messages to
// one server.
type PublishRun struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	IDs  bool   `json:"ids"` // send Nats-Msg-Id
	N    int    `json:"n"`
}

// PublishRequest is what the orchestrator asks a publisher process to do:
// generate N messages of a scenario's mix up front (not timed), then run
// the publishes in order.
type PublishRequest struct {
	Scenario   string       `json:"scenario"`
	M          float64      `json:"m"`
	Seed       uint64       `json:"seed"`
	BaseNs     int64        `json:"base_ns"` // receive time of the first tick
	N          int          `json:"n"`
	MaxPending int          `json:"max_pending"`
	Runs       []PublishRun `json:"runs"`
}

// Mark is when the ack count reached N.
type Mark struct {
	N    int   `json:"n"`
	AtNs int64 `json:"at_ns"`
}

// PublishResult is the outcome of one run.
type PublishResult struct {
	Name       string        `json:"name"`
	IDs        bool          `json:"ids"`
	N          int           `json:"n"`
	Bytes      int64         `json:"bytes"` // envelope bytes published
	Acked      int64         `json:"acked"`
	Duplicates int64         `json:"duplicates"`
	Errors     int64         `json:"errors"`
	StartNs    int64         `json:"start_ns"`
	EndNs      int64         `json:"end_ns"` // last ack
	Rate       float64       `json:"rate"`   // acked messages per second
	CPU        time.Duration `json:"cpu_ns"` // the publisher process's CPU during the run
	Marks      []Mark        `json:"marks"`
}

// PublishOutput is the publisher process's result file.
type PublishOutput struct {
	Generated    int             `json:"generated"`
	GenerateTime time.Duration   `json:"generate_ns"`
	MeanBytes    float64         `json:"mean_bytes"`
	Kinds        map[string]int  `json:"kinds"`
	Runs         []PublishResult `json:"runs"`
}

// markEvery is the ack-count interval of the marks.
const markEvery = 50_000

// Publish is the publisher process: the plain async JetStream publisher
// the ceiling is measured with (one connection, PublishMsgAsync with a
// bounded number in flight, no retries, no buffering of its own).
func Publish(ctx context.Context, req PublishRequest, progress io.Writer) (*PublishOutput, error) {
	sc, ok := Scenarios[req.Scenario]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q", req.Scenario)
	}
	start := time.Now()
	g, err := NewGenerator(sc, sc.RateAt(req.M), req.Seed, time.Unix(0, req.BaseNs))
	if err != nil {
		return nil, err
	}
	msgs, err := g.Generate(req.N)
	if err != nil {
		return nil, err
	}
	out := &PublishOutput{Generated: len(msgs), GenerateTime: time.Since(start), Kinds: map[string]int{}}
	var total int64
	for _, m := range msgs {
		total += int64(len(m.Data))
		out.Kinds[m.Kind.String()]++
	}
	out.MeanBytes = float64(total) / float64(max(1, len(msgs)))
	_, _ = fmt.Fprintf(progress, "generated %d messages (mean %.0f B) in %s\n", len(msgs), out.MeanBytes, out.GenerateTime.Round(time.Millisecond))
	for _, run := range req.Runs {
		if run.N > len(msgs) {
			return nil, fmt.Errorf("run %s: %d messages, only %d generated", run.Name, run.N, len(msgs))
		}
		res, err := publishRun(ctx, run, msgs[:run.N], max(req.MaxPending, 1))
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", run.Name, err)
		}
		_, _ = fmt.Fprintf(progress, "run %s: %d acked (%d errors) at %.0f msg/s\n", run.Name, res.Acked, res.Errors, res.Rate)
		out.Runs = append(out.Runs, *res)
	}
	return out, nil
}

func publishRun(ctx context.Context, run PublishRun, msgs []Msg, maxPending int) (*PublishResult, error) {
	nc, err := nats.Connect(run.URL, nats.ReconnectBufSize(-1), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", run.URL, err)
	}
	defer nc.Close()
	res := &PublishResult{Name: run.Name, IDs: run.IDs, N: len(msgs)}
	var acked, dups, errs atomic.Int64
	var lastAck atomic.Int64
	var mu sync.Mutex
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(30*time.Second),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, _ *nats.Msg, ack *jetstream.PubAck) {
			n := acked.Add(1)
			now := time.Now().UnixNano()
			lastAck.Store(now)
			if ack.Duplicate {
				dups.Add(1)
			}
			if n%markEvery == 0 {
				mu.Lock()
				res.Marks = append(res.Marks, Mark{N: int(n), AtNs: now})
				mu.Unlock()
			}
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, _ error) { errs.Add(1) }),
	)
	if err != nil {
		return nil, err
	}
	cpu0 := selfCPU()
	res.StartNs = time.Now().UnixNano()
	for i := range msgs {
		m := &msgs[i]
		nm := &nats.Msg{Subject: m.Subject, Data: m.Data}
		if run.IDs {
			nm.Header = nats.Header{jetstream.MsgIDHeader: []string{string(m.ID)}}
		}
		res.Bytes += int64(len(m.Data))
		for {
			_, err := js.PublishMsgAsync(nm)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs.Add(1) // stalled or disconnected: try again
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res.CPU = selfCPU() - cpu0
	res.EndNs = lastAck.Load()
	res.Acked, res.Duplicates, res.Errors = acked.Load(), dups.Load(), errs.Load()
	if d := res.EndNs - res.StartNs; d > 0 {
		res.Rate = float64(res.Acked) / (float64(d) / 1e9)
	}
	return res, nil
}

// selfCPU is this process's user + system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RunPublisher is the `depthcap bench publish REQUEST.json OUT.json`
// process: it reads the request, publishes and writes the result.
func RunPublisher(ctx context.Context, reqPath, outPath string, progress io.Writer) error {
	b, err := os.ReadFile(reqPath)
	if err != nil {
		return fmt.Errorf("read publish request: %w", err)
	}
	var req PublishRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return fmt.Errorf("decode publish request %s: %w", reqPath, err)
	}
	out, err := Publish(ctx, req, progress)
	if err != nil {
		return err
	}
	return writeJSON(outPath, out)
}

// writeJSON writes v indented to path (temp file, then rename).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
