package binance

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
)

// Profile holds the endpoint facts and limits of one Binance market.
// Slices in a Profile returned by ProfileFor are fresh copies; callers may
// keep or modify them.
type Profile struct {
	Market md.Market

	// WSBase is the default websocket base URL, without a trailing slash.
	// Since 2026-04-23 USD-M depth streams are served under /public.
	WSBase string
	// AltWSBase is a documented market-data-only alternative host, or "".
	AltWSBase string
	// RESTBase is the REST base URL, without a trailing slash.
	RESTBase string

	DepthPath        string // REST order book
	ExchangeInfoPath string // REST exchange information (symbol list)
	Ticker24hPath    string // REST 24 h ticker statistics

	// MaxStreamsPerConn is the number of streams one connection may carry.
	MaxStreamsPerConn int
	// MaxIncomingMsgsPerSec limits the messages a client sends on one
	// connection (SUBSCRIBE, UNSUBSCRIBE, pings and pongs count).
	MaxIncomingMsgsPerSec int
	// ServerPingInterval is how often the server pings.
	ServerPingInterval time.Duration
	// PongTimeout is how long the server waits for a pong before it closes
	// the connection.
	PongTimeout time.Duration
	// MaxConnAge is how long the server keeps a connection open.
	MaxConnAge time.Duration

	// RESTWeightPerMinute is the default request-weight budget per IP.
	RESTWeightPerMinute int
	// DefaultDepthLimit is the limit the server applies when the request
	// has none.
	DefaultDepthLimit int
	// MaxDepthLimit is the largest accepted REST depth limit.
	MaxDepthLimit int
	// DepthLimits lists the accepted REST depth limits when only a fixed
	// set is accepted (USD-M). It is nil when any limit in
	// 1..MaxDepthLimit is accepted (spot).
	DepthLimits []int

	// PartialLevels are the accepted partial depth levels.
	PartialLevels []int
	// DiffSpeeds are the accepted update-speed suffixes of the diff depth
	// stream. "" is the bare <symbol>@depth stream, whose speed is
	// DefaultDiffSpeed.
	DiffSpeeds []string
	// PartialSpeeds are the accepted update-speed suffixes of the partial
	// depth stream; "" means DefaultDiffSpeed as well.
	PartialSpeeds []string
	// DefaultDiffSpeed is the update speed of a stream without a suffix:
	// 1000ms on spot, 250ms on USD-M.
	DefaultDiffSpeed time.Duration
}

// ProfileFor returns the profile of market m. It panics on an unknown
// market: markets come from md.ParseMarket or constants, so an unknown one is
// a programming error.
func ProfileFor(m md.Market) Profile {
	switch m {
	case md.Spot:
		return Profile{
			Market:                md.Spot,
			WSBase:                "wss://stream.binance.com:9443",
			AltWSBase:             "wss://data-stream.binance.vision",
			RESTBase:              "https://api.binance.com",
			DepthPath:             "/api/v3/depth",
			ExchangeInfoPath:      "/api/v3/exchangeInfo",
			Ticker24hPath:         "/api/v3/ticker/24hr",
			MaxStreamsPerConn:     1024,
			MaxIncomingMsgsPerSec: 5,
			ServerPingInterval:    20 * time.Second,
			PongTimeout:           time.Minute,
			MaxConnAge:            24 * time.Hour,
			RESTWeightPerMinute:   6000,
			DefaultDepthLimit:     100,
			MaxDepthLimit:         5000,
			PartialLevels:         []int{5, 10, 20},
			DiffSpeeds:            []string{"", "100ms"},
			PartialSpeeds:         []string{"", "100ms"},
			DefaultDiffSpeed:      time.Second,
		}
	case md.Futures:
		return Profile{
			Market:                md.Futures,
			WSBase:                "wss://fstream.binance.com/public",
			RESTBase:              "https://fapi.binance.com",
			DepthPath:             "/fapi/v1/depth",
			ExchangeInfoPath:      "/fapi/v1/exchangeInfo",
			Ticker24hPath:         "/fapi/v1/ticker/24hr",
			MaxStreamsPerConn:     1024,
			MaxIncomingMsgsPerSec: 10,
			ServerPingInterval:    3 * time.Minute,
			PongTimeout:           10 * time.Minute,
			MaxConnAge:            24 * time.Hour,
			RESTWeightPerMinute:   2400,
			DefaultDepthLimit:     500,
			MaxDepthLimit:         1000,
			DepthLimits:           []int{5, 10, 20, 50, 100, 500, 1000},
			PartialLevels:         []int{5, 10, 20},
			// "0ms" is not in the documentation but is served: the
			// futures_ethusdt recording was taken from @depth@0ms.
			DiffSpeeds:       []string{"", "500ms", "100ms", "0ms"},
			PartialSpeeds:    []string{"", "500ms", "100ms"},
			DefaultDiffSpeed: 250 * time.Millisecond,
		}
	}
	panic("binance: no profile for market " + m.String())
}

