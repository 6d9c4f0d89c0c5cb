package binancesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/md"
)

// Inject applies a runtime fault (the in-process form of POST /sim/fault)
// and returns how many connections or requests it targets.
func (s *Sim) Inject(req FaultRequest) (int, error) {
	m, err := md.ParseMarket(req.Market)
	if err != nil {
		return 0, fmt.Errorf("%w: market: %w", ErrBadFault, err)
	}
	mk := s.mkt(m)
	d := time.Duration(req.Duration)
	if d < 0 || req.Count < 0 || req.Events < 0 || req.RetryAfter < 0 || req.RetryAfter > maxRetryAfterSecond {
		return 0, fmt.Errorf("%w: negative or out-of-range value", ErrBadFault)
	}
	switch req.Type {
	case "drop", "stall", "malformed", "shutdown":
		conns := mk.targets(req.Conn)
		if len(conns) == 0 {
			return 0, fmt.Errorf("%w: no open %s connection %d", ErrBadFault, m, req.Conn)
		}
		for _, c := range conns {
			switch req.Type {
			case "drop":
				c.failFault(FaultDrop, true, 0, true)
			case "stall":
				if d == 0 {
					d = s.cfg.StallDuration
				}
				c.startStall(d, true)
			case "malformed":
				n := max(req.Count, 1)
				c.malformNext.Add(int64(n))
				s.addFault(Fault{Market: m, Type: FaultMalformed, Injected: true, Conn: c.id, Count: n, Client: c.remote})
			case "shutdown":
				if d == 0 {
					d = time.Second
				}
				c.shutdownNotice(true)
				c.addTimer(d, func() { c.failFault(FaultMaxAge, true, closeGoingAway, false) })
			}
		}
		s.log.Info("fault injected", zap.String("market", m.String()), zap.String("type", req.Type), zap.Int("conns", len(conns)))
		return len(conns), nil
	case "skip":
		if err := s.Skip(m, req.Symbol, max(req.Events, 1)); err != nil {
			return 0, err
		}
		return 1, nil
	case "rest":
		f := restFault{status: req.Status, retryAfter: req.RetryAfter, delay: d, left: max(req.Count, 1)}
		switch f.status {
		case 0:
			if d == 0 {
				return 0, fmt.Errorf("%w: rest needs a status (429, 418, 500, 502, 503, 504) or a duration", ErrBadFault)
			}
		case 429, 418:
			if f.retryAfter == 0 {
				f.retryAfter = ceilSeconds(s.cfg.RESTRetryAfter)
			}
		case 500, 502, 503, 504:
		default:
			return 0, fmt.Errorf("%w: rest status %d (allowed: 429, 418, 500, 502, 503, 504)", ErrBadFault, f.status)
		}
		mk.restMu.Lock()
		mk.restFaults = append(mk.restFaults, f)
		mk.restMu.Unlock()
		s.log.Info("fault injected", zap.String("market", m.String()), zap.String("type", "rest"), zap.Int("status", f.status),
			zap.Duration("delay", d), zap.Int("count", f.left))
		return f.left, nil
	}
	return 0, fmt.Errorf("%w: type %q (allowed: drop, stall, malformed, shutdown, skip, rest)", ErrBadFault, req.Type)
}

// Skip makes the next events diff events of symbol disappear from every
// diff stream: the book advances, nobody receives them. The exact missing
// range appears in Faults as a "skip" fault once the events happened
// (synthetic mode) or at once (replay mode, which skips recorded frames).
func (s *Sim) Skip(m md.Market, symbol string, events int) error {
	mk := s.mkt(m)
	if mk == nil {
		return fmt.Errorf("%w: market %v", ErrBadFault, m)
	}
	if events < 1 {
		return fmt.Errorf("%w: events %d < 1", ErrBadFault, events)
	}
	if mk.rep != nil {
		f, err := mk.rep.skipNext(symbol, events)
		if err != nil {
			return err
		}
		s.addFault(f)
		return nil
	}
	i, ok := mk.syn.Lookup(symbol)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownSymbol, symbol)
	}
	mk.syn.Skip(i, events)
	return nil
}

func writeSimJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func simError(w http.ResponseWriter, status int, err error) {
	writeSimJSON(w, status, map[string]string{"error": err.Error()})
}

