package synth

import "strconv"

// lvl is one level of a diff event: the final lots of a price in the event.
type lvl struct {
	side Side
	tick int32
	lots uint32
}

func appendLevels(dst []byte, spec *SymbolSpec, lv []PL) []byte {
	dst = append(dst, '[')
	for i, l := range lv {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[', '"')
		dst = spec.AppendPrice(dst, l.Tick)
		dst = append(dst, '"', ',', '"')
		dst = spec.AppendQty(dst, l.Lots)
		dst = append(dst, '"', ']')
	}
	return append(dst, ']')
}

func appendDiffSide(dst []byte, spec *SymbolSpec, lv []lvl, side Side) []byte {
	dst = append(dst, '[')
	first := true
	for _, l := range lv {
		if l.side != side {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '[', '"')
		dst = spec.AppendPrice(dst, l.tick)
		dst = append(dst, '"', ',', '"')
		dst = spec.AppendQty(dst, l.lots)
		dst = append(dst, '"', ']')
	}
	return append(dst, ']')
}

// appendCombinedHead starts a combined-stream frame and returns the offset
// where the data object starts.
func appendCombinedHead(dst []byte, lower, suffix string) ([]byte, int) {
	dst = append(dst, `{"stream":"`...)
	dst = append(dst, lower...)
	dst = append(dst, suffix...)
	dst = append(dst, `","data":`...)
	return dst, len(dst)
}

// appendDepthUpdate appends a depthUpdate object. Spot events carry
// e,E,s,U,u,b,a; futures events carry e,E,T,s,U,u,pu,b,a.
func appendDepthUpdate(dst []byte, spec *SymbolSpec, futures bool, E, T, U, u, pu int64, lv []lvl) []byte {
	dst = append(dst, `{"e":"depthUpdate","E":`...)
	dst = strconv.AppendInt(dst, E, 10)
	if futures {
		dst = append(dst, `,"T":`...)
		dst = strconv.AppendInt(dst, T, 10)
	}
	dst = append(dst, `,"s":"`...)
	dst = append(dst, spec.Symbol...)
	dst = append(dst, `","U":`...)
	dst = strconv.AppendInt(dst, U, 10)
	dst = append(dst, `,"u":`...)
	dst = strconv.AppendInt(dst, u, 10)
	if futures {
		dst = append(dst, `,"pu":`...)
		dst = strconv.AppendInt(dst, pu, 10)
	}
	dst = append(dst, `,"b":`...)
	dst = appendDiffSide(dst, spec, lv, Bid)
	dst = append(dst, `,"a":`...)
	dst = appendDiffSide(dst, spec, lv, Ask)
	return append(dst, '}')
}

// appendFuturesPartial appends a futures partial depth object: shaped like
// a depthUpdate, with the top N levels of each side.
func appendFuturesPartial(dst []byte, spec *SymbolSpec, E, T, U, u, pu int64, bids, asks []PL) []byte {
	dst = append(dst, `{"e":"depthUpdate","E":`...)
	dst = strconv.AppendInt(dst, E, 10)
	dst = append(dst, `,"T":`...)
	dst = strconv.AppendInt(dst, T, 10)
	dst = append(dst, `,"s":"`...)
	dst = append(dst, spec.Symbol...)
	dst = append(dst, `","U":`...)
	dst = strconv.AppendInt(dst, U, 10)
	dst = append(dst, `,"u":`...)
	dst = strconv.AppendInt(dst, u, 10)
	dst = append(dst, `,"pu":`...)
	dst = strconv.AppendInt(dst, pu, 10)
	dst = append(dst, `,"b":`...)
	dst = appendLevels(dst, spec, bids)
	dst = append(dst, `,"a":`...)
	dst = appendLevels(dst, spec, asks)
	return append(dst, '}')
}

// AppendSpotDepth appends {"lastUpdateId":..,"bids":..,"asks":..}: the spot
// partial depth payload and the spot REST /api/v3/depth body.
func AppendSpotDepth(dst []byte, spec *SymbolSpec, lastUpdateID int64, bids, asks []PL) []byte {
	dst = append(dst, `{"lastUpdateId":`...)
	dst = strconv.AppendInt(dst, lastUpdateID, 10)
	dst = append(dst, `,"bids":`...)
	dst = appendLevels(dst, spec, bids)
	dst = append(dst, `,"asks":`...)
	dst = appendLevels(dst, spec, asks)
	return append(dst, '}')
}

// AppendFuturesDepth appends the futures REST /fapi/v1/depth body:
// {"lastUpdateId":..,"E":..,"T":..,"bids":..,"asks":..}.
func AppendFuturesDepth(dst []byte, spec *SymbolSpec, lastUpdateID, E, T int64, bids, asks []PL) []byte {
	dst = append(dst, `{"lastUpdateId":`...)
	dst = strconv.AppendInt(dst, lastUpdateID, 10)
	dst = append(dst, `,"E":`...)
	dst = strconv.AppendInt(dst, E, 10)
	dst = append(dst, `,"T":`...)
	dst = strconv.AppendInt(dst, T, 10)
	dst = append(dst, `,"bids":`...)
	dst = appendLevels(dst, spec, bids)
	dst = append(dst, `,"asks":`...)
	dst = appendLevels(dst, spec, asks)
	return append(dst, '}')
}
