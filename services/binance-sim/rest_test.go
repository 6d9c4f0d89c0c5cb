package binancesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
)

// waitFreshWindow sleeps into the next weight window when the current one
// ends within 15 s, so a test that fills a window does not straddle two.
func waitFreshWindow(w time.Duration) {
	now := time.Now()
	end := now.Truncate(w).Add(w)
	if end.Sub(now) < 15*time.Second {
		time.Sleep(end.Sub(now) + 50*time.Millisecond)
	}
}

type apiErr struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

func decodeAPIErr(t testing.TB, b []byte) apiErr {
	t.Helper()
	var e apiErr
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %s: %v", b, err)
	}
	return e
}

// TestRESTWeights proves depth requests cost Binance's weights against the
// per-window limit: spot limit=1000 costs 50 of 6000 and futures
// limit=1000 costs 20 of 2400, the used weight comes back in
// X-MBX-USED-WEIGHT-1M, and past the limit the answer is 429 with
// Retry-After and a -1003 body.
func TestRESTWeights(t *testing.T) {
	s := newSim(t, nil)
	for _, tc := range []struct {
		m      md.Market
		url    string
		weight int
		limit  int
	}{
		{md.Spot, s.RESTURL(md.Spot) + "/api/v3/depth?symbol=BTCUSDT&limit=1000", 50, 6000},
		{md.Futures, s.RESTURL(md.Futures) + "/fapi/v1/depth?symbol=BTCUSDT&limit=1000", 20, 2400},
	} {
		t.Run(tc.m.String(), func(t *testing.T) {
			waitFreshWindow(time.Minute)
			for i := 1; i <= tc.limit/tc.weight; i++ {
				r := get(t, tc.url)
				if r.status != 200 {
					t.Fatalf("call %d: %d %s", i, r.status, r.body)
				}
				if got := r.header.Get("X-MBX-USED-WEIGHT-1M"); got != strconv.Itoa(i*tc.weight) {
					t.Fatalf("call %d: used weight %q, want %d", i, got, i*tc.weight)
				}
				if i == 1 {
					var d restDepth
					if err := json.Unmarshal(r.body, &d); err != nil || d.LastUpdateID == 0 || len(d.Bids) != 1000 || len(d.Asks) != 1000 {
						t.Fatalf("depth body: %v %d %d/%d", err, d.LastUpdateID, len(d.Bids), len(d.Asks))
					}
					if tc.m == md.Futures && (d.E == 0 || d.T == 0 || !strings.Contains(string(r.body), `"E":`)) {
						t.Fatalf("futures depth lacks E/T: %.100s", r.body)
					}
					if tc.m == md.Spot && strings.Contains(string(r.body), `"E":`) {
						t.Fatalf("spot depth has E: %.100s", r.body)
					}
				}
			}
			r := get(t, tc.url)
			if r.status != 429 {
				t.Fatalf("past the limit: %d %s", r.status, r.body)
			}
			ra, err := strconv.Atoi(r.header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 60 {
				t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
			}
			if e := decodeAPIErr(t, r.body); e.Code != -1003 || !strings.HasPrefix(e.Msg, "Too much request weight used; current limit is "+strconv.Itoa(tc.limit)+" request weight per 1 MINUTE") {
				t.Fatalf("429 body %+v", e)
			}
			if f := waitFault(t, s, tc.m, FaultRESTRateLimit); f.Status != 429 {
				t.Fatalf("fault %+v", f)
			}
		})
	}
}

// TestBan418 proves a client that keeps sending after 429s is banned with
// 418, Retry-After and the ban's end time, and stays banned.
func TestBan418(t *testing.T) {
	s := newSim(t, func(c *Config) {
		c.SpotWeightLimit, c.BanAfter, c.WeightWindow = 10, 2, 24*time.Hour
	})
	waitFreshWindow(24 * time.Hour)
	url := s.RESTURL(md.Spot) + "/api/v3/depth?symbol=BTCUSDT&limit=100"
	want := []int{200, 200, 429, 429, 418, 418}
	for i, w := range want {
		r := get(t, url)
		if r.status != w {
			t.Fatalf("request %d: %d %s, want %d", i+1, r.status, r.body, w)
		}
		if r.header.Get("X-MBX-USED-WEIGHT-1D") == "" {
			t.Fatalf("request %d: no X-MBX-USED-WEIGHT-1D header", i+1)
		}
		if w == 418 {
			ra, _ := strconv.Atoi(r.header.Get("Retry-After"))
			if ra < 100 || ra > 120 {
				t.Fatalf("418 Retry-After %q, want about 120", r.header.Get("Retry-After"))
			}
			if e := decodeAPIErr(t, r.body); e.Code != -1003 || !strings.Contains(e.Msg, "IP banned until") {
				t.Fatalf("418 body %+v", e)
			}
		}
	}
	waitFault(t, s, md.Spot, FaultRESTBan)
}

// TestDepthQuery is the table of depth parameters, weights and errors.
func TestDepthQuery(t *testing.T) {
	for _, tc := range []struct {
		m       md.Market
		q       string
		limit   int
		weight  int
		errCode int
	}{
		{md.Spot, "symbol=BTCUSDT", 100, 5, 0},
		{md.Spot, "symbol=BTCUSDT&limit=1", 1, 5, 0},
		{md.Spot, "symbol=BTCUSDT&limit=100", 100, 5, 0},
		{md.Spot, "symbol=BTCUSDT&limit=101", 101, 25, 0},
		{md.Spot, "symbol=BTCUSDT&limit=500", 500, 25, 0},
		{md.Spot, "symbol=BTCUSDT&limit=501", 501, 50, 0},
		{md.Spot, "symbol=BTCUSDT&limit=1000", 1000, 50, 0},
		{md.Spot, "symbol=BTCUSDT&limit=1001", 1001, 250, 0},
		{md.Spot, "symbol=BTCUSDT&limit=5000", 5000, 250, 0},
		{md.Spot, "symbol=BTCUSDT&limit=9000", 5000, 250, 0},
		{md.Spot, "symbol=BTCUSDT&limit=0", 0, 0, -1130},
		{md.Spot, "symbol=BTCUSDT&limit=-1", 0, 0, -1100},
		{md.Spot, "symbol=BTCUSDT&limit=abc", 0, 0, -1100},
		{md.Spot, "limit=100", 0, 0, -1102},
		{md.Spot, "symbol=btcusdt", 0, 0, -1100},
		{md.Spot, "symbol=%zz", 0, 0, -1100},
		{md.Futures, "symbol=BTCUSDT", 500, 10, 0},
		{md.Futures, "symbol=BTCUSDT&limit=5", 5, 2, 0},
		{md.Futures, "symbol=BTCUSDT&limit=10", 10, 2, 0},
		{md.Futures, "symbol=BTCUSDT&limit=20", 20, 2, 0},
		{md.Futures, "symbol=BTCUSDT&limit=50", 50, 2, 0},
		{md.Futures, "symbol=BTCUSDT&limit=100", 100, 5, 0},
		{md.Futures, "symbol=BTCUSDT&limit=500", 500, 10, 0},
		{md.Futures, "symbol=BTCUSDT&limit=1000", 1000, 20, 0},
		{md.Futures, "symbol=BTCUSDT&limit=7", 0, 0, -1130},
		{md.Futures, "symbol=BTCUSDT&limit=5000", 0, 0, -1130},
	} {
		t.Run(tc.m.String()+"?"+tc.q, func(t *testing.T) {
			q, aerr := parseDepthQuery(tc.m, tc.q)
			if tc.errCode != 0 {
				if aerr == nil || aerr.code != tc.errCode || aerr.status != 400 {
					t.Fatalf("got %+v %+v, want error %d", q, aerr, tc.errCode)
				}
				return
			}
			if aerr != nil || q.limit != tc.limit || q.weight != tc.weight || q.symbol != "BTCUSDT" {
				t.Fatalf("got %+v %+v, want limit %d weight %d", q, aerr, tc.limit, tc.weight)
			}
		})
	}
}

// TestRESTEndpoints proves exchangeInfo, ticker/24hr, ping and time answer
// in Binance's shapes with Binance's weights, and bad symbols get -1121.
func TestRESTEndpoints(t *testing.T) {
	s := newSim(t, func(c *Config) { c.Symbols = "30"; c.WeightWindow = 24 * time.Hour })
	waitFreshWindow(24 * time.Hour)
	used := map[md.Market]int{}
	call := func(m md.Market, path string, weight, status int) []byte {
		t.Helper()
		r := get(t, s.RESTURL(m)+path)
		if r.status != status {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		used[m] += weight
		if got := r.header.Get("X-MBX-USED-WEIGHT-1D"); got != strconv.Itoa(used[m]) {
			t.Fatalf("%s: used weight %s, want %d", path, got, used[m])
		}
		return r.body
	}
	var info struct {
		RateLimits []rateLimitJSON `json:"rateLimits"`
		Symbols    []struct {
			Symbol, Status, BaseAsset, QuoteAsset string
		} `json:"symbols"`
	}
	if err := json.Unmarshal(call(md.Spot, "/api/v3/exchangeInfo", 20, 200), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Symbols) != 30 || info.Symbols[0].Symbol != "BTCUSDT" || info.Symbols[0].Status != "TRADING" ||
		info.Symbols[0].BaseAsset != "BTC" || info.Symbols[0].QuoteAsset != "USDT" {
		t.Fatalf("spot symbols %+v", info.Symbols[:2])
	}
	if rl := info.RateLimits[0]; rl != (rateLimitJSON{"REQUEST_WEIGHT", "DAY", 1, 6000}) {
		t.Fatalf("rateLimits %+v", info.RateLimits)
	}
	if err := json.Unmarshal(call(md.Futures, "/fapi/v1/exchangeInfo", 1, 200), &info); err != nil {
		t.Fatal(err)
	}
	if rl := info.RateLimits[0]; rl != (rateLimitJSON{"REQUEST_WEIGHT", "DAY", 1, 2400}) || len(info.Symbols) != 30 {
		t.Fatalf("futures rateLimits %+v", info.RateLimits)
	}
	var tickers []struct {
		Symbol      string `json:"symbol"`
		QuoteVolume string `json:"quoteVolume"`
		LastPrice   string `json:"lastPrice"`
	}
	for _, tc := range []struct {
		m      md.Market
		path   string
		weight int
	}{{md.Spot, "/api/v3/ticker/24hr", 80}, {md.Futures, "/fapi/v1/ticker/24hr", 40}} {
		if err := json.Unmarshal(call(tc.m, tc.path, tc.weight, 200), &tickers); err != nil {
			t.Fatal(err)
		}
		if len(tickers) != 30 {
			t.Fatalf("%d tickers", len(tickers))
		}
		prev := 1e300
		for _, tk := range tickers {
			v, err := strconv.ParseFloat(tk.QuoteVolume, 64)
			if err != nil || v >= prev || tk.LastPrice == "0" {
				t.Fatalf("%s ticker %+v: quoteVolume must fall with activity rank", tc.m, tk)
			}
			prev = v
		}
	}
	call(md.Spot, `/api/v3/ticker/24hr?symbols=["BTCUSDT","ETHUSDT"]`, 2, 200)
	var one struct {
		Symbol string `json:"symbol"`
	}
	if err := json.Unmarshal(call(md.Spot, "/api/v3/ticker/24hr?symbol=ETHUSDT", 2, 200), &one); err != nil || one.Symbol != "ETHUSDT" {
		t.Fatalf("single ticker %+v %v", one, err)
	}
	call(md.Futures, "/fapi/v1/ticker/24hr?symbol=ETHUSDT", 1, 200)
	call(md.Spot, "/api/v3/ping", 1, 200)
	call(md.Futures, "/fapi/v1/time", 1, 200)
	if e := decodeAPIErr(t, call(md.Spot, "/api/v3/depth?symbol=NOPEUSDT", 5, 400)); e != (apiErr{-1121, "Invalid symbol."}) {
		t.Fatalf("unknown symbol: %+v", e)
	}
	if e := decodeAPIErr(t, call(md.Futures, "/fapi/v1/depth?symbol=BTCUSDT&limit=7", 0, 400)); e.Code != -1130 {
		t.Fatalf("bad futures limit: %+v", e)
	}
}

// TestWeightWindowName proves a shorter SIM_WEIGHT_WINDOW is described the
// way Binance names intervals, in exchangeInfo and in the header.
func TestWeightWindowName(t *testing.T) {
	for _, tc := range []struct {
		w        time.Duration
		suffix   string
		interval string
		num      int64
	}{
		{time.Minute, "1M", "MINUTE", 1}, {6 * time.Second, "6S", "SECOND", 6}, {90 * time.Second, "90S", "SECOND", 90},
		{2 * time.Minute, "2M", "MINUTE", 2}, {time.Hour, "1H", "HOUR", 1}, {24 * time.Hour, "1D", "DAY", 1},
	} {
		suffix, interval, num := windowName(tc.w)
		if suffix != tc.suffix || interval != tc.interval || num != tc.num {
			t.Errorf("windowName(%v) = %s %s %d", tc.w, suffix, interval, num)
		}
	}
	s := newSim(t, func(c *Config) { c.WeightWindow = 6 * time.Second })
	r := get(t, s.RESTURL(md.Spot)+"/api/v3/exchangeInfo")
	if r.header.Get("X-MBX-USED-WEIGHT-6S") == "" {
		t.Fatalf("headers %v", r.header)
	}
	if !strings.Contains(string(r.body), `{"rateLimitType":"REQUEST_WEIGHT","interval":"SECOND","intervalNum":6,"limit":6000}`) {
		t.Fatalf("exchangeInfo %.300s", r.body)
	}
}

// TestSimBookEndpoint proves GET /sim/book serves the ground truth and
// refuses ids that have not happened.
func TestSimBookEndpoint(t *testing.T) {
	s := newSim(t, nil)
	time.Sleep(300 * time.Millisecond)
	id, err := s.LastUpdateID(md.Futures, "ETHUSDT")
	if err != nil {
		t.Fatal(err)
	}
	r := get(t, fmt.Sprintf("%s/sim/book?symbol=ETHUSDT&id=%d", s.RESTURL(md.Futures), id))
	var got struct {
		LastUpdateID int64       `json:"lastUpdateId"`
		Bids         [][2]string `json:"bids"`
		Asks         [][2]string `json:"asks"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 {
		t.Fatalf("%d %s %v", r.status, r.body, err)
	}
	bids, asks, err := s.Book(md.Futures, "ETHUSDT", id)
	if err != nil || got.LastUpdateID != id || len(got.Bids) != len(bids) || len(got.Asks) != len(asks) ||
		got.Bids[0] != [2]string{bids[0].Price, bids[0].Qty} {
		t.Fatalf("book endpoint %d levels vs %d: %v", len(got.Bids), len(bids), err)
	}
	if r := get(t, s.RESTURL(md.Futures)+"/sim/book?symbol=ETHUSDT&id=9223372036854775807"); r.status != 409 {
		t.Fatalf("future id: %d %s", r.status, r.body)
	}
	if _, _, err := s.Book(md.Spot, "ETHUSDT", 1); !errors.Is(err, ErrHistoryTrimmed) {
		t.Fatalf("ancient id: %v", err)
	}
	if _, _, err := s.Book(md.Spot, "NOPE", 1); !errors.Is(err, ErrUnknownSymbol) {
		t.Fatalf("unknown symbol: %v", err)
	}
}
