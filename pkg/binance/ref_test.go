package binance

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"strconv"
)

// This file holds independent reference implementations built on
// encoding/json, regexp and strconv. The fuzz tests and the recordings test
// hold the hand-written scanner and decoder to them.

var errRef = errors.New("reference: rejected")

// member is one object member in document order. Duplicate keys are kept.
type member struct {
	key string
	raw json.RawMessage
}

// refMembers returns the members of the JSON object data in order, using
// json.Decoder tokens (keys are unescaped as encoding/json does).
func refMembers(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errRef
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := tok.(string)
		if !ok {
			return nil, errRef
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, member{k, raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errRef
	}
	return out, nil
}

// nesting returns the deepest container nesting of a valid JSON text.
func nesting(data []byte) int {
	depth, max := 0, 0
	in, esc := false, false
	for _, c := range data {
		switch {
		case in && esc:
			esc = false
		case in && c == '\\':
			esc = true
		case in && c == '"':
			in = false
		case in:
		case c == '"':
			in = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				max = depth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return max
}

// refValid is what the scanner must accept as JSON: encoding/json's Valid
// within the scanner's nesting limit.
func refValid(data []byte) bool {
	return json.Valid(data) && nesting(data) <= maxDepth
}

func isJSONString(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '"' }

func isJSONNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

// refInt decodes raw as an int64 the way the scanner must: a JSON number
// that encoding/json can store in an int64.
func refInt(raw json.RawMessage) (int64, bool) {
	var v int64
	if !isJSONNumber(raw) || json.Unmarshal(raw, &v) != nil {
		return 0, false
	}
	return v, true
}

// refPayload applies the payload rules to the members of a data object:
// e and s must be strings, E, T, U, u, pu and lastUpdateId int64s; the last
// duplicate wins. When levels is true, every b/a/bids/asks value is decoded
// as levels (and must be valid); otherwise an array sets the Has bit.
func refPayload(ms []member, levels bool) (*Depth, error) {
	d := &Depth{}
	for _, m := range ms {
		var dst *int64
		var bit Field
		switch m.key {
		case "e", "s":
			if !isJSONString(m.raw) {
				return nil, errRef
			}
			v := []byte(m.raw[1 : len(m.raw)-1])
			if m.key == "e" {
				d.EventType, d.Has = v, d.Has|HasEventType
			} else {
				d.Symbol, d.Has = v, d.Has|HasSymbol
			}
			continue
		case "E":
			dst, bit = &d.EventTime, HasEventTime
		case "T":
			dst, bit = &d.TransactionTime, HasTransactionTime
		case "U":
			dst, bit = &d.FirstUpdateID, HasFirstUpdateID
		case "u":
			dst, bit = &d.FinalUpdateID, HasFinalUpdateID
		case "pu":
			dst, bit = &d.PrevFinalUpdateID, HasPrevFinalUpdateID
		case "lastUpdateId":
			dst, bit = &d.LastUpdateID, HasLastUpdateID
		case "b", "bids", "a", "asks":
			bit = HasBids
			if m.key == "a" || m.key == "asks" {
				bit = HasAsks
			}
			isArr := len(m.raw) > 0 && m.raw[0] == '['
			if !levels {
				if isArr {
					d.Has |= bit
				} else {
					d.Has &^= bit
				}
				continue
			}
			if !isArr {
				return nil, errRef
			}
			ls, err := refLevels(m.raw)
			if err != nil {
				return nil, err
			}
			if bit == HasBids {
				d.Bids = ls
			} else {
				d.Asks = ls
			}
			d.Has |= bit
			continue
		default:
			continue
		}
		v, ok := refInt(m.raw)
		if !ok {
			return nil, errRef
		}
		*dst = v
		d.Has |= bit
	}
	return d, nil
}

var decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// refLevels decodes a level array with encoding/json and the documented
// rules: each level is exactly two strings holding plain decimals, without
// escapes, within float64 range, with a non-zero price.
func refLevels(raw json.RawMessage) ([]Level, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	out := []Level{}
	for _, e := range elems {
		if len(e) == 0 || e[0] != '[' {
			return nil, errRef
		}
		var pair []json.RawMessage
		if err := json.Unmarshal(e, &pair); err != nil {
			return nil, err
		}
		if len(pair) != 2 {
			return nil, errRef
		}
		var v [2]float64
		for i, p := range pair {
			if !isJSONString(p) || bytes.IndexByte(p, '\\') >= 0 {
				return nil, errRef
			}
			var s string
			if err := json.Unmarshal(p, &s); err != nil {
				return nil, err
			}
			if !decimalRE.MatchString(s) {
				return nil, errRef
			}
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, errRef
			}
			v[i] = f
		}
		if v[0] == 0 {
			return nil, errRef
		}
		out = append(out, Level{Price: v[0], Qty: v[1]})
	}
	return out, nil
}

// refDecode is the reference for DecodeDepth.
func refDecode(data []byte) (*Depth, error) {
	if !refValid(data) {
		return nil, errRef
	}
	ms, err := refMembers(data)
	if err != nil {
		return nil, err
	}
	d, err := refPayload(ms, true)
	if err != nil {
		return nil, err
	}
	if d.Has&HasBids == 0 || d.Has&HasAsks == 0 || d.Has&(HasFinalUpdateID|HasLastUpdateID) == 0 {
		return nil, errRef
	}
	if d.Has&HasFirstUpdateID != 0 && d.Has&HasFinalUpdateID != 0 && d.FirstUpdateID > d.FinalUpdateID {
		return nil, errRef
	}
	return d, nil
}

// refFrameScan is the reference for a ScanFrame market-data frame: the
// last "stream" must be a string and the last "data" an object or array,
// with the payload rules applied to an object. ok is false when the frame
// is not such a frame (it may still be a control frame).
func refFrameScan(frame []byte) (stream string, data json.RawMessage, seq *Depth, ok bool) {
	if !refValid(frame) {
		return "", nil, nil, false
	}
	ms, err := refMembers(frame)
	if err != nil {
		return "", nil, nil, false
	}
	var hasStream, hasData bool
	for _, m := range ms {
		switch m.key {
		case "stream":
			if !isJSONString(m.raw) {
				return "", nil, nil, false
			}
			if err := json.Unmarshal(m.raw, &stream); err != nil {
				return "", nil, nil, false
			}
			hasStream = true
		case "data":
			if len(m.raw) == 0 || m.raw[0] != '{' && m.raw[0] != '[' {
				return "", nil, nil, false
			}
			data, hasData = m.raw, true
			// Every data value is scanned, so every one must be valid.
			if m.raw[0] == '{' {
				dms, err := refMembers(m.raw)
				if err != nil {
					return "", nil, nil, false
				}
				if seq, err = refPayload(dms, false); err != nil {
					return "", nil, nil, false
				}
			} else {
				seq = &Depth{}
			}
		}
	}
	if !hasStream || !hasData {
		return "", nil, nil, false
	}
	return stream, data, seq, true
}

func sameLevels(a, b []Level) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i].Price) != math.Float64bits(b[i].Price) ||
			math.Float64bits(a[i].Qty) != math.Float64bits(b[i].Qty) {
			return false
		}
	}
	return true
}
