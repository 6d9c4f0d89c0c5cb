package binancesim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/binance-sim/synth"
)

// apiError is a Binance REST error: {"code":-1121,"msg":"Invalid symbol."}.
type apiError struct {
	status int
	code   int
	msg    string
}

var (
	errIllegalQuery = &apiError{400, -1100, "Illegal characters found in a parameter."}
	errNoSymbol     = &apiError{400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}
	errBadSymbol    = &apiError{400, -1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."}
	errBadLimitChar = &apiError{400, -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."}
	errBadLimit     = &apiError{400, -1130, "Data sent for parameter 'limit' is not valid."}
	errBadSymbols   = &apiError{400, -1100, "Illegal characters found in parameter 'symbols'; legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'."}
	errBothSymbol   = &apiError{400, -1128, "Combination of optional parameters invalid."}
	errUnknownSym   = &apiError{400, -1121, "Invalid symbol."}
	errInternal     = &apiError{503, -1001, "Internal error; unable to process your request. Please try again."}
)

func writeAPIError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	b := strconv.AppendInt([]byte(`{"code":`), int64(code), 10)
	m, _ := json.Marshal(msg)
	b = append(append(append(b, `,"msg":`...), m...), '}')
	_, _ = w.Write(b)
}

// depthQuery is a parsed /api/v3/depth or /fapi/v1/depth query.
type depthQuery struct {
	symbol string
	limit  int
	weight int
}

// parseDepthQuery parses the query string of a depth request and computes
// its weight: spot 5/25/50/250 for limit <= 100/500/1000/5000 (default
// 100, above 5000 truncated to 5000); USD-M 2/5/10/20 for limit
// 5,10,20,50/100/500/1000 (default 500, nothing else accepted).
func parseDepthQuery(m md.Market, raw string) (depthQuery, *apiError) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return depthQuery{}, errIllegalQuery
	}
	var q depthQuery
	q.symbol = v.Get("symbol")
	if q.symbol == "" {
		return q, errNoSymbol
	}
	if !symbolChars(q.symbol) {
		return q, errBadSymbol
	}
	q.limit = 100
	if m == md.Futures {
		q.limit = 500
	}
	if ls, ok := v["limit"]; ok && len(ls) > 0 {
		l := ls[0]
		if len(l) == 0 || len(l) > 20 || strings.TrimLeft(l, "0123456789") != "" {
			return q, errBadLimitChar
		}
		n, err := strconv.Atoi(l)
		if err != nil {
			return q, errBadLimit
		}
		q.limit = n
	}
	if m == md.Spot {
		switch {
		case q.limit < 1:
			return q, errBadLimit
		case q.limit > 5000:
			q.limit = 5000
		}
		switch {
		case q.limit <= 100:
			q.weight = 5
		case q.limit <= 500:
			q.weight = 25
		case q.limit <= 1000:
			q.weight = 50
		default:
			q.weight = 250
		}
		return q, nil
	}
	switch q.limit {
	case 5, 10, 20, 50:
		q.weight = 2
	case 100:
		q.weight = 5
	case 500:
		q.weight = 10
	case 1000:
		q.weight = 20
	default:
		return q, errBadLimit
	}
	return q, nil
}

func symbolChars(s string) bool {
	if len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// tickerQuery is a parsed ticker/24hr query: no symbols means all.
type tickerQuery struct {
	symbols []string
	single  bool
	weight  int
}

func parseTickerQuery(m md.Market, raw string) (tickerQuery, *apiError) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return tickerQuery{}, errIllegalQuery
	}
	var q tickerQuery
	sym, hasSym := v["symbol"]
	syms, hasSyms := v["symbols"]
	if hasSyms && m == md.Futures {
		hasSyms = false // USD-M has no symbols parameter
	}
	switch {
	case hasSym && hasSyms:
		return q, errBothSymbol
	case hasSym:
		if len(sym) == 0 || sym[0] == "" {
			return q, errNoSymbol
		}
		if !symbolChars(sym[0]) {
			return q, errBadSymbol
		}
		q.symbols, q.single = []string{sym[0]}, true
	case hasSyms:
		if len(syms) == 0 || json.Unmarshal([]byte(syms[0]), &q.symbols) != nil || len(q.symbols) == 0 {
			return q, errBadSymbols
		}
		for _, s := range q.symbols {
			if s == "" || !symbolChars(s) {
				return q, errBadSymbols
			}
		}
	}
	n := len(q.symbols)
	switch {
	case m == md.Futures && q.single:
		q.weight = 1
	case m == md.Futures:
		q.weight = 40
	case n >= 1 && n <= 20:
		q.weight = 2
	case n >= 21 && n <= 100:
		q.weight = 40
	default:
		q.weight = 80
	}
	return q, nil
}