// sentJSON is one send-log entry as JSON: ids as [id, count] pairs.
type sentJSON struct {
	Kind      string     `json:"kind"`
	Symbol    string     `json:"symbol"`
	Frames    int64      `json:"frames"`
	IDs       [][2]int64 `json:"ids"`
	Malformed [][2]int64 `json:"malformed"`
}

func pairs(m map[int64]int) [][2]int64 {
	s := Sent{IDs: m}
	out := make([][2]int64, 0, len(m))
	for _, id := range s.SortedIDs() {
		out = append(out, [2]int64{id, int64(m[id])})
	}
	return out
}

// simRoutes are the ground-truth and control endpoints:
//
//	GET  /sim/book?symbol=BTCUSDT&id=123   the exact book after update id (default: last published)
//	GET  /sim/sent?symbol=&kind=           the send log
//	GET  /sim/faults                       injected faults and enforced limits of this market
//	GET  /sim/status                       mode, URLs, replay progress
//	GET  /sim/conns                        open websocket connections of this market
//	POST /sim/fault                        inject a fault (FaultRequest JSON)
func (mk *mkt) simRoutes(mux *http.ServeMux) {
	s := mk.s
	mux.HandleFunc("GET /sim/book", func(w http.ResponseWriter, r *http.Request) {
		sym := r.URL.Query().Get("symbol")
		id, err := s.LastUpdateID(mk.m, sym)
		if err != nil {
			simError(w, http.StatusNotFound, err)
			return
		}
		if v := r.URL.Query().Get("id"); v != "" {
			if id, err = strconv.ParseInt(v, 10, 64); err != nil {
				simError(w, http.StatusBadRequest, fmt.Errorf("id %q: %w", v, err))
				return
			}
		}
		bids, asks, err := s.Book(mk.m, sym, id)
		switch {
		case errors.Is(err, ErrHistoryTrimmed), errors.Is(err, ErrFutureUpdate):
			simError(w, http.StatusConflict, err)
			return
		case err != nil:
			simError(w, http.StatusNotFound, err)
			return
		}
		toPairs := func(l []Level) [][2]string {
			out := make([][2]string, len(l))
			for i, x := range l {
				out[i] = [2]string{x.Price, x.Qty}
			}
			return out
		}
		writeSimJSON(w, http.StatusOK, map[string]any{"symbol": sym, "lastUpdateId": id, "bids": toPairs(bids), "asks": toPairs(asks)})
	})
	mux.HandleFunc("GET /sim/sent", func(w http.ResponseWriter, r *http.Request) {
		sym, kind := r.URL.Query().Get("symbol"), r.URL.Query().Get("kind")
		entries, truncated := s.SentLog(mk.m)
		out := []sentJSON{}
		for _, e := range entries {
			if sym != "" && e.Symbol != sym || kind != "" && e.Kind.String() != kind {
				continue
			}
			out = append(out, sentJSON{Kind: e.Kind.String(), Symbol: e.Symbol, Frames: e.Frames, IDs: pairs(e.IDs), Malformed: pairs(e.Malformed)})
		}
		writeSimJSON(w, http.StatusOK, map[string]any{"market": mk.m.String(), "truncated": truncated, "entries": out})
	})
	mux.HandleFunc("GET /sim/faults", func(w http.ResponseWriter, _ *http.Request) {
		f := s.Faults(mk.m)
		if f == nil {
			f = []Fault{}
		}
		writeSimJSON(w, http.StatusOK, map[string]any{"market": mk.m.String(), "faults": f})
	})
	mux.HandleFunc("GET /sim/status", func(w http.ResponseWriter, _ *http.Request) {
		writeSimJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("GET /sim/conns", func(w http.ResponseWriter, _ *http.Request) {
		c := s.Conns(mk.m)
		if c == nil {
			c = []ConnInfo{}
		}
		writeSimJSON(w, http.StatusOK, map[string]any{"market": mk.m.String(), "conns": c})
	})
	mux.HandleFunc("POST /sim/fault", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			simError(w, http.StatusBadRequest, fmt.Errorf("read fault request: %w", err))
			return
		}
		var req FaultRequest
		if err := json.Unmarshal(body, &req); err != nil {
			simError(w, http.StatusBadRequest, fmt.Errorf("%w: %w", ErrBadFault, err))
			return
		}
		if req.Market == "" {
			req.Market = mk.m.String()
		}
		n, err := s.Inject(req)
		if err != nil {
			simError(w, http.StatusBadRequest, err)
			return
		}
		writeSimJSON(w, http.StatusOK, map[string]any{"ok": true, "targets": n})
	})
}
