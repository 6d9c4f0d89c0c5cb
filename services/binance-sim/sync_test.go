package binancesim

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/depthcap/depthcap/pkg/md"
)

type restDepth struct {
	LastUpdateID int64       `json:"lastUpdateId"`
	E            int64       `json:"E"`
	T            int64       `json:"T"`
	Bids         [][2]string `json:"bids"`
	Asks         [][2]string `json:"asks"`
}

// mapBook is the simplest possible local book: price -> quantity.
type mapBook struct{ bids, asks map[string]string }

func newMapBook(d restDepth) mapBook {
	b := mapBook{map[string]string{}, map[string]string{}}
	for _, l := range d.Bids {
		b.bids[l[0]] = l[1]
	}
	for _, l := range d.Asks {
		b.asks[l[0]] = l[1]
	}
	return b
}

func (b mapBook) apply(ev depthEvent, zero string) {
	for _, l := range ev.Bids {
		if l[1] == zero {
			delete(b.bids, l[0])
		} else {
			b.bids[l[0]] = l[1]
		}
	}
	for _, l := range ev.Asks {
		if l[1] == zero {
			delete(b.asks, l[0])
		} else {
			b.asks[l[0]] = l[1]
		}
	}
}

func sameSide(got map[string]string, want []Level) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d levels, ground truth has %d", len(got), len(want))
	}
	for _, l := range want {
		if got[l.Price] != l.Qty {
			return fmt.Errorf("price %s: %q, ground truth %q", l.Price, got[l.Price], l.Qty)
		}
	}
	return nil
}

// TestBookSync proves the book a client builds from a REST snapshot plus
// diff events, with Binance's sync rules (spot: drop u <= lastUpdateId,
// first applied U <= lastUpdateId+1 <= u, then U == prev u + 1; USD-M:
// drop u < lastUpdateId, first applied U <= lastUpdateId <= u, then
// pu == prev u), equals the simulator's ground truth after 10,000 updates,
// and that the REST snapshot itself is the ground truth at its id.
func TestBookSync(t *testing.T) {
	for _, tc := range []struct {
		m        md.Market
		levels   int
		limit    int
		path     string
		activity float64
	}{
		// BTCUSDT changes 500 levels a tick: 10,000 ids in about 2 s.
		{md.Spot, 1000, 5000, "/api/v3/depth", 5000},
		// Futures count the level entries of the events (ids jump), and
		// repeated changes of a level merge within an event: more activity.
		{md.Futures, 500, 1000, "/fapi/v1/depth", 50000},
	} {
		t.Run(tc.m.String(), func(t *testing.T) {
			s := newSim(t, func(c *Config) {
				c.Symbols = "3"
				c.ActivityMax = tc.activity
				c.BookLevels = tc.levels
			})
			c := dial(t, s.WSURL(tc.m)+"/ws/btcusdt@depth@100ms", nil)
			events := make(chan depthEvent, 10000)
			go func() {
				for {
					_, b, err := c.Read(context.Background())
					if err != nil {
						close(events)
						return
					}
					var ev depthEvent
					if err := json.Unmarshal(b, &ev); err != nil {
						t.Errorf("event %.100s: %v", b, err)
					}
					events <- ev
				}
			}()
			next := func() depthEvent {
				select {
				case ev, ok := <-events:
					if !ok {
						t.Fatal("stream closed")
					}
					return ev
				case <-time.After(10 * time.Second):
					t.Fatal("no event for 10s")
				}
				return depthEvent{}
			}
			next() // the stream is flowing: now take the snapshot
			r := get(t, fmt.Sprintf("%s%s?symbol=BTCUSDT&limit=%d", s.RESTURL(tc.m), tc.path, tc.limit))
			if r.status != 200 {
				t.Fatalf("snapshot: %d %s", r.status, r.body)
			}
			var snap restDepth
			if err := json.Unmarshal(r.body, &snap); err != nil {
				t.Fatal(err)
			}
			L := snap.LastUpdateID
			tb, ta, err := s.Book(tc.m, "BTCUSDT", L)
			if err != nil {
				t.Fatal(err)
			}
			book := newMapBook(snap)
			if err := sameSide(book.bids, tb); err != nil {
				t.Fatalf("snapshot bids vs ground truth at %d: %v", L, err)
			}
			if err := sameSide(book.asks, ta); err != nil {
				t.Fatalf("snapshot asks vs ground truth at %d: %v", L, err)
			}
			zero := "0.00000000"
			if tc.m == md.Futures {
				zero = "0.000" // BTCUSDT quantity precision 3
			}
			var prevU int64
			applied, updates := 0, 0
			for updates < 10000 {
				ev := next()
				if applied == 0 {
					if tc.m == md.Spot && ev.FinalID <= L || tc.m == md.Futures && ev.FinalID < L {
						continue // older than the snapshot
					}
					spotCovers := ev.FirstID <= L+1 && L+1 <= ev.FinalID // U <= lastUpdateId+1 <= u
					futuresCovers := ev.FirstID <= L && L <= ev.FinalID  // U <= lastUpdateId <= u
					if tc.m == md.Spot && !spotCovers {
						t.Fatalf("first spot event U=%d u=%d does not cover lastUpdateId+1=%d", ev.FirstID, ev.FinalID, L+1)
					}
					if tc.m == md.Futures && !futuresCovers {
						t.Fatalf("first futures event U=%d u=%d does not cover lastUpdateId=%d", ev.FirstID, ev.FinalID, L)
					}
				} else {
					if tc.m == md.Spot && ev.FirstID != prevU+1 {
						t.Fatalf("gap: U=%d after u=%d", ev.FirstID, prevU)
					}
					if tc.m == md.Futures && (ev.PrevFinalID == nil || *ev.PrevFinalID != prevU) {
						t.Fatalf("gap: pu=%v after u=%d", ev.PrevFinalID, prevU)
					}
				}
				book.apply(ev, zero)
				applied++
				prevU = ev.FinalID
				if tc.m == md.Spot {
					updates = int(prevU - L)
				} else {
					updates += len(ev.Bids) + len(ev.Asks)
				}
			}
			gb, ga, err := s.Book(tc.m, "BTCUSDT", prevU)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameSide(book.bids, gb); err != nil {
				t.Fatalf("bids after %d events (%d updates): %v", applied, updates, err)
			}
			if err := sameSide(book.asks, ga); err != nil {
				t.Fatalf("asks after %d events (%d updates): %v", applied, updates, err)
			}
			t.Logf("%s: snapshot %d, %d events, %d updates, book %d/%d levels equal to ground truth at %d",
				tc.m, L, applied, updates, len(gb), len(ga), prevU)
			_ = c.Close(websocket.StatusNormalClosure, "")
		})
	}
}
