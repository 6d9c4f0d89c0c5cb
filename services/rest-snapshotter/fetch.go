package snapshotter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/services/rest-snapshotter/internal/budget"
)

// result is a REST answer.
type result struct {
	status     int
	body       []byte
	used       int
	usedOK     bool
	retryAfter string
	err        error
	reqAt      time.Time
	recvAt     time.Time
}

// fetch requests one snapshot and acts on the answer.
func (mk *market) fetch(ctx context.Context, j *job, sent budget.Sent) {
	defer mk.fetches.Done()
	r := mk.do(ctx, j.sym)
	mk.handle(ctx, j, sent, r)
	// The request counts as in flight until its outcome (a pause, a
	// backoff) is in place: the dispatcher must not slip a request in
	// between.
	mk.mu.Lock()
	mk.inflight--
	mk.mu.Unlock()
	mk.kick()
}

func (mk *market) do(ctx context.Context, sym string) result {
	rctx, cancel := context.WithTimeout(ctx, mk.s.cfg.RequestTimeout)
	defer cancel()
	u := mk.depthURL + "?symbol=" + url.QueryEscape(sym) + "&limit=" + strconv.Itoa(mk.limit)
	var r result
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		r.err = fmt.Errorf("build request %s: %w", u, err)
		r.reqAt, r.recvAt = time.Now(), time.Now()
		return r
	}
	req.Header.Set("Accept", "application/json")
	r.reqAt = time.Now()
	resp, err := mk.s.hc.Do(req)
	if err != nil {
		r.recvAt = time.Now()
		r.err = fmt.Errorf("get %s %s: %w", mk.prof.DepthPath, sym, err)
		return r
	}
	defer func() { _ = resp.Body.Close() }() // a read error is reported below; a close error adds nothing
	r.status = resp.StatusCode
	var buf bytes.Buffer
	if resp.ContentLength > 0 && resp.ContentLength <= maxBody {
		buf.Grow(int(resp.ContentLength) + bytes.MinRead)
	}
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxBody+1))
	r.body = buf.Bytes()
	r.recvAt = time.Now()
	if err != nil {
		r.err = fmt.Errorf("read %s %s body: %w", mk.prof.DepthPath, sym, err)
	}
	mk.mu.Lock()
	header := mk.header
	mk.mu.Unlock()
	r.used, r.usedOK = usedWeight(resp.Header, header)
	r.retryAfter = resp.Header.Get("Retry-After")
	return r
}

// usedWeight reads X-MBX-USED-WEIGHT-<window>; without it, any
// X-MBX-USED-WEIGHT-* header.
func usedWeight(h http.Header, name string) (int, bool) {
	if v := h.Get(name); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		return n, err == nil && n >= 0
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.HasPrefix(strings.ToUpper(k), "X-MBX-USED-WEIGHT") {
			n, err := strconv.Atoi(strings.TrimSpace(vs[0]))
			return n, err == nil && n >= 0
		}
	}
	return 0, false
}