// restCall is one REST endpoint: parse computes the weight, serve answers
// once the weight is admitted.
type restCall struct {
	weight int
	serve  func(w http.ResponseWriter) *apiError
}

// rest wraps an endpoint with fault injection, request weight and the
// used-weight header.
func (mk *mkt) rest(endpoint string, parse func(r *http.Request) (restCall, *apiError)) http.HandlerFunc {
	s := mk.s
	ml := mk.m.String()
	header := mk.weightHeader()
	return func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		defer func() { s.met.rest.WithLabelValues(ml, endpoint, strconv.Itoa(status)).Inc() }()
		ip := remoteIP(r)
		now := time.Now()
		if st, ok := mk.applyRESTFault(w, r, ip, now); ok {
			status = st
			return
		}
		call, aerr := parse(r)
		if aerr != nil {
			setHeader(w, header, strconv.Itoa(mk.weights.used(ip, now)))
			status = aerr.status
			writeAPIError(w, aerr.status, aerr.code, aerr.msg)
			return
		}
		adm := mk.weights.admit(ip, call.weight, now)
		setHeader(w, header, strconv.Itoa(adm.used))
		switch adm.status {
		case http.StatusTooManyRequests:
			status = adm.status
			w.Header().Set("Retry-After", strconv.Itoa(adm.retryAfter))
			mk.s.addFault(Fault{Market: mk.m, Type: FaultRESTRateLimit, Status: 429, Client: ip})
			writeAPIError(w, 429, -1003, mk.tooMuchMsg())
			return
		case http.StatusTeapot:
			status = adm.status
			w.Header().Set("Retry-After", strconv.Itoa(adm.retryAfter))
			mk.s.addFault(Fault{Market: mk.m, Type: FaultRESTBan, Status: 418, Client: ip, Duration: time.Until(adm.banUntil)})
			writeAPIError(w, 418, -1003, banMsg(adm.banUntil))
			if ok, n := s.limiter.Allow("ban:" + ip); ok {
				s.log.Warn("REST client banned", zap.String("market", ml), zap.String("client", ip),
					zap.Time("until", adm.banUntil), zap.Int("suppressed", n))
			}
			return
		}
		if aerr := call.serve(w); aerr != nil {
			status = aerr.status
			writeAPIError(w, aerr.status, aerr.code, aerr.msg)
		}
	}
}

// weightHeader is X-MBX-USED-WEIGHT-<intervalNum><intervalLetter>.
func (mk *mkt) weightHeader() string { return "X-MBX-USED-WEIGHT-" + mk.wSuffix }

// setHeader sets a header with the exact spelling Binance uses (Header.Set
// would canonicalize it to X-Mbx-Used-Weight-1m; clients match either).
func setHeader(w http.ResponseWriter, name, value string) { w.Header()[name] = []string{value} }

func (mk *mkt) tooMuchMsg() string {
	return "Too much request weight used; current limit is " + strconv.Itoa(mk.s.cfg.weightLimit(mk.m)) +
		" request weight per " + strconv.FormatInt(mk.wNum, 10) + " " + mk.wInterval +
		". Please use WebSocket Streams for live updates to avoid polling the API."
}

func banMsg(until time.Time) string {
	return "Way too much request weight used; IP banned until " + strconv.FormatInt(until.UnixMilli(), 10) +
		". Please use WebSocket Streams for live updates to avoid bans."
}

