// Package symbols selects the symbols a service captures: an explicit
// list, the top N by 24h quote volume, or every TRADING symbol, and splits
// them across replicas (SHARD=i/N).
package symbols

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
)

// Mode is how a Spec selects symbols.
type Mode uint8

// Modes.
const (
	List Mode = iota // an explicit comma list
	Top              // top:N by 24h quote volume, chosen at start-up
	All              // every TRADING symbol, re-read periodically
)

// Spec is a parsed SYMBOLS value.
type Spec struct {
	Mode    Mode
	Symbols []string // List mode, upper case
	N       int      // Top mode
}

// ErrBadSpec is returned by Parse.
var ErrBadSpec = errors.New("bad symbol selection")

// Parse parses "BTCUSDT,ETHUSDT", "top:50" or "all".
func Parse(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Spec{}, fmt.Errorf("%w: empty (allowed: a comma list like BTCUSDT,ETHUSDT, top:N, all)", ErrBadSpec)
	case strings.EqualFold(s, "all"):
		return Spec{Mode: All}, nil
	case strings.HasPrefix(strings.ToLower(s), "top:"):
		n, err := strconv.Atoi(s[4:])
		if err != nil || n <= 0 || n > 5000 {
			return Spec{}, fmt.Errorf("%w %q: top:N needs 1 <= N <= 5000", ErrBadSpec, s)
		}
		return Spec{Mode: Top, N: n}, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.ToUpper(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if !md.ValidSymbol(p) {
			return Spec{}, fmt.Errorf("%w: symbol %q is not a valid symbol name", ErrBadSpec, p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return Spec{}, fmt.Errorf("%w %q: no symbols", ErrBadSpec, s)
	}
	return Spec{Mode: List, Symbols: out}, nil
}

func (s Spec) String() string {
	switch s.Mode {
	case Top:
		return "top:" + strconv.Itoa(s.N)
	case All:
		return "all"
	default:
		return strings.Join(s.Symbols, ",")
	}
}

// Shard is a replica's share of the symbols: index I of N.
type Shard struct{ I, N int }

// ParseShard parses "i/N" (0 <= i < N); empty means 0/1.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{0, 1}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("%w: shard %q (allowed: i/N with 0 <= i < N, e.g. 0/2)", ErrBadSpec, s)
	}
	return Shard{i, n}, nil
}

// Owns reports whether the shard captures symbol. The split is a stable
// hash of the symbol, so replicas agree without coordination.
func (sh Shard) Owns(symbol string) bool {
	if sh.N <= 1 {
		return true
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(symbol))
	return int(h.Sum32()%uint32(sh.N)) == sh.I
}

// Filter keeps the symbols the shard owns, in order.
func (sh Shard) Filter(syms []string) []string {
	out := make([]string, 0, len(syms))
	for _, s := range syms {
		if sh.Owns(s) {
			out = append(out, s)
		}
	}
	return out
}

func (sh Shard) String() string { return strconv.Itoa(sh.I) + "/" + strconv.Itoa(sh.N) }

// Info is one exchangeInfo symbol.
type Info struct {
	Symbol       string `json:"symbol"`
	Status       string `json:"status"`
	ContractType string `json:"contractType,omitempty"`
}

// RateLimit is one exchangeInfo rate limit.
type RateLimit struct {
	Type        string `json:"rateLimitType"`
	Interval    string `json:"interval"`
	IntervalNum int    `json:"intervalNum"`
	Limit       int    `json:"limit"`
}

// Window is the length of the rate limit's window.
func (r RateLimit) Window() time.Duration {
	unit := map[string]time.Duration{"SECOND": time.Second, "MINUTE": time.Minute, "HOUR": time.Hour, "DAY": 24 * time.Hour}[r.Interval]
	return unit * time.Duration(max(r.IntervalNum, 1))
}

// ExchangeInfo is the part of /exchangeInfo depthcap reads.
type ExchangeInfo struct {
	Symbols    []Info      `json:"symbols"`
	RateLimits []RateLimit `json:"rateLimits"`
}

// WeightLimit returns the REQUEST_WEIGHT limit, if listed.
func (e ExchangeInfo) WeightLimit() (RateLimit, bool) {
	for _, r := range e.RateLimits {
		if r.Type == "REQUEST_WEIGHT" {
			return r, true
		}
	}
	return RateLimit{}, false
}

// Trading lists TRADING symbols (on futures, perpetual and dated contracts
// alike), sorted.
func (e ExchangeInfo) Trading() []string {
	var out []string
	for _, s := range e.Symbols {
		if s.Status == "TRADING" && md.ValidSymbol(s.Symbol) {
			out = append(out, s.Symbol)
		}
	}
	sort.Strings(out)
	return out
}

// Client reads exchangeInfo and the 24h ticker from a market's REST base.
type Client struct {
	HTTP             *http.Client
	Base             string // e.g. https://api.binance.com
	ExchangeInfoPath string // e.g. /api/v3/exchangeInfo
	TickerPath       string // e.g. /api/v3/ticker/24hr
}

// ErrHTTP is returned for non-200 answers.
var ErrHTTP = errors.New("http status")

func (c Client) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+path, nil)
	if err != nil {
		return fmt.Errorf("get %s: %w", path, err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("get %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: %w %d: %.200s", path, ErrHTTP, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// ExchangeInfo fetches exchangeInfo.
func (c Client) ExchangeInfo(ctx context.Context) (ExchangeInfo, error) {
	var e ExchangeInfo
	err := c.get(ctx, c.ExchangeInfoPath, &e)
	return e, err
}

type ticker struct {
	Symbol      string `json:"symbol"`
	QuoteVolume string `json:"quoteVolume"`
}

// TopByQuoteVolume returns the n TRADING symbols with the largest 24h
// quote volume, largest first (ties by name).
func (c Client) TopByQuoteVolume(ctx context.Context, n int, trading []string) ([]string, error) {
	var ts []ticker
	if err := c.get(ctx, c.TickerPath, &ts); err != nil {
		return nil, err
	}
	type sv struct {
		s string
		v float64
	}
	var all []sv
	for _, t := range ts {
		if _, ok := slices.BinarySearch(trading, t.Symbol); !ok {
			continue
		}
		v, err := strconv.ParseFloat(t.QuoteVolume, 64)
		if err != nil {
			continue
		}
		all = append(all, sv{t.Symbol, v})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].v != all[j].v {
			return all[i].v > all[j].v
		}
		return all[i].s < all[j].s
	})
	out := make([]string, 0, n)
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, all[i].s)
	}
	return out, nil
}

// Resolve turns a Spec into symbols, reading the exchange for top:N and
// all. A List is returned as given: unknown symbols are the exchange's to
// reject (the websocket simply sends nothing for them; the snapshotter
// gets a 400 and reports it).
func (c Client) Resolve(ctx context.Context, spec Spec) ([]string, error) {
	if spec.Mode == List {
		return slices.Clone(spec.Symbols), nil
	}
	info, err := c.ExchangeInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", spec, err)
	}
	trading := info.Trading()
	if spec.Mode == All {
		return trading, nil
	}
	top, err := c.TopByQuoteVolume(ctx, spec.N, trading)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", spec, err)
	}
	return top, nil
}
