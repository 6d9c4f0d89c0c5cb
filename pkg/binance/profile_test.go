package binance

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
)

func TestProfileFor(t *testing.T) {
	tests := []struct {
		m    md.Market
		want Profile
	}{
		{md.Spot, Profile{
			Market: md.Spot, WSBase: "wss://stream.binance.com:9443", AltWSBase: "wss://data-stream.binance.vision",
			RESTBase: "https://api.binance.com", DepthPath: "/api/v3/depth", ExchangeInfoPath: "/api/v3/exchangeInfo",
			Ticker24hPath: "/api/v3/ticker/24hr", MaxStreamsPerConn: 1024, MaxIncomingMsgsPerSec: 5,
			ServerPingInterval: 20 * time.Second, PongTimeout: time.Minute, MaxConnAge: 24 * time.Hour,
			RESTWeightPerMinute: 6000, DefaultDepthLimit: 100, MaxDepthLimit: 5000,
			PartialLevels: []int{5, 10, 20}, DiffSpeeds: []string{"", "100ms"}, PartialSpeeds: []string{"", "100ms"},
			DefaultDiffSpeed: time.Second,
		}},
		{md.Futures, Profile{
			Market: md.Futures, WSBase: "wss://fstream.binance.com/public",
			RESTBase: "https://fapi.binance.com", DepthPath: "/fapi/v1/depth", ExchangeInfoPath: "/fapi/v1/exchangeInfo",
			Ticker24hPath: "/fapi/v1/ticker/24hr", MaxStreamsPerConn: 1024, MaxIncomingMsgsPerSec: 10,
			ServerPingInterval: 3 * time.Minute, PongTimeout: 10 * time.Minute, MaxConnAge: 24 * time.Hour,
			RESTWeightPerMinute: 2400, DefaultDepthLimit: 500, MaxDepthLimit: 1000,
			DepthLimits:   []int{5, 10, 20, 50, 100, 500, 1000},
			PartialLevels: []int{5, 10, 20}, DiffSpeeds: []string{"", "500ms", "100ms", "0ms"},
			PartialSpeeds: []string{"", "500ms", "100ms"}, DefaultDiffSpeed: 250 * time.Millisecond,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.m.String(), func(t *testing.T) {
			got := ProfileFor(tt.m)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ProfileFor(%v) =\n%+v\nwant\n%+v", tt.m, got, tt.want)
			}
			// Every limit the profile allows has a weight; the default too.
			for limit := 1; limit <= got.MaxDepthLimit+1; limit++ {
				_, err := DepthWeight(tt.m, limit)
				allowed := limit <= got.MaxDepthLimit && (got.DepthLimits == nil || contains(got.DepthLimits, limit))
				if (err == nil) != allowed {
					t.Fatalf("DepthWeight(%v, %d) err = %v, profile allows it: %v", tt.m, limit, err, allowed)
				}
			}
			if _, err := DepthWeight(tt.m, got.DefaultDepthLimit); err != nil {
				t.Fatalf("default limit: %v", err)
			}
			// Slices are copies.
			got.PartialLevels[0] = 99
			if ProfileFor(tt.m).PartialLevels[0] != 5 {
				t.Fatal("ProfileFor shares its slices")
			}
		})
	}
}

func TestProfileForUnknownPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("ProfileFor(MarketUnknown) did not panic")
		}
	}()
	ProfileFor(md.MarketUnknown)
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestDepthWeight(t *testing.T) {
	tests := []struct {
		m       md.Market
		limit   int
		want    int
		wantErr error
		allowed string // in the error message
	}{
		{md.Spot, 1, 5, nil, ""},
		{md.Spot, 100, 5, nil, ""},
		{md.Spot, 101, 25, nil, ""},
		{md.Spot, 500, 25, nil, ""},
		{md.Spot, 501, 50, nil, ""},
		{md.Spot, 1000, 50, nil, ""},
		{md.Spot, 1001, 250, nil, ""},
		{md.Spot, 5000, 250, nil, ""},
		{md.Spot, 0, 0, ErrBadLimit, "1..5000"},
		{md.Spot, -5, 0, ErrBadLimit, "1..5000"},
		{md.Spot, 5001, 0, ErrBadLimit, "1..5000"},
		{md.Futures, 5, 2, nil, ""},
		{md.Futures, 10, 2, nil, ""},
		{md.Futures, 20, 2, nil, ""},
		{md.Futures, 50, 2, nil, ""},
		{md.Futures, 100, 5, nil, ""},
		{md.Futures, 500, 10, nil, ""},
		{md.Futures, 1000, 20, nil, ""},
		{md.Futures, 1, 0, ErrBadLimit, "5, 10, 20, 50, 100, 500, 1000"},
		{md.Futures, 200, 0, ErrBadLimit, "5, 10, 20, 50, 100, 500, 1000"},
		{md.Futures, 5000, 0, ErrBadLimit, "5, 10, 20, 50, 100, 500, 1000"},
		{md.MarketUnknown, 100, 0, md.ErrUnknownMarket, ""},
	}
	for _, tt := range tests {
		got, err := DepthWeight(tt.m, tt.limit)
		if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
			t.Errorf("DepthWeight(%v, %d) err = %v, want %v", tt.m, tt.limit, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("DepthWeight(%v, %d) = %d, want %d", tt.m, tt.limit, got, tt.want)
		}
		if tt.allowed != "" && !strings.Contains(err.Error(), tt.allowed) {
			t.Errorf("DepthWeight(%v, %d) error %q does not list %q", tt.m, tt.limit, err, tt.allowed)
		}
	}
}

func TestStreamBuilders(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{DiffStream("BTCUSDT", "100ms"), "btcusdt@depth@100ms"},
		{DiffStream("btcusdt", ""), "btcusdt@depth"},
		{DiffStream("ETHUSDT", "0ms"), "ethusdt@depth@0ms"},
		{PartialStream("BTCUSDT", 20, "100ms"), "btcusdt@depth20@100ms"},
		{PartialStream("bnbbtc", 5, ""), "bnbbtc@depth5"},
		{CombinedStreamURL("wss://stream.binance.com:9443", []string{"a@depth", "b@depth20"}), "wss://stream.binance.com:9443/stream?streams=a@depth/b@depth20"},
		{CombinedStreamURL("wss://fstream.binance.com/public/", []string{"a@depth@0ms"}), "wss://fstream.binance.com/public/stream?streams=a@depth@0ms"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	// Built names parse back.
	for _, m := range md.Markets {
		p := ProfileFor(m)
		for _, sp := range p.DiffSpeeds {
			info, err := ParseStreamName([]byte(DiffStream("BTCUSDT", sp)))
			if err != nil || info.Kind != md.Diff || string(info.Speed) != sp || string(info.Symbol) != "btcusdt" {
				t.Errorf("%v diff speed %q: %+v, %v", m, sp, info, err)
			}
		}
		for _, lv := range p.PartialLevels {
			for _, sp := range p.PartialSpeeds {
				info, err := ParseStreamName([]byte(PartialStream("BTCUSDT", lv, sp)))
				if err != nil || info.Kind != md.Partial || info.Levels != lv || string(info.Speed) != sp {
					t.Errorf("%v partial %d %q: %+v, %v", m, lv, sp, info, err)
				}
			}
		}
	}
}

func TestSubscribeMessage(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"subscribe", SubscribeMessage(1, []string{"btcusdt@aggTrade", "btcusdt@depth"}),
			`{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth"],"id":1}`},
		{"unsubscribe", UnsubscribeMessage(312, []string{"btcusdt@depth"}),
			`{"method":"UNSUBSCRIBE","params":["btcusdt@depth"],"id":312}`},
		{"empty", SubscribeMessage(7, nil), `{"method":"SUBSCRIBE","params":[],"id":7}`},
		{"escaped", SubscribeMessage(2, []string{"a\"b\\c\n"}), `{"method":"SUBSCRIBE","params":["a\"b\\c\u000a"],"id":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Fatalf("got %s, want %s", tt.got, tt.want)
			}
			var v struct {
				Method string   `json:"method"`
				Params []string `json:"params"`
				ID     int64    `json:"id"`
			}
			if err := json.Unmarshal(tt.got, &v); err != nil {
				t.Fatalf("not valid JSON: %v", err)
			}
		})
	}
	var v struct{ Params []string }
	if err := json.Unmarshal(SubscribeMessage(2, []string{"a\"b\\c\n"}), &v); err != nil || v.Params[0] != "a\"b\\c\n" {
		t.Fatalf("escaped param round trip: %q, %v", v.Params, err)
	}
}