// applyRESTFault applies an injected or random REST fault. It returns true
// when it answered the request.
func (mk *mkt) applyRESTFault(w http.ResponseWriter, r *http.Request, ip string, now time.Time) (int, bool) {
	cfg := &mk.s.cfg
	var f restFault
	injected := false
	mk.restMu.Lock()
	if len(mk.restFaults) > 0 {
		f = mk.restFaults[0]
		injected = true
		mk.restFaults[0].left--
		if mk.restFaults[0].left <= 0 {
			mk.restFaults = mk.restFaults[1:]
		}
	} else {
		if cfg.RESTErrorRate > 0 && mk.restRng.Float64() < cfg.RESTErrorRate {
			f.status, f.retryAfter = cfg.RESTErrorCode, ceilSeconds(cfg.RESTRetryAfter)
		}
		if cfg.RESTSlowRate > 0 && mk.restRng.Float64() < cfg.RESTSlowRate {
			f.delay = cfg.RESTSlowDelay
		}
	}
	mk.restMu.Unlock()
	if f.delay > 0 {
		mk.s.addFault(Fault{Market: mk.m, Type: FaultRESTSlow, Injected: injected, Duration: f.delay, Client: ip})
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return 499, true
		case <-mk.s.ctx.Done():
			return 503, true
		}
	}
	if f.status == 0 {
		return 0, false
	}
	mk.s.addFault(Fault{Market: mk.m, Type: FaultRESTError, Injected: injected, Status: f.status, Client: ip})
	setHeader(w, mk.weightHeader(), strconv.Itoa(mk.weights.used(ip, now)))
	switch f.status {
	case 429:
		w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
		writeAPIError(w, 429, -1003, mk.tooMuchMsg())
	case 418:
		w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
		writeAPIError(w, 418, -1003, banMsg(now.Add(time.Duration(f.retryAfter)*time.Second)))
	default:
		writeAPIError(w, f.status, errInternal.code, errInternal.msg)
	}
	return f.status, true
}

func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

func (mk *mkt) depth(r *http.Request) (restCall, *apiError) {
	q, aerr := parseDepthQuery(mk.m, r.URL.RawQuery)
	if aerr != nil {
		return restCall{}, aerr
	}
	return restCall{weight: q.weight, serve: func(w http.ResponseWriter) *apiError {
		if mk.rep != nil {
			body, ok := mk.rep.snapshot(q.symbol)
			if !ok {
				return errUnknownSym
			}
			writeJSON(w, body)
			return nil
		}
		i, ok := mk.syn.Lookup(q.symbol)
		if !ok {
			return errUnknownSym
		}
		snap := mk.syn.Snapshot(i, q.limit, time.Now())
		spec := &mk.syn.Specs()[i]
		var body []byte
		if mk.m == md.Futures {
			body = synth.AppendFuturesDepth(make([]byte, 0, 64+len(snap.Bids)*48), spec, snap.LastUpdateID, snap.E, snap.T, snap.Bids, snap.Asks)
		} else {
			body = synth.AppendSpotDepth(make([]byte, 0, 64+len(snap.Bids)*64), spec, snap.LastUpdateID, snap.Bids, snap.Asks)
		}
		writeJSON(w, body)
		return nil
	}}, nil
}

func (mk *mkt) ticker(r *http.Request) (restCall, *apiError) {
	q, aerr := parseTickerQuery(mk.m, r.URL.RawQuery)
	if aerr != nil {
		return restCall{}, aerr
	}
	return restCall{weight: q.weight, serve: func(w http.ResponseWriter) *apiError {
		idx := make([]int, 0, len(mk.symbols))
		if q.symbols == nil {
			for i := range mk.symbols {
				idx = append(idx, i)
			}
		}
		for _, s := range q.symbols {
			i, ok := mk.bySymbol[s]
			if !ok {
				return errUnknownSym
			}
			idx = append(idx, i)
		}
		now := time.Now()
		var out []any
		for _, i := range idx {
			out = append(out, mk.tickerOf(i, now))
		}
		var body []byte
		if q.single {
			body, _ = json.Marshal(out[0])
		} else {
			if out == nil {
				out = []any{}
			}
			body, _ = json.Marshal(out)
		}
		writeJSON(w, body)
		return nil
	}}, nil
}

