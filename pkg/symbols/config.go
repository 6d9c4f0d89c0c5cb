package symbols

import (
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
)

// Config is the market selection every collector shares: which symbols,
// which share of them, where the exchange is, and who is collecting.
type Config struct {
	Symbols        string `envconfig:"SYMBOLS" default:"top:50" desc:"symbols of both markets: a comma list, top:N (by 24h quote volume at start-up) or all (every TRADING symbol, re-read periodically)"`
	SpotSymbols    string `envconfig:"SPOT_SYMBOLS" desc:"overrides SYMBOLS for spot"`
	FuturesSymbols string `envconfig:"FUTURES_SYMBOLS" desc:"overrides SYMBOLS for USD-M futures"`
	Shard          string `envconfig:"SHARD" desc:"this replica's share of the symbols, i/N (0 <= i < N); empty captures all"`
	SourceID       string `envconfig:"SOURCE_ID" desc:"collector id stamped on every envelope (host/region/replica); empty uses the host name"`
	SpotWSURL      string `envconfig:"SPOT_WS_URL" desc:"spot websocket base; default wss://stream.binance.com:9443"`
	FuturesWSURL   string `envconfig:"FUTURES_WS_URL" desc:"USD-M websocket base; default wss://fstream.binance.com/public"`
	SpotRESTURL    string `envconfig:"SPOT_REST_URL" desc:"spot REST base; default https://api.binance.com"`
	FuturesRESTURL string `envconfig:"FUTURES_REST_URL" desc:"USD-M REST base; default https://fapi.binance.com"`
}

// Validate checks every field and names the variable at fault.
func (c Config) Validate() error {
	for _, v := range []struct{ name, val string }{{"SYMBOLS", c.Symbols}, {"SPOT_SYMBOLS", c.SpotSymbols}, {"FUTURES_SYMBOLS", c.FuturesSymbols}} {
		if v.val == "" && v.name != "SYMBOLS" {
			continue
		}
		if _, err := Parse(v.val); err != nil {
			return svc.Invalid(v.name, v.val, "a comma list like BTCUSDT,ETHUSDT, top:N, or all")
		}
	}
	if _, err := ParseShard(c.Shard); err != nil {
		return svc.Invalid("SHARD", c.Shard, "i/N with 0 <= i < N, e.g. 0/2")
	}
	for _, v := range []struct{ name, val string }{{"SPOT_WS_URL", c.SpotWSURL}, {"FUTURES_WS_URL", c.FuturesWSURL}} {
		if v.val == "" {
			continue
		}
		if u, err := url.Parse(v.val); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return svc.Invalid(v.name, v.val, "a ws:// or wss:// URL")
		}
	}
	for _, v := range []struct{ name, val string }{{"SPOT_REST_URL", c.SpotRESTURL}, {"FUTURES_REST_URL", c.FuturesRESTURL}} {
		if v.val == "" {
			continue
		}
		if u, err := url.Parse(v.val); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return svc.Invalid(v.name, v.val, "an http:// or https:// URL")
		}
	}
	return nil
}

// Spec returns the symbol selection for market m.
func (c Config) Spec(m md.Market) (Spec, error) {
	s := c.Symbols
	if m == md.Spot && c.SpotSymbols != "" {
		s = c.SpotSymbols
	}
	if m == md.Futures && c.FuturesSymbols != "" {
		s = c.FuturesSymbols
	}
	return Parse(s)
}

// ShardOf returns the parsed SHARD.
func (c Config) ShardOf() Shard {
	sh, _ := ParseShard(c.Shard)
	return sh
}

// Source returns SOURCE_ID, or the host name.
func (c Config) Source() string {
	if c.SourceID != "" {
		return c.SourceID
	}
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

// WSURL returns the websocket base of market m.
func (c Config) WSURL(m md.Market) string {
	if m == md.Spot && c.SpotWSURL != "" {
		return c.SpotWSURL
	}
	if m == md.Futures && c.FuturesWSURL != "" {
		return c.FuturesWSURL
	}
	return binance.ProfileFor(m).WSBase
}

// RESTURL returns the REST base of market m.
func (c Config) RESTURL(m md.Market) string {
	if m == md.Spot && c.SpotRESTURL != "" {
		return c.SpotRESTURL
	}
	if m == md.Futures && c.FuturesRESTURL != "" {
		return c.FuturesRESTURL
	}
	return binance.ProfileFor(m).RESTBase
}

// Client returns the exchangeInfo/ticker client of market m.
func (c Config) Client(m md.Market, hc *http.Client) Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	p := binance.ProfileFor(m)
	return Client{HTTP: hc, Base: c.RESTURL(m), ExchangeInfoPath: p.ExchangeInfoPath, TickerPath: p.Ticker24hPath}
}
