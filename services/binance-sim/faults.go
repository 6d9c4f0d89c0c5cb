package binancesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
)

// Fault types, as reported by Faults and GET /sim/faults.
const (
	FaultDrop           = "drop"            // connection closed abruptly (random or injected)
	FaultMaxAge         = "max_age"         // connection closed at SIM_MAX_CONN_AGE
	FaultShutdown       = "server_shutdown" // serverShutdown event sent, close follows after the notice
	FaultStall          = "stall"           // connection sent nothing for Duration
	FaultMalformed      = "malformed"       // the next Count frames of a connection are malformed (injection)
	FaultSkip           = "skip"            // exchange-side gap: diff events covering From..To never sent
	FaultSlowConsumer   = "slow_consumer"   // send queue full: client disconnected
	FaultPongTimeout    = "pong_timeout"    // no pong within the pong timeout: disconnected
	FaultMsgRate        = "msg_rate"        // client sent too many messages: disconnected
	FaultRESTError      = "rest_error"      // injected REST error answer (Status)
	FaultRESTSlow       = "rest_slow"       // REST answer delayed by Duration
	FaultRESTRateLimit  = "rest_429"        // weight limit exceeded: 429
	FaultRESTBan        = "rest_418"        // client kept sending after 429s: banned
	faultHistoryLimit   = 100000
	maxRetryAfterSecond = 3 * 24 * 3600
)

// Fault is one injected fault or enforced limit.
type Fault struct {
	Seq      int64         `json:"seq"`
	Time     time.Time     `json:"time"`
	Market   md.Market     `json:"-"`
	MarketS  string        `json:"market"`
	Type     string        `json:"type"`
	Injected bool          `json:"injected"` // requested through Inject or POST /sim/fault
	Conn     int64         `json:"conn,omitempty"`
	Symbol   string        `json:"symbol,omitempty"`
	From     int64         `json:"from,omitempty"` // skip: first U of the lost events
	To       int64         `json:"to,omitempty"`   // skip: last u of the lost events
	Events   int           `json:"events,omitempty"`
	Count    int           `json:"count,omitempty"`
	Status   int           `json:"status,omitempty"`
	Duration time.Duration `json:"durationNs,omitempty"`
	Client   string        `json:"client,omitempty"`
}

type faultLog struct {
	mu      sync.Mutex
	seq     int64
	faults  []Fault
	dropped int64
}

func (l *faultLog) add(f Fault) Fault {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	f.Seq = l.seq
	if f.Time.IsZero() {
		f.Time = time.Now()
	}
	f.MarketS = f.Market.String()
	if len(l.faults) >= faultHistoryLimit {
		n := len(l.faults) / 2
		l.faults = append(l.faults[:0], l.faults[n:]...)
		l.dropped += int64(n)
	}
	l.faults = append(l.faults, f)
	return f
}

func (l *faultLog) list(m md.Market) []Fault {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Fault
	for _, f := range l.faults {
		if m == md.MarketUnknown || f.Market == m {
			out = append(out, f)
		}
	}
	return out
}

// Duration is a time.Duration that reads and writes JSON as "2s".
type Duration time.Duration

// MarshalJSON writes "2s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "2s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		x, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("parse duration %q: %w", s, err)
		}
		*d = Duration(x)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("parse duration %s: want \"2s\" or nanoseconds", b)
	}
	*d = Duration(n)
	return nil
}

// FaultRequest injects a fault at runtime (Inject, POST /sim/fault).
//
//	{"type":"drop","conn":3}                       close connection 3 abruptly (conn 0: every connection)
//	{"type":"stall","conn":0,"duration":"2s"}      every connection sends nothing for 2s
//	{"type":"malformed","conn":3,"count":5}        connection 3's next 5 depth frames are truncated JSON
//	{"type":"shutdown","duration":"1s"}            serverShutdown event now, close 1s later (default 1s)
//	{"type":"skip","symbol":"BTCUSDT","events":3}  the next 3 diff events of BTCUSDT are never sent
//	{"type":"rest","status":429,"count":2,"retryAfter":7}  the next 2 REST requests get 429, Retry-After 7
//	{"type":"rest","duration":"3s","count":1}      the next REST request is answered 3s late
type FaultRequest struct {
	Type       string   `json:"type"`
	Market     string   `json:"market,omitempty"` // spot or futures; POST /sim/fault defaults to the port's market
	Conn       int64    `json:"conn,omitempty"`
	Symbol     string   `json:"symbol,omitempty"`
	Events     int      `json:"events,omitempty"`
	Count      int      `json:"count,omitempty"`
	Status     int      `json:"status,omitempty"`
	RetryAfter int      `json:"retryAfter,omitempty"`
	Duration   Duration `json:"duration,omitempty"`
}

// ErrBadFault reports an invalid FaultRequest.
var ErrBadFault = errors.New("invalid fault request")

// restFault is a pending injected REST fault.
type restFault struct {
	status     int
	retryAfter int
	delay      time.Duration
	left       int
}