type spotTicker struct {
	Symbol             string `json:"symbol"`
	PriceChange        string `json:"priceChange"`
	PriceChangePercent string `json:"priceChangePercent"`
	WeightedAvgPrice   string `json:"weightedAvgPrice"`
	PrevClosePrice     string `json:"prevClosePrice"`
	LastPrice          string `json:"lastPrice"`
	LastQty            string `json:"lastQty"`
	BidPrice           string `json:"bidPrice"`
	BidQty             string `json:"bidQty"`
	AskPrice           string `json:"askPrice"`
	AskQty             string `json:"askQty"`
	OpenPrice          string `json:"openPrice"`
	HighPrice          string `json:"highPrice"`
	LowPrice           string `json:"lowPrice"`
	Volume             string `json:"volume"`
	QuoteVolume        string `json:"quoteVolume"`
	OpenTime           int64  `json:"openTime"`
	CloseTime          int64  `json:"closeTime"`
	FirstID            int64  `json:"firstId"`
	LastID             int64  `json:"lastId"`
	Count              int64  `json:"count"`
}

type futuresTicker struct {
	Symbol             string `json:"symbol"`
	PriceChange        string `json:"priceChange"`
	PriceChangePercent string `json:"priceChangePercent"`
	WeightedAvgPrice   string `json:"weightedAvgPrice"`
	LastPrice          string `json:"lastPrice"`
	LastQty            string `json:"lastQty"`
	OpenPrice          string `json:"openPrice"`
	HighPrice          string `json:"highPrice"`
	LowPrice           string `json:"lowPrice"`
	Volume             string `json:"volume"`
	QuoteVolume        string `json:"quoteVolume"`
	OpenTime           int64  `json:"openTime"`
	CloseTime          int64  `json:"closeTime"`
	FirstID            int64  `json:"firstId"`
	LastID             int64  `json:"lastId"`
	Count              int64  `json:"count"`
}

// tickerOf builds a symbol's 24h ticker. quoteVolume is a fixed function
// of the symbol's rank, so top:N by quoteVolume selects the most active.
func (mk *mkt) tickerOf(i int, now time.Time) any {
	sy := &mk.symbols[i]
	price, qty := "0", "0"
	bidP, bidQ, askP, askQ := "0", "0", "0", "0"
	pf := 1.0
	if sy.spec != nil {
		bid, ask := mk.syn.BestLevels(i)
		price = string(sy.spec.AppendPrice(nil, bid.Tick))
		qty = string(sy.spec.AppendQty(nil, 1))
		bidP, bidQ = price, string(sy.spec.AppendQty(nil, bid.Lots))
		askP, askQ = string(sy.spec.AppendPrice(nil, ask.Tick)), string(sy.spec.AppendQty(nil, ask.Lots))
		pf = max(sy.spec.Price(bid.Tick), 1e-8)
	}
	qdec := 8
	if mk.m == md.Futures {
		qdec = 2
	}
	count := int64(sy.volume/1e4) + 1
	t := tickerCommon{
		price: price, qty: qty,
		volume: strconv.FormatFloat(sy.volume/pf, 'f', 3, 64), quoteVolume: strconv.FormatFloat(sy.volume, 'f', qdec, 64),
		open: now.Add(-24 * time.Hour).UnixMilli(), close: now.UnixMilli(), first: 1, last: count, count: count,
	}
	if mk.m == md.Futures {
		return futuresTicker{Symbol: sy.Symbol, PriceChange: "0", PriceChangePercent: "0.000", WeightedAvgPrice: t.price,
			LastPrice: t.price, LastQty: t.qty, OpenPrice: t.price, HighPrice: t.price, LowPrice: t.price,
			Volume: t.volume, QuoteVolume: t.quoteVolume, OpenTime: t.open, CloseTime: t.close, FirstID: t.first, LastID: t.last, Count: t.count}
	}
	return spotTicker{Symbol: sy.Symbol, PriceChange: "0", PriceChangePercent: "0.000", WeightedAvgPrice: t.price, PrevClosePrice: t.price,
		LastPrice: t.price, LastQty: t.qty, BidPrice: bidP, BidQty: bidQ, AskPrice: askP, AskQty: askQ,
		OpenPrice: t.price, HighPrice: t.price, LowPrice: t.price,
		Volume: t.volume, QuoteVolume: t.quoteVolume, OpenTime: t.open, CloseTime: t.close, FirstID: t.first, LastID: t.last, Count: t.count}
}

type tickerCommon struct {
	price, qty, volume, quoteVolume string
	open, close, first, last, count int64
}

