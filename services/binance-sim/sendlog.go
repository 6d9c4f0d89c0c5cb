package binancesim

import (
	"slices"
	"sync"

	"github.com/depthcap/depthcap/pkg/md"
)

// Sent is what the simulator wrote for one market, kind and symbol: every
// depth frame id (diff: u; spot partial: lastUpdateId; futures partial: u)
// with how many times it was written (to all connections together), and
// the ids of frames that were replaced by malformed JSON.
type Sent struct {
	Frames    int64         // frames written, malformed ones included
	IDs       map[int64]int // id -> times written intact
	Malformed map[int64]int // id -> times written as malformed JSON
}

// SentEntry is one key of the send log.
type SentEntry struct {
	Market md.Market
	Kind   md.Kind
	Symbol string
	Sent
}

type sentKey struct {
	kind   md.Kind
	symbol string
}

// sendLog records the frames written to clients of one market.
type sendLog struct {
	mu        sync.Mutex
	enabled   bool
	max       int
	n         int
	truncated bool
	entries   map[sentKey]*Sent
}

func newSendLog(enabled bool, max int) *sendLog {
	return &sendLog{enabled: enabled, max: max, entries: map[sentKey]*Sent{}}
}

func (l *sendLog) record(kind md.Kind, symbol string, id int64, malformed bool) {
	if !l.enabled {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := sentKey{kind, symbol}
	e := l.entries[k]
	if e == nil {
		e = &Sent{IDs: map[int64]int{}, Malformed: map[int64]int{}}
		l.entries[k] = e
	}
	e.Frames++
	ids := e.IDs
	if malformed {
		ids = e.Malformed
	}
	if _, ok := ids[id]; !ok {
		if l.n >= l.max {
			l.truncated = true
			return
		}
		l.n++
	}
	ids[id]++
}

func (l *sendLog) get(kind md.Kind, symbol string) Sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[sentKey{kind, symbol}]
	if e == nil {
		return Sent{IDs: map[int64]int{}, Malformed: map[int64]int{}}
	}
	return Sent{Frames: e.Frames, IDs: cloneMap(e.IDs), Malformed: cloneMap(e.Malformed)}
}

func (l *sendLog) all(m md.Market) (out []SentEntry, truncated bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, e := range l.entries {
		out = append(out, SentEntry{Market: m, Kind: k.kind, Symbol: k.symbol,
			Sent: Sent{Frames: e.Frames, IDs: cloneMap(e.IDs), Malformed: cloneMap(e.Malformed)}})
	}
	slices.SortFunc(out, func(a, b SentEntry) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		switch {
		case a.Symbol < b.Symbol:
			return -1
		case a.Symbol > b.Symbol:
			return 1
		}
		return 0
	})
	return out, l.truncated
}

func cloneMap(m map[int64]int) map[int64]int {
	out := make(map[int64]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// SortedIDs returns the ids of s in ascending order.
func (s Sent) SortedIDs() []int64 {
	ids := make([]int64, 0, len(s.IDs))
	for id := range s.IDs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
