package core

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/pq"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

// crashSink records FileSealed ids and fails the failAt-th publish from
// now on (0: never), like a NATS outage in the middle of a seal.
type crashSink struct {
	sealed []string
	failAt int
}

var errOutage = errors.New("injected publish failure")

func (s *crashSink) DeadLetter(context.Context, string, string, []byte, map[string]string) error {
	return nil
}

func (s *crashSink) Sealed(_ context.Context, _, id string, _ []byte) error {
	if s.failAt > 0 {
		s.failAt--
		if s.failAt == 0 {
			return errOutage
		}
	}
	s.sealed = append(s.sealed, id)
	return nil
}

func (s *crashSink) Durable(uint64) {}

// crashMsgs is the stream of the crash test: the small recordings, the
// partial samples and the first 1,500 frames of each ETHUSDT recording,
// one every 100 ms from 2025-01-01 (about 9 one-minute periods).
func crashMsgs(t *testing.T) []Msg {
	envs, err := testrec.Envelopes(testrec.SmallRecordings(), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range testrec.LargeRecordings() {
		large, err := testrec.Envelopes([]string{name}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, large[:1500]...)
	}
	ps, err := testrec.Partials()
	if err != nil {
		t.Fatal(err)
	}
	for i := range ps {
		envs = append(envs, ps[i].Env)
	}
	slices.SortStableFunc(envs, func(a, b envelope.Envelope) int { return cmp.Compare(a.ReceivedNs, b.ReceivedNs) })
	envs = withReplicatedPartials(envs)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	msgs := make([]Msg, len(envs))
	for i := range envs {
		e := &envs[i]
		e.ReceivedNs = base + int64(i)*int64(100*time.Millisecond)
		msgs[i] = Msg{Seq: uint64(i + 1), Subject: testrec.Subject(e), Data: e.AppendMarshal(nil), StoreNs: e.ReceivedNs}
	}
	return msgs
}

// withReplicatedPartials interleaves a synthetic spot partial stream
// (PRTUSDT) delivered by two replicas into envs, one frame after every 6
// envelopes: the replicas race (a fixed pseudo-random one wins each
// frame), and every 40 frames replica B disconnects for 5 frames and
// reports it; every other time replica A is down too and reports it (a
// real hole). So checkpoints carry gap-report claims and their evidence,
// and seals decide them (covered or gap).
func withReplicatedPartials(envs []envelope.Envelope) []envelope.Envelope {
	rng := rand.New(rand.NewPCG(7, 7))
	var out []envelope.Envelope
	id, lastA, lastB, episode := int64(1000), int64(0), int64(0), 0
	frame := func(src string) envelope.Envelope {
		payload := []byte(`{"lastUpdateId":` + itoa(id) + `,"bids":[["1.5","2"]],"asks":[["1.6","3"]]}`)
		return envelope.Envelope{Market: md.Spot, Kind: md.Partial, Symbol: "PRTUSDT", Payload: payload, LastID: id,
			Has: envelope.HasLast, Source: src, DepthLimit: 20}
	}
	for i := range envs {
		out = append(out, envs[i])
		if i%6 != 5 {
			continue
		}
		j := (id - 1000) / 10
		id += 10
		switch phase := j % 40; {
		case phase >= 30 && phase < 35: // B is down
			if episode%2 == 0 {
				out = append(out, frame("rec-a"))
				lastA = id
			}
		case phase == 35: // B is back: its record, then the frame
			gap := func(src string, after int64) envelope.Envelope {
				return envelope.Envelope{Market: md.Spot, Kind: md.Gap, Symbol: "PRTUSDT", Source: src, Has: envelope.HasGap,
					Gap: envelope.Gap{StreamKind: md.Partial, Reason: envelope.ReasonDisconnect, AfterID: after, ResumePrevID: id - 1}}
			}
			out = append(out, gap("rec-b", lastB))
			if episode%2 == 1 {
				out = append(out, gap("rec-a", lastA))
			}
			out = append(out, frame("rec-b"))
			lastA, lastB = id, id
			episode++
		case rng.IntN(2) == 0:
			out = append(out, frame("rec-a"))
			lastA = id
		default:
			out = append(out, frame("rec-b"))
			lastB = id
		}
	}
	return out
}

func crashCore(t *testing.T, dir string, sink Sink) *Core {
	t.Helper()
	o := pq.DefaultOptions()
	o.RowGroupRows = 100
	c, err := Open(context.Background(), Config{DataDir: dir, Shard: "0-of-1", Period: time.Minute, Grace: 10 * time.Second,
		DedupRecent: 64, MemoryLimit: 1 << 20, PartBytes: 16 << 10, InlineLimit: 64 << 10, Parquet: o, Producer: "test", StoreClamp: time.Minute},
		sink, NewMetrics(nil), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sealedFiles maps every sealed file and manifest under dir to its bytes.
func sealedFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != dir {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCrashReplay proves the writer's exactly-once protocol in-process,
// with the race detector: the core is abandoned without a checkpoint
// (what kill -9 leaves) at random stream positions, in the middle of
// seals (a FileSealed publish fails), after random interval checkpoints
// and with leftovers of an interrupted checkpoint (an orphan part file, a
// temp file) on disk; each restart resumes at its checkpoint, redelivered
// messages included. Every sealed file and manifest must be byte-identical
// to a crash-free run's and every file announced. The separate-process
// kill -9 version is TestAcceptanceCrashSafety.
func TestCrashReplay(t *testing.T) {
	msgs := crashMsgs(t)
	ctx := context.Background()

	refDir := t.TempDir()
	ref := &crashSink{}
	c := crashCore(t, refDir, ref)
	for _, m := range msgs {
		if err := c.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
	want := sealedFiles(t, refDir)
	if len(want) < 20 || len(ref.sealed) < 10 {
		t.Fatalf("reference run sealed %d files: too few to test seals", len(ref.sealed))
	}
	var partialGaps, partialCovered int
	for _, rel := range ref.sealed {
		if strings.HasPrefix(rel, "spot/partial_orderbooks/PRTUSDT/") {
			m := readManifestFile(t, refDir, rel)
			partialGaps += m.GapCount
			partialCovered += len(m.Covered)
		}
	}
	if partialGaps < 3 || partialCovered < 3 {
		t.Fatalf("reference run: %d partial gaps, %d covered reports: the replicated partial stream does not exercise both", partialGaps, partialCovered)
	}

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(2, seed))
	dir := t.TempDir()
	sink := &crashSink{}
	crashes, sealCrashes := 0, 0
	for {
		c := crashCore(t, dir, sink)
		// Redelivery: the consumer may hand out messages the checkpoint
		// already covers; the core must skip them.
		from := int(c.LastSeq()) - rng.IntN(50)
		from = max(from, 0)
		stop := len(msgs)
		switch {
		case crashes >= 12:
		case crashes%3 == 1:
			sink.failAt = 1 + rng.IntN(3) // crash inside one of the next seals
		default:
			stop = min(len(msgs), from+50+rng.IntN(len(msgs)/16))
		}
		var err error
		for i := from; i < stop && err == nil; i++ {
			err = c.Handle(ctx, msgs[i])
			if err == nil && rng.IntN(300) == 0 {
				err = c.Checkpoint(TriggerInterval)
			}
		}
		if err == nil && stop == len(msgs) {
			if err = c.SealAll(ctx); err == nil {
				c.Close()
				break
			}
		}
		if err != nil {
			if !errors.Is(err, errOutage) {
				t.Fatal(err)
			}
			sealCrashes++
		}
		sink.failAt = 0
		c.Close() // no checkpoint: what kill -9 leaves
		crashes++
		// Leftovers of a checkpoint interrupted after its part files.
		if err := os.WriteFile(filepath.Join(dir, ".parts", "0-of-1", "999999-0.part"), []byte("DCWPART1"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ".writer", "0-of-1", ".checkpoint.tmp-1"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if crashes > 100 {
			t.Fatalf("no progress after %d crashes (seed %d)", crashes, seed)
		}
	}
	if sealCrashes == 0 {
		t.Fatalf("no crash hit a seal (seed %d)", seed)
	}
	got := sealedFiles(t, dir)
	for rel, b := range want {
		if got[rel] != b {
			t.Errorf("%s differs from the crash-free run (seed %d)", rel, seed)
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			t.Errorf("%s exists only after crashes (seed %d)", rel, seed)
		}
	}
	announced := map[string]bool{}
	for _, id := range sink.sealed {
		announced[id] = true
	}
	for _, id := range ref.sealed {
		if !announced[id] {
			t.Errorf("%s sealed but never announced", id)
		}
	}
	if es, _ := os.ReadDir(filepath.Join(dir, ".parts", "0-of-1")); len(es) != 0 {
		t.Errorf("%d part files left after the last seal", len(es))
	}
	t.Logf("%d messages, %d crashes (%d inside seals), %d files byte-identical", len(msgs), crashes, sealCrashes, len(want))
}