type rateLimitJSON struct {
	RateLimitType string `json:"rateLimitType"`
	Interval      string `json:"interval"`
	IntervalNum   int64  `json:"intervalNum"`
	Limit         int    `json:"limit"`
}

type filterJSON struct {
	FilterType string `json:"filterType"`
	MinPrice   string `json:"minPrice,omitempty"`
	MaxPrice   string `json:"maxPrice,omitempty"`
	TickSize   string `json:"tickSize,omitempty"`
	MinQty     string `json:"minQty,omitempty"`
	MaxQty     string `json:"maxQty,omitempty"`
	StepSize   string `json:"stepSize,omitempty"`
}

type spotSymbolJSON struct {
	Symbol                     string       `json:"symbol"`
	Status                     string       `json:"status"`
	BaseAsset                  string       `json:"baseAsset"`
	BaseAssetPrecision         int          `json:"baseAssetPrecision"`
	QuoteAsset                 string       `json:"quoteAsset"`
	QuotePrecision             int          `json:"quotePrecision"`
	QuoteAssetPrecision        int          `json:"quoteAssetPrecision"`
	OrderTypes                 []string     `json:"orderTypes"`
	IcebergAllowed             bool         `json:"icebergAllowed"`
	OcoAllowed                 bool         `json:"ocoAllowed"`
	QuoteOrderQtyMarketAllowed bool         `json:"quoteOrderQtyMarketAllowed"`
	IsSpotTradingAllowed       bool         `json:"isSpotTradingAllowed"`
	IsMarginTradingAllowed     bool         `json:"isMarginTradingAllowed"`
	Filters                    []filterJSON `json:"filters"`
	Permissions                []string     `json:"permissions"`
	PermissionSets             [][]string   `json:"permissionSets"`
}

type futuresSymbolJSON struct {
	Symbol            string       `json:"symbol"`
	Pair              string       `json:"pair"`
	ContractType      string       `json:"contractType"`
	DeliveryDate      int64        `json:"deliveryDate"`
	OnboardDate       int64        `json:"onboardDate"`
	Status            string       `json:"status"`
	BaseAsset         string       `json:"baseAsset"`
	QuoteAsset        string       `json:"quoteAsset"`
	MarginAsset       string       `json:"marginAsset"`
	PricePrecision    int          `json:"pricePrecision"`
	QuantityPrecision int          `json:"quantityPrecision"`
	BaseAssetPrec     int          `json:"baseAssetPrecision"`
	QuotePrecision    int          `json:"quotePrecision"`
	UnderlyingType    string       `json:"underlyingType"`
	Filters           []filterJSON `json:"filters"`
	OrderTypes        []string     `json:"orderTypes"`
	TimeInForce       []string     `json:"timeInForce"`
}

// exchangeInfoJSON keeps Binance's field order.
type exchangeInfoJSON struct {
	Timezone        string          `json:"timezone"`
	ServerTime      int64           `json:"serverTime"`
	FuturesType     string          `json:"futuresType,omitempty"`
	RateLimits      []rateLimitJSON `json:"rateLimits"`
	ExchangeFilters []any           `json:"exchangeFilters"`
	Assets          []any           `json:"assets,omitempty"`
	Symbols         []any           `json:"symbols"`
}

func (mk *mkt) rateLimits() []rateLimitJSON {
	rl := []rateLimitJSON{{"REQUEST_WEIGHT", mk.wInterval, mk.wNum, mk.s.cfg.weightLimit(mk.m)}}
	if mk.m == md.Futures {
		return append(rl, rateLimitJSON{"ORDERS", "MINUTE", 1, 1200}, rateLimitJSON{"ORDERS", "SECOND", 10, 300})
	}
	return append(rl, rateLimitJSON{"ORDERS", "SECOND", 10, 100}, rateLimitJSON{"ORDERS", "DAY", 1, 200000},
		rateLimitJSON{"RAW_REQUESTS", "MINUTE", 5, 61000})
}

