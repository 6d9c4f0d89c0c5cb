package binance_test

import (
	"errors"
	"fmt"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/md"
)

// An ingest service reads the routing and sequence fields of each frame,
// checks the chain, and publishes the untouched data bytes under a subject
// and dedup id, without decoding a single level.
func ExampleScanFrame() {
	frames := []string{
		`{"result":null,"id":1}`,
		`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1622371244693,"T":1622371244687,"s":"BTCUSDT","U":475776377463,"u":475776380184,"pu":475776377452,"b":[["35729.77","1.600"]],"a":[]}}`,
		`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1622371244793,"T":1622371244787,"s":"BTCUSDT","U":475776380190,"u":475776380200,"pu":475776380184,"b":[],"a":[["35819.20","0.211"]]}}`,
		`{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":5,"p":"1","q":"1","T":1,"m":true}}`,
	}
	m := md.Futures
	var (
		h     binance.Header
		sym   []byte
		id    []byte
		prevU int64 = 475776377452
	)
	for _, f := range frames {
		if err := binance.ScanFrame([]byte(f), &h); err != nil {
			fmt.Println("quarantine:", err)
			continue
		}
		if h.Control != binance.ControlNone {
			fmt.Println("control:", h.Control, h.ID)
			continue
		}
		info, err := binance.ParseStreamName(h.Stream)
		if errors.Is(err, binance.ErrNotDepth) {
			fmt.Println("skip:", string(h.Stream))
			continue
		}
		if err == nil {
			err = h.Check(m, info.Kind)
		}
		if err != nil {
			fmt.Println("quarantine:", err)
			continue
		}
		if !binance.Follows(m, prevU, h.FirstUpdateID, h.PrevFinalUpdateID) {
			fmt.Printf("gap: (%d, %d]\n", prevU, binance.PrevLink(m, h.FirstUpdateID, h.PrevFinalUpdateID))
		}
		prevU = h.FinalUpdateID
		sym = binance.AppendUpperSymbol(sym[:0], info.Symbol)
		seq, _ := h.DedupID(m, info.Kind)
		id = md.AppendMsgID(id[:0], m, info.Kind, string(sym), seq)
		fmt.Printf("publish %s id=%s bytes=%d\n", md.Subject(m, info.Kind, string(sym)), id, len(h.Data))
	}
	// Output:
	// control: result 1
	// publish md.binance.futures.diff.BTCUSDT id=futures.diff.BTCUSDT.475776380184 bytes=155
	// publish md.binance.futures.diff.BTCUSDT id=futures.diff.BTCUSDT.475776380200 bytes=155
	// skip: btcusdt@aggTrade
}

// The writer decodes the published data into levels, reusing one Depth.
func ExampleDecodeDepth() {
	var d binance.Depth
	data := []byte(`{"lastUpdateId":1570223094073,"E":1654231622340,"T":1654231622320,"bids":[["30564.6","0.024"],["30561.1","0.003"]],"asks":[["30569.5","0.141"]]}`)
	if err := binance.DecodeREST(data, &d); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.LastUpdateID, d.Bids, d.Asks)

	err := binance.DecodeDepth([]byte(`{"u":1,"b":[["NaN","1"]],"a":[]}`), &d)
	fmt.Println(errors.Is(err, binance.ErrImpossibleValue), err)
	// Output:
	// 1570223094073 [{30564.6 0.024} {30561.1 0.003}] [{30569.5 0.141}]
	// true decode depth: impossible value: price or quantity is not a decimal at offset 13
}
