package bench

import (
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
)

// TestGenerator checks that the generated messages are what the
// collectors publish: envelopes that decode, subjects that match them,
// dedup ids that are unique, and receive times from the base on.
func TestGenerator(t *testing.T) {
	sc := Scenarios["seed50"]
	base := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	g, err := NewGenerator(sc, sc.RateAt(sc.Nominal), 1, base)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := g.Generate(20_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 20_000 {
		t.Fatalf("%d messages, want 20000", len(msgs))
	}
	ids := map[string]bool{}
	kinds := map[md.Kind]int{}
	for i, m := range msgs {
		var env envelope.Envelope
		if err := envelope.Unmarshal(m.Data, &env); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got := md.Subject(env.Market, env.Kind, env.Symbol); got != m.Subject || env.Kind != m.Kind {
			t.Fatalf("message %d: subject %s kind %v, envelope says %s", i, m.Subject, m.Kind, got)
		}
		want, err := env.AppendMsgID(nil)
		if err != nil || string(want) != string(m.ID) {
			t.Fatalf("message %d: id %q, want %q (%v)", i, m.ID, want, err)
		}
		if ids[string(m.ID)] {
			t.Fatalf("message %d: duplicate id %s", i, m.ID)
		}
		ids[string(m.ID)] = true
		if env.ReceivedNs < base.UnixNano() {
			t.Fatalf("message %d: received %d before the base", i, env.ReceivedNs)
		}
		kinds[env.Kind]++
	}
	if kinds[md.Diff] == 0 || kinds[md.Partial] == 0 || kinds[md.Snapshot] == 0 {
		t.Errorf("kinds %v: want diffs, partials and snapshots", kinds)
	}
	closers, err := g.Closers(base.Add(time.Hour), 1<<50)
	if err != nil {
		t.Fatal(err)
	}
	if len(closers) != 2*sc.Symbols {
		t.Errorf("%d closers, want one per symbol and market (%d)", len(closers), 2*sc.Symbols)
	}
}
