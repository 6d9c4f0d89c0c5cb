package synth

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
)

// collectSink wants the listed suffixes for every symbol and keeps copies
// of the frames.
type collectSink struct {
	m      *Market
	want   map[int]bool
	frames []Frame
}

func newCollect(m *Market, suffixes ...string) *collectSink {
	c := &collectSink{m: m, want: map[int]bool{}}
	for _, s := range suffixes {
		c.want[m.bySuffix[s]] = true
	}
	return c
}

func (c *collectSink) Wants(_, v int) bool { return c.want[v] }
func (c *collectSink) Frame(f Frame) {
	f.Full = append([]byte(nil), f.Full...)
	c.frames = append(c.frames, f)
}

func testConfig(m md.Market) Config {
	return Config{
		Market: m, Symbols: "5", Seed: 7,
		DiffInterval: 100 * time.Millisecond, PartialInterval: 100 * time.Millisecond,
		Activity: Activity{Max: 2000, Skew: 1, Min: 5},
		Levels:   1000, History: time.Minute, HistoryChanges: 100000,
	}
}

type wireEvent struct {
	Stream string `json:"stream"`
	Data   struct {
		Ev string      `json:"e"`
		E  int64       `json:"E"`
		T  int64       `json:"T"`
		S2 string      `json:"symbol"`
		S  string      `json:"s"`
		U  int64       `json:"U"`
		LU int64       `json:"u"`
		PU *int64      `json:"pu"`
		B  [][2]string `json:"b"`
		A  [][2]string `json:"a"`
		// spot partial
		LastUpdateID int64       `json:"lastUpdateId"`
		Bids         [][2]string `json:"bids"`
		Asks         [][2]string `json:"asks"`
	} `json:"data"`
}

func toMap(spec *SymbolSpec, lv []PL) map[string]string {
	m := map[string]string{}
	for _, l := range lv {
		m[string(spec.AppendPrice(nil, l.Tick))] = string(spec.AppendQty(nil, l.Lots))
	}
	return m
}

func applyLevels(book map[string]string, lv [][2]string, zero string) {
	for _, l := range lv {
		if l[1] == zero {
			delete(book, l[0])
		} else {
			book[l[0]] = l[1]
		}
	}
}

func equalMaps(a, b map[string]string) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d levels, want %d", len(a), len(b))
	}
	for k, v := range b {
		if a[k] != v {
			return fmt.Errorf("level %s: %q, want %q", k, a[k], v)
		}
	}
	return nil
}