func (mk *mkt) exchangeInfo(r *http.Request) (restCall, *apiError) {
	weight := 20
	if mk.m == md.Futures {
		weight = 1
	}
	return restCall{weight: weight, serve: func(w http.ResponseWriter) *apiError {
		var syms []any
		for i := range mk.symbols {
			sy := &mk.symbols[i]
			tick, step, pp, qp := "0.00000001", "0.00000001", 8, 8
			if sy.spec != nil {
				tick, step, pp, qp = sy.spec.TickSize(), sy.spec.StepSize(), sy.spec.PriceOut, sy.spec.QtyOut
			}
			filters := []filterJSON{
				{FilterType: "PRICE_FILTER", MinPrice: tick, MaxPrice: "1000000", TickSize: tick},
				{FilterType: "LOT_SIZE", MinQty: step, MaxQty: "9000000", StepSize: step},
			}
			if mk.m == md.Futures {
				syms = append(syms, futuresSymbolJSON{Symbol: sy.Symbol, Pair: sy.Symbol, ContractType: "PERPETUAL",
					DeliveryDate: 4133404800000, OnboardDate: 1569398400000, Status: "TRADING",
					BaseAsset: sy.Base, QuoteAsset: sy.Quote, MarginAsset: sy.Quote, PricePrecision: pp, QuantityPrecision: qp,
					BaseAssetPrec: 8, QuotePrecision: 8, UnderlyingType: "COIN", Filters: filters,
					OrderTypes:  []string{"LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"},
					TimeInForce: []string{"GTC", "IOC", "FOK", "GTX", "GTD"}})
				continue
			}
			syms = append(syms, spotSymbolJSON{Symbol: sy.Symbol, Status: "TRADING", BaseAsset: sy.Base, BaseAssetPrecision: 8,
				QuoteAsset: sy.Quote, QuotePrecision: 8, QuoteAssetPrecision: 8,
				OrderTypes:     []string{"LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"},
				IcebergAllowed: true, OcoAllowed: true, QuoteOrderQtyMarketAllowed: true, IsSpotTradingAllowed: true,
				Filters: filters, Permissions: []string{}, PermissionSets: [][]string{{"SPOT"}}})
		}
		if syms == nil {
			syms = []any{}
		}
		info := exchangeInfoJSON{Timezone: "UTC", ServerTime: time.Now().UnixMilli(), RateLimits: mk.rateLimits(),
			ExchangeFilters: []any{}, Symbols: syms}
		if mk.m == md.Futures {
			info.FuturesType, info.Assets = "U_MARGINED", []any{}
		}
		body, err := json.Marshal(info)
		if err != nil {
			return errInternal
		}
		writeJSON(w, body)
		return nil
	}}, nil
}

func pingCall(*http.Request) (restCall, *apiError) {
	return restCall{weight: 1, serve: func(w http.ResponseWriter) *apiError {
		writeJSON(w, []byte("{}"))
		return nil
	}}, nil
}

func timeCall(*http.Request) (restCall, *apiError) {
	return restCall{weight: 1, serve: func(w http.ResponseWriter) *apiError {
		writeJSON(w, append(strconv.AppendInt([]byte(`{"serverTime":`), time.Now().UnixMilli(), 10), '}'))
		return nil
	}}, nil
}

// routes serves a market's websocket, REST and /sim endpoints.
func (mk *mkt) routes() http.Handler {
	mux := http.NewServeMux()
	ws := func(combined bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { mk.serveWS(w, r, combined, r.PathValue("stream")) }
	}
	prefixes := []string{""}
	api := "/api/v3"
	if mk.m == md.Futures {
		prefixes = []string{"/public", ""} // since 2026-04-23 depth lives under /public; the legacy paths still answer
		api = "/fapi/v1"
	}
	for _, p := range prefixes {
		mux.HandleFunc("GET "+p+"/ws", ws(false))
		mux.HandleFunc("GET "+p+"/ws/{stream}", ws(false))
		mux.HandleFunc("GET "+p+"/stream", ws(true))
	}
	mux.Handle("GET "+api+"/depth", mk.rest("depth", mk.depth))
	mux.Handle("GET "+api+"/exchangeInfo", mk.rest("exchangeInfo", mk.exchangeInfo))
	mux.Handle("GET "+api+"/ticker/24hr", mk.rest("ticker24hr", mk.ticker))
	mux.Handle("GET "+api+"/ping", mk.rest("ping", pingCall))
	mux.Handle("GET "+api+"/time", mk.rest("time", timeCall))
	mk.simRoutes(mux)
	return mux
}
