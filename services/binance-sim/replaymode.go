package binancesim

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/binance-sim/replay"
)

// replayMkt serves one market's recorded frames. With SIM_SPEED > 0 one
// dispatcher goroutine sends frame i at replayStart + (t_i - t_0)/speed to
// the subscribers of its stream; with SIM_SPEED = 0 every connection walks
// the shared frame list with its own cursor, as fast as it reads.
type replayMkt struct {
	mk     *mkt
	frames []replay.Frame
	snaps  map[string][]int // symbol -> indices of its @depthSnapshot frames

	mu   sync.Mutex
	pos  int    // frames dispatched; SIM_SPEED=0: the furthest cursor
	skip []bool // frames an injected skip removed from every stream
	done bool
}

func newReplayMkt(mk *mkt, frames []replay.Frame) *replayMkt {
	r := &replayMkt{mk: mk, frames: frames, snaps: map[string][]int{}, skip: make([]bool, len(frames))}
	for i := range frames {
		if frames[i].Kind == md.Snapshot {
			r.snaps[frames[i].Symbol] = append(r.snaps[frames[i].Symbol], i)
		}
	}
	return r
}

// dispatch is the SIM_SPEED > 0 replay clock. Replay starts when the first
// client subscribes to anything (on either market).
func (r *replayMkt) dispatch() {
	s := r.mk.s
	defer s.wg.Done()
	select {
	case <-s.replayStart:
	case <-s.ctx.Done():
		return
	}
	start := time.Unix(0, s.replayStartAt.Load())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := range r.frames {
		f := &r.frames[i]
		due := start.Add(time.Duration(float64(f.RecvNs-s.replayT0) / s.cfg.Speed))
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-s.ctx.Done():
				return
			}
		}
		r.mu.Lock()
		skipped := r.skip[i]
		r.pos = i + 1
		r.mu.Unlock()
		if skipped || f.Kind == md.Snapshot {
			continue
		}
		r.mk.subsMu.RLock()
		for _, c := range r.mk.rsubs[f.Stream] {
			c.enqueue(outFrame{buf: f.Raw, dataOff: int32(f.DataOff), dataEnd: int32(f.DataEnd), kind: f.Kind, sym: f.Symbol, id: f.ID})
		}
		r.mk.subsMu.RUnlock()
	}
	r.finish()
}

func (r *replayMkt) finish() {
	r.mu.Lock()
	first := !r.done
	r.done = true
	r.mu.Unlock()
	if first {
		r.mk.s.marketReplayDone()
	}
}

// advance moves a SIM_SPEED=0 cursor past frame i and reports whether the
// frame was removed by a skip.
func (r *replayMkt) advance(i int) bool {
	r.mu.Lock()
	if i+1 > r.pos {
		r.pos = i + 1
	}
	skipped := r.skip[i]
	r.mu.Unlock()
	return skipped
}

// snapshot returns the body of the most recent recorded snapshot of symbol
// at or before the replay position, or its first one if none is yet.
func (r *replayMkt) snapshot(symbol string) ([]byte, bool) {
	idx := r.snaps[symbol]
	if len(idx) == 0 {
		return nil, false
	}
	r.mu.Lock()
	pos := r.pos
	r.mu.Unlock()
	j := sort.SearchInts(idx, pos) // first snapshot not yet reached
	if j > 0 {
		j--
	}
	return r.frames[idx[j]].Data(), true
}

// skipNext removes the next events diff frames of symbol (after the
// replay position) from every stream.
func (r *replayMkt) skipNext(symbol string, events int) (Fault, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := Fault{Market: r.mk.m, Type: FaultSkip, Injected: true, Symbol: symbol}
	for i := r.pos; i < len(r.frames) && f.Events < events; i++ {
		fr := &r.frames[i]
		if fr.Kind != md.Diff || fr.Symbol != symbol || r.skip[i] {
			continue
		}
		r.skip[i] = true
		if f.Events == 0 {
			f.From = fr.FirstID
		}
		f.To = fr.ID
		f.Events++
	}
	if f.Events == 0 {
		return f, fmt.Errorf("%w: no diff frame of %s left to skip", ErrBadFault, symbol)
	}
	return f, nil
}

func (r *replayMkt) status() ReplayStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	started := false
	select {
	case <-r.mk.s.replayStart:
		started = true
	default:
	}
	return ReplayStatus{Frames: len(r.frames), Position: r.pos, Started: started, Done: r.done, Speed: r.mk.s.cfg.Speed}
}

// cursorLoop is the writer of a SIM_SPEED=0 replay connection: it walks the
// recorded frames from the first one, sending those of its streams as fast
// as the client reads. Control messages (replies, serverShutdown) go first.
func (c *conn) cursorLoop() {
	rep := c.mk.rep
	pos := 0
	writeCtrl := func(f outFrame) bool {
		err := c.write(&f)
		f.release()
		if err != nil {
			c.fail("write failed", 0, true)
			return false
		}
		return true
	}
	drain := func() bool {
		for {
			select {
			case f := <-c.q:
				if !writeCtrl(f) {
					return false
				}
			case <-c.stop:
				return false
			default:
				return true
			}
		}
	}
	wait := func(d time.Duration) bool {
		var tc <-chan time.Time
		if d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			tc = t.C
		}
		select {
		case f := <-c.q:
			return writeCtrl(f)
		case <-c.wake:
			return true
		case <-tc:
			return true
		case <-c.stop:
			return false
		}
	}
	for {
		if !drain() {
			return
		}
		if len(*c.set.Load()) == 0 && pos == 0 {
			if !wait(0) { // replay starts with the first subscription
				return
			}
			continue
		}
		if d := time.Until(time.Unix(0, c.stallUntil.Load())); d > 0 {
			if !wait(d) {
				return
			}
			continue
		}
		if pos >= len(rep.frames) {
			rep.finish()
			if !wait(0) {
				return
			}
			continue
		}
		i := pos
		pos++
		set := *c.set.Load()
		if rep.advance(i) {
			continue
		}
		f := &rep.frames[i]
		if f.Kind == md.Snapshot {
			continue
		}
		if _, ok := set[f.Stream]; !ok {
			continue
		}
		if !drain() { // a reply to the subscription goes before its first frame
			return
		}
		of := outFrame{buf: f.Raw, dataOff: int32(f.DataOff), dataEnd: int32(f.DataEnd), kind: f.Kind, sym: f.Symbol, id: f.ID}
		if err := c.write(&of); err != nil {
			c.fail("write failed", 0, true)
			return
		}
	}
}
