package binancesim

import (
	"encoding/json"
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
)

// FuzzParseRequest proves subscription-request parsing never panics, that
// every reply it leads to is valid JSON echoing a valid id, and that an
// accepted SUBSCRIBE only carries well-formed stream names.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms","btcusdt@depth20@100ms"],"id":1}`,
		`{"method":"UNSUBSCRIBE","params":["btcusdt@depth"],"id":"abc"}`,
		`{"method":"LIST_SUBSCRIPTIONS","id":null}`,
		`{"method":"SET_PROPERTY","params":["combined",true],"id":5}`,
		`{"method":"GET_PROPERTY","params":["combined"],"id":2}`,
		`{"method":"SUBSCRIBE","params":[1],"id":-9223372036854775808}`,
		`{"method":`, `[]`, `null`, `{"id":1e3}`, "{\"method\":\"SUBSCRIBE\",\"params\":[\"\\u0000@x\"],\"id\":1}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, werr := parseRequest(b)
		var reply []byte
		if werr != nil {
			reply = appendError(nil, werr, req.id)
		} else {
			switch req.method {
			case "SUBSCRIBE", "UNSUBSCRIBE":
				for _, s := range req.params {
					if !validStreamName(s) {
						t.Fatalf("accepted stream %q", s)
					}
				}
			case "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY":
			default:
				t.Fatalf("accepted method %q", req.method)
			}
			reply = appendResult(nil, nullID, req.id)
		}
		if !json.Valid(reply) {
			t.Fatalf("reply %q is not JSON", reply)
		}
	})
}

// FuzzDepthQuery proves REST depth query parsing never panics and only
// accepts limits and weights Binance would.
func FuzzDepthQuery(f *testing.F) {
	for _, s := range []string{"symbol=BTCUSDT&limit=1000", "symbol=BTCUSDT", "limit=5", "symbol=%zz", "symbol=BTCUSDT&limit=99999999999999999999999", "symbol=A&limit=&limit=5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, m := range []md.Market{md.Spot, md.Futures} {
			q, aerr := parseDepthQuery(m, raw)
			if aerr != nil {
				if aerr.status != 400 || aerr.code >= 0 {
					t.Fatalf("error %+v", aerr)
				}
				continue
			}
			if q.symbol == "" || !symbolChars(q.symbol) {
				t.Fatalf("accepted symbol %q", q.symbol)
			}
			ok := false
			switch m {
			case md.Spot:
				ok = q.limit >= 1 && q.limit <= 5000 && q.weight == spotWeight(q.limit)
			case md.Futures:
				w := map[int]int{5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}[q.limit]
				ok = w != 0 && q.weight == w
			}
			if !ok {
				t.Fatalf("%s %q: limit %d weight %d", m, raw, q.limit, q.weight)
			}
		}
	})
}

// FuzzTickerQuery proves ticker query parsing never panics and weights
// every accepted query.
func FuzzTickerQuery(f *testing.F) {
	for _, s := range []string{"", "symbol=BTCUSDT", `symbols=["BTCUSDT","ETHUSDT"]`, "symbols=[", "symbol=BTCUSDT&symbols=[]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, m := range []md.Market{md.Spot, md.Futures} {
			q, aerr := parseTickerQuery(m, raw)
			if aerr == nil && (q.weight <= 0 || q.single && len(q.symbols) != 1) {
				t.Fatalf("%s %q: %+v", m, raw, q)
			}
		}
	})
}

func spotWeight(limit int) int {
	switch {
	case limit <= 100:
		return 5
	case limit <= 500:
		return 25
	case limit <= 1000:
		return 50
	}
	return 250
}
