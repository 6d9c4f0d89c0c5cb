package ingest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/md"
)

// fakeClock drives a TokenBucket in tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newBucket(rate float64, burst int, c *fakeClock) *TokenBucket {
	b := NewTokenBucket(rate, burst)
	b.now = c.now
	return b
}

// TestTokenBucket proves the bucket's arithmetic: a burst at once, then one
// token per 1/rate, and reservations queue behind each other.
func TestTokenBucket(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	tests := []struct {
		name  string
		rate  float64
		burst int
		steps []struct {
			advance time.Duration
			want    time.Duration
		}
	}{
		{"burst then paced", 2, 3, []struct {
			advance time.Duration
			want    time.Duration
		}{{0, 0}, {0, 0}, {0, 0}, {0, 500 * time.Millisecond}, {0, time.Second}, {time.Second, 500 * time.Millisecond}}},
		{"refill is capped at the burst", 1, 1, []struct {
			advance time.Duration
			want    time.Duration
		}{{0, 0}, {time.Hour, 0}, {0, time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBucket(tt.rate, tt.burst, clk)
			for i, s := range tt.steps {
				clk.add(s.advance)
				if got := b.Reserve(); got != s.want {
					t.Fatalf("step %d: Reserve() = %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

// TestTokenBucketWaitCancel proves that a cancelled wait returns the
// context error and gives its token back.
func TestTokenBucketWaitCancel(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	b := newBucket(0.001, 1, clk)
	if err := b.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	// The cancelled reservation was returned: the next one waits one
	// period, not two.
	if d := b.Reserve(); d > time.Duration(1/0.001*float64(time.Second))+time.Millisecond {
		t.Fatalf("next reservation waits %v: the cancelled token was not returned", d)
	}
}

// TestAttemptLimit proves that the process-wide connection-attempt bucket
// stays under Binance's 300 attempts per 5 minutes in any window.
func TestAttemptLimit(t *testing.T) {
	b := ProcessAttemptLimiter()
	if got := b.MaxIn(5 * time.Minute); got >= 300 {
		t.Fatalf("attempt bucket allows %.0f attempts in 5 minutes, the limit is 300", got)
	}
	// Simulate a storm: 1000 attempts as fast as allowed on a fake clock;
	// count the most in any 5-minute window.
	clk := &fakeClock{t: time.Unix(0, 0)}
	fb := newBucket(attemptRate, attemptBurst, clk)
	var at []time.Time
	for range 1000 {
		d := fb.Reserve()
		at = append(at, clk.now().Add(d))
	}
	j := 0
	for i := range at {
		for at[i].Sub(at[j]) >= 5*time.Minute {
			j++
		}
		if n := i - j + 1; n >= 300 {
			t.Fatalf("%d attempts within 5 minutes (%v .. %v)", n, at[j], at[i])
		}
	}
}

// TestControlRate proves that the SUBSCRIBE pace plus the burst of one
// plus a pong stays below each market's incoming-message limit.
func TestControlRate(t *testing.T) {
	for _, m := range md.Markets {
		limit := binance.ProfileFor(m).MaxIncomingMsgsPerSec
		r := controlRate(limit)
		worst := 1 + r + 1 // burst, refill in one second, one pong
		if worst >= float64(limit) {
			t.Errorf("%s: up to %.0f messages per second, limit %d", m, worst, limit)
		}
		if r < 1 {
			t.Errorf("%s: rate %v", m, r)
		}
	}
}

// TestBackoff proves the reconnect delays: exponential bounds from Base,
// capped, drawn with full jitter from [0, bound].
func TestBackoff(t *testing.T) {
	b := Backoff{Base: 250 * time.Millisecond, Cap: 60 * time.Second, Stable: 30 * time.Second}
	tests := []struct {
		attempt int
		bound   time.Duration
	}{{0, 250 * time.Millisecond}, {1, 500 * time.Millisecond}, {4, 4 * time.Second}, {7, 32 * time.Second}, {8, 60 * time.Second}, {40, 60 * time.Second}, {1000, 60 * time.Second}}
	for _, tt := range tests {
		if got := b.Bound(tt.attempt); got != tt.bound {
			t.Errorf("Bound(%d) = %v, want %v", tt.attempt, got, tt.bound)
		}
		var lo, hi time.Duration = tt.bound, 0
		for range 2000 {
			d := b.Delay(tt.attempt)
			if d < 0 || d > tt.bound {
				t.Fatalf("Delay(%d) = %v outside [0, %v]", tt.attempt, d, tt.bound)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > tt.bound/10 || hi < tt.bound*9/10 {
			t.Errorf("Delay(%d) spans [%v, %v]: not full jitter over [0, %v]", tt.attempt, lo, hi, tt.bound)
		}
	}
	if d := (Backoff{}).withDefaults(); d != DefaultBackoff {
		t.Errorf("zero Backoff defaults to %+v, want %+v", d, DefaultBackoff)
	}
}

// TestWSClient proves the websocket dial client: a large transport read
// buffer is set without losing a caller's transport settings, and a
// custom RoundTripper is left alone.
func TestWSClient(t *testing.T) {
	dial := func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("x") }
	custom := roundTripperFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("x") })
	tests := []struct {
		name     string
		in       *http.Client
		wantSize int
		wantDial bool
		same     bool
	}{
		{"nil", nil, wsReadBuffer, true, false},
		{"default transport", &http.Client{Timeout: time.Second}, wsReadBuffer, true, false},
		{"caller's transport keeps its dialer", &http.Client{Transport: &http.Transport{DialContext: dial}}, wsReadBuffer, true, false},
		{"large enough already", &http.Client{Transport: &http.Transport{ReadBufferSize: 1 << 20}}, 1 << 20, false, true},
		{"custom round tripper", &http.Client{Transport: custom}, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wsClient(tt.in)
			if tt.same != (got == tt.in) {
				t.Fatalf("same client = %v, want %v", got == tt.in, tt.same)
			}
			tr, ok := got.Transport.(*http.Transport)
			if !ok {
				if tt.wantSize != 0 {
					t.Fatalf("transport %T", got.Transport)
				}
				return
			}
			if tr.ReadBufferSize != tt.wantSize || (tr.DialContext != nil) != tt.wantDial {
				t.Fatalf("read buffer %d, dialer kept %v", tr.ReadBufferSize, tr.DialContext != nil)
			}
			if tt.in != nil && tt.in.Timeout != got.Timeout {
				t.Fatal("client settings lost")
			}
		})
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