// ErrBadLimit reports a REST depth limit the market does not accept. The
// wrapping error names the allowed values.
var ErrBadLimit = errors.New("bad depth limit")

// DepthWeight returns the request weight of a REST depth request with the
// given limit, or an error wrapping ErrBadLimit that lists the allowed
// limits.
//
//	spot /api/v3/depth:    1-100 → 5, 101-500 → 25, 501-1000 → 50, 1001-5000 → 250
//	USD-M /fapi/v1/depth:  5, 10, 20, 50 → 2, 100 → 5, 500 → 10, 1000 → 20
func DepthWeight(m md.Market, limit int) (int, error) {
	switch m {
	case md.Spot:
		switch {
		case limit >= 1 && limit <= 100:
			return 5, nil
		case limit > 100 && limit <= 500:
			return 25, nil
		case limit > 500 && limit <= 1000:
			return 50, nil
		case limit > 1000 && limit <= 5000:
			return 250, nil
		}
		return 0, fmt.Errorf("%w %d for spot /api/v3/depth (allowed: 1..5000)", ErrBadLimit, limit)
	case md.Futures:
		switch limit {
		case 5, 10, 20, 50:
			return 2, nil
		case 100:
			return 5, nil
		case 500:
			return 10, nil
		case 1000:
			return 20, nil
		}
		return 0, fmt.Errorf("%w %d for futures /fapi/v1/depth (allowed: 5, 10, 20, 50, 100, 500, 1000)", ErrBadLimit, limit)
	}
	return 0, fmt.Errorf("%w %d: %w %q", ErrBadLimit, limit, md.ErrUnknownMarket, m.String())
}

// DiffStream returns the diff depth stream name <symbol>@depth[@speed]. The
// symbol is lower-cased; speed is a suffix such as "100ms", or "" for the
// market's default speed.
func DiffStream(symbol, speed string) string {
	s := strings.ToLower(symbol) + "@depth"
	if speed != "" {
		s += "@" + speed
	}
	return s
}

// PartialStream returns the partial depth stream name
// <symbol>@depth<levels>[@speed], for example btcusdt@depth20@100ms.
func PartialStream(symbol string, levels int, speed string) string {
	s := strings.ToLower(symbol) + "@depth" + strconv.Itoa(levels)
	if speed != "" {
		s += "@" + speed
	}
	return s
}

// CombinedStreamURL returns <base>/stream?streams=a/b/c. A trailing slash on
// base is ignored.
func CombinedStreamURL(base string, streams []string) string {
	return strings.TrimRight(base, "/") + "/stream?streams=" + strings.Join(streams, "/")
}

// SubscribeMessage returns the live SUBSCRIBE request
// {"method":"SUBSCRIBE","params":[...],"id":id}.
func SubscribeMessage(id int64, streams []string) []byte {
	return controlMessage("SUBSCRIBE", id, streams)
}

// UnsubscribeMessage returns the live UNSUBSCRIBE request.
func UnsubscribeMessage(id int64, streams []string) []byte {
	return controlMessage("UNSUBSCRIBE", id, streams)
}

func controlMessage(method string, id int64, streams []string) []byte {
	b := make([]byte, 0, 48+len(method)+16*len(streams))
	b = append(b, `{"method":"`...)
	b = append(b, method...)
	b = append(b, `","params":[`...)
	for i, s := range streams {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	b = append(b, `],"id":`...)
	b = strconv.AppendInt(b, id, 10)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Stream names are plain
// ASCII; anything else is escaped so that the message stays valid JSON.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