// TestDiffsRebuildGroundTruth proves that applying every published diff
// event to the book at the start id gives exactly the ground truth at the
// last event's u, that spot ids chain with U == prev u + 1 and futures
// events chain with pu == prev u, and that partial frames are the top of
// the ground-truth book at their id.
func TestDiffsRebuildGroundTruth(t *testing.T) {
	for _, mk := range []md.Market{md.Spot, md.Futures} {
		t.Run(mk.String(), func(t *testing.T) {
			cfg := testConfig(mk)
			t0 := time.Unix(1700000000, 0)
			m, err := NewMarket(cfg, t0)
			if err != nil {
				t.Fatal(err)
			}
			start := m.LastUpdateID(0)
			b0, a0, err := m.LevelsAt(0, start)
			if err != nil {
				t.Fatal(err)
			}
			spec := &m.specs[0]
			bids, asks := toMap(spec, b0), toMap(spec, a0)
			zero := string(spec.AppendQty(nil, 0))
			sink := newCollect(m, "@depth@100ms", "@depth20@100ms")
			var buf []byte
			for k := 1; k <= 100; k++ {
				buf, _ = m.Tick(t0.Add(time.Duration(k)*100*time.Millisecond), buf[:0], sink)
			}
			prevU := start
			events, partials := 0, 0
			for _, f := range sink.frames {
				if f.Sym != 0 {
					continue
				}
				var ev wireEvent
				if err := json.Unmarshal(f.Full, &ev); err != nil {
					t.Fatalf("frame %s: %v", f.Full, err)
				}
				if f.Kind == md.Partial {
					partials++
					gb, ga, err := m.LevelsAt(0, f.ID)
					if err != nil {
						t.Fatal(err)
					}
					pb, pa := ev.Data.Bids, ev.Data.Asks
					if mk == md.Futures {
						pb, pa = ev.Data.B, ev.Data.A
						if ev.Data.LU != f.ID {
							t.Fatalf("futures partial u %d != id %d", ev.Data.LU, f.ID)
						}
					} else if ev.Data.LastUpdateID != f.ID {
						t.Fatalf("spot partial lastUpdateId %d != id %d", ev.Data.LastUpdateID, f.ID)
					}
					if len(pb) != 20 || len(pa) != 20 {
						t.Fatalf("partial has %d/%d levels", len(pb), len(pa))
					}
					for i := range pb {
						if pb[i][0] != string(spec.AppendPrice(nil, gb[i].Tick)) || pb[i][1] != string(spec.AppendQty(nil, gb[i].Lots)) {
							t.Fatalf("partial bid %d = %v, truth %v", i, pb[i], gb[i])
						}
						if pa[i][0] != string(spec.AppendPrice(nil, ga[i].Tick)) || pa[i][1] != string(spec.AppendQty(nil, ga[i].Lots)) {
							t.Fatalf("partial ask %d = %v, truth %v", i, pa[i], ga[i])
						}
					}
					continue
				}
				events++
				if mk == md.Spot && ev.Data.U != prevU+1 {
					t.Fatalf("spot U %d, prev u %d", ev.Data.U, prevU)
				}
				if mk == md.Futures {
					if ev.Data.PU == nil || *ev.Data.PU != prevU {
						t.Fatalf("futures pu %v, prev u %d", ev.Data.PU, prevU)
					}
					if ev.Data.T > ev.Data.E || ev.Data.T == 0 {
						t.Fatalf("futures T %d, E %d", ev.Data.T, ev.Data.E)
					}
				}
				if ev.Data.LU < ev.Data.U {
					t.Fatalf("u %d < U %d", ev.Data.LU, ev.Data.U)
				}
				prevU = ev.Data.LU
				applyLevels(bids, ev.Data.B, zero)
				applyLevels(asks, ev.Data.A, zero)
			}
			if events < 90 || partials != 100 {
				t.Fatalf("%d events, %d partials", events, partials)
			}
			gb, ga, err := m.LevelsAt(0, prevU)
			if err != nil {
				t.Fatal(err)
			}
			if err := equalMaps(bids, toMap(spec, gb)); err != nil {
				t.Fatalf("bids: %v", err)
			}
			if err := equalMaps(asks, toMap(spec, ga)); err != nil {
				t.Fatalf("asks: %v", err)
			}
			if len(gb) < 900 || len(ga) < 900 {
				t.Fatalf("book has %d/%d levels, want about 1000", len(gb), len(ga))
			}
			if _, _, err := m.LevelsAt(0, m.syms[0].book.lastID+1); !errors.Is(err, ErrFutureUpdate) {
				t.Fatalf("future id: %v", err)
			}
		})
	}
}

// TestDeterministic proves the event sequence depends on the seed and the
// tick count only, not on which streams are wanted.
func TestDeterministic(t *testing.T) {
	run := func(seed uint64, suffixes ...string) []string {
		cfg := testConfig(md.Futures)
		cfg.Seed = seed
		t0 := time.Unix(1700000000, 0)
		m, err := NewMarket(cfg, t0)
		if err != nil {
			t.Fatal(err)
		}
		sink := newCollect(m, suffixes...)
		var buf []byte
		for k := 1; k <= 50; k++ {
			buf, _ = m.Tick(t0.Add(time.Duration(k)*100*time.Millisecond), buf[:0], sink)
		}
		var out []string
		for _, f := range sink.frames {
			if f.Kind == md.Diff && f.Variant == m.bySuffix["@depth@100ms"] {
				out = append(out, string(f.Full))
			}
		}
		return out
	}
	a := run(1, "@depth@100ms")
	b := run(1, "@depth@100ms", "@depth20@100ms", "@depth@500ms")
	c := run(2, "@depth@100ms")
	if len(a) == 0 || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed gave different events")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatalf("different seeds gave the same events")
	}
}