func statusLabel(r result) string {
	switch {
	case r.status != 0:
		return strconv.Itoa(r.status)
	case isTimeout(r.err):
		return "timeout"
	}
	return "error"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// handle acts on a REST answer.
func (mk *market) handle(ctx context.Context, j *job, sent budget.Sent, r result) {
	met := mk.s.met
	met.requests.WithLabelValues(mk.name, statusLabel(r)).Inc()
	met.duration.WithLabelValues(mk.name).Observe(r.recvAt.Sub(r.reqAt).Seconds())
	if r.usedOK {
		mk.mu.Lock()
		mk.gov.Observe(sent, r.used, r.recvAt)
		mk.mu.Unlock()
		met.weightUsed.WithLabelValues(mk.name).Set(float64(r.used))
	}
	switch {
	case r.err != nil && ctx.Err() != nil:
		mk.fail(j, "shutdown", "shutting down")
	case r.status == http.StatusTooManyRequests:
		mk.rateLimited(j, sent, r)
	case r.status == http.StatusTeapot:
		mk.banned(j, sent, r)
	case r.err != nil, r.status >= 500, r.status == http.StatusForbidden:
		if r.status != 0 {
			met.weightSpent.WithLabelValues(mk.name).Add(float64(mk.weight))
		}
		mk.retryLater(j, r)
	case r.status == http.StatusOK:
		met.weightSpent.WithLabelValues(mk.name).Add(float64(mk.weight))
		mk.mu.Lock()
		mk.failures = 0
		mk.mu.Unlock()
		mk.accept(j, r)
	default:
		met.weightSpent.WithLabelValues(mk.name).Add(float64(mk.weight))
		msg := exchangeError(r)
		if ok, n := mk.s.limit.Allow("status:" + mk.name + ":" + j.sym); ok {
			mk.s.log.Warn("snapshot refused by the exchange", zap.String("market", mk.name), zap.String("symbol", j.sym),
				zap.Int("status", r.status), zap.String("error", msg), zap.Int("suppressed", n))
		}
		mk.fail(j, "http_"+strconv.Itoa(r.status), "binance: "+msg)
	}
}

// exchangeError formats a Binance error body {"code":..,"msg":..}, or the
// start of any other body.
func exchangeError(r result) string {
	var h binance.Header
	if binance.ScanData(r.body, &h) == nil && h.Control == binance.ControlError {
		return "HTTP " + strconv.Itoa(r.status) + " code " + strconv.FormatInt(h.ErrCode, 10) + ": " + string(h.ErrMsg)
	}
	return "HTTP " + strconv.Itoa(r.status) + ": " + truncate(string(r.body), 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// pauseLocked stops every request of the market until t.
func (mk *market) pauseLocked(t time.Time, reason string) {
	if t.After(mk.pauseUntil) {
		mk.pauseUntil = t
		mk.s.met.pauses.WithLabelValues(mk.name, reason).Inc()
	}
}

// rateLimited handles a 429: every request of the market waits for
// Retry-After (without one: the end of the exchange's window), and the
// snapshot is retried first.
func (mk *market) rateLimited(j *job, sent budget.Sent, r result) {
	d, err := budget.ParseRetryAfter(r.retryAfter, r.recvAt)
	mk.mu.Lock()
	mk.gov.Refund(sent, mk.weight)
	if err != nil {
		d = max(mk.gov.Remaining(r.recvAt), time.Second)
	}
	until := r.recvAt.Add(d)
	mk.pauseLocked(until, "429")
	ws := mk.requeueLocked(j)
	mk.mu.Unlock()
	mk.replyErrors(ws, "failed", "shutting down")
	if ok, n := mk.s.limit.Allow("429:" + mk.name); ok {
		mk.s.log.Warn("rate limited (429); every request of the market waits for Retry-After",
			zap.String("market", mk.name), zap.String("symbol", j.sym), zap.String("retry_after", r.retryAfter),
			zap.Duration("pause", d), zap.Time("until", until), zap.Int("suppressed", n))
	}
}

// banned handles a 418: every request of the market stops until
// Retry-After, the alert gauge is raised, waiting on-demand requests are
// answered with an error.
func (mk *market) banned(j *job, sent budget.Sent, r result) {
	d, err := budget.ParseRetryAfter(r.retryAfter, r.recvAt)
	if err != nil {
		d = defaultBan
	}
	until := r.recvAt.Add(d)
	msg := "ip banned by binance until " + until.UTC().Format(time.RFC3339)
	mk.mu.Lock()
	mk.gov.Refund(sent, mk.weight)
	newBan := mk.banUntil.IsZero() // one alert per ban, however many answers say so
	if until.After(mk.banUntil) {
		mk.banUntil = until
	}
	mk.pauseLocked(until, "418")
	failed := mk.requeueLocked(j)
	failed = append(failed, mk.dropDemandLocked()...)
	mk.mu.Unlock()
	if newBan {
		mk.s.met.banned.WithLabelValues(mk.name).Set(1)
		mk.s.met.bans.WithLabelValues(mk.name).Inc()
		mk.s.log.Error("ip banned by the exchange (418); every request of the market stops until Retry-After",
			zap.String("market", mk.name), zap.String("symbol", j.sym), zap.String("retry_after", r.retryAfter),
			zap.Duration("ban", d), zap.Time("until", until), zap.String("error", exchangeError(r)))
	}
	mk.replyErrors(failed, "banned", msg)
}

// retryLater handles 5xx, 403, timeouts and network errors: the market
// backs off exponentially (with jitter), and the snapshot is retried
// first, up to SNAPSHOT_ATTEMPTS.
func (mk *market) retryLater(j *job, r result) {
	mk.mu.Lock()
	mk.failures++
	n := mk.failures
	d := mk.backoff.Delay(n)
	mk.pauseLocked(r.recvAt.Add(d), "backoff")
	j.attempts++
	giveUp := j.attempts >= mk.s.cfg.Attempts
	var closed []waiter
	if !giveUp {
		closed = mk.requeueLocked(j)
	}
	mk.mu.Unlock()
	mk.replyErrors(closed, "failed", "shutting down")
	reason := statusLabel(r)
	if ok, s := mk.s.limit.Allow("retry:" + mk.name); ok {
		fields := []zap.Field{zap.String("market", mk.name), zap.String("symbol", j.sym), zap.String("status", reason),
			zap.Int("consecutive_failures", n), zap.Int("attempt", j.attempts), zap.Duration("backoff", d), zap.Int("suppressed", s)}
		if r.err != nil {
			fields = append(fields, zap.Error(r.err))
		} else {
			fields = append(fields, zap.String("error", exchangeError(r)))
		}
		mk.s.log.Warn("snapshot request failed; backing off", fields...)
	}
	if giveUp {
		mk.fail(j, "attempts", "binance unavailable: "+reason+" after "+strconv.Itoa(j.attempts)+" attempts")
	}
}

// infoTransport carries exchangeInfo and ticker requests and honours
// their 429 and 418 answers like the depth requests' ones.
type infoTransport struct{ mk *market }

func (t infoTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.mk.s.tr.RoundTrip(r)
	if err != nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusTeapot) {
		return resp, err
	}
	now := time.Now()
	reason, d := "429", time.Minute // without Retry-After: Binance's window
	if resp.StatusCode == http.StatusTeapot {
		reason, d = "418", defaultBan
	}
	if ra, perr := budget.ParseRetryAfter(resp.Header.Get("Retry-After"), now); perr == nil {
		d = ra
	}
	mk := t.mk
	mk.mu.Lock()
	mk.pauseLocked(now.Add(d), reason)
	newBan := false
	if resp.StatusCode == http.StatusTeapot {
		newBan = mk.banUntil.IsZero()
		if now.Add(d).After(mk.banUntil) {
			mk.banUntil = now.Add(d)
		}
	}
	mk.mu.Unlock()
	if newBan {
		mk.s.met.banned.WithLabelValues(mk.name).Set(1)
		mk.s.met.bans.WithLabelValues(mk.name).Inc()
		mk.s.log.Error("ip banned by the exchange (418); every request of the market stops until Retry-After",
			zap.String("market", mk.name), zap.String("endpoint", r.URL.Path), zap.Duration("ban", d), zap.Time("until", now.Add(d)))
	}
	return resp, nil
}
