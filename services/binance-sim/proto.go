package binancesim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// wsRequest is a parsed live-subscription request:
// {"method":"SUBSCRIBE","params":["btcusdt@depth@100ms"],"id":1}.
type wsRequest struct {
	method string
	params []string // SUBSCRIBE, UNSUBSCRIBE: streams; GET/SET_PROPERTY: the property name
	value  bool     // SET_PROPERTY
	id     []byte   // the id as JSON to echo: an integer, a string or null
}

// wsError is a Binance websocket error reply.
type wsError struct {
	code int
	msg  string
}

const methodList = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"

var nullID = []byte("null")

// parseRequest parses one incoming message the way Binance's stream
// server does, returning its error codes: 3 for invalid JSON, 2 for an
// invalid request, 1 for a bad property value, 0 for an unknown property.
func parseRequest(b []byte) (wsRequest, *wsError) {
	req := wsRequest{id: nullID}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || !json.Valid(b) {
			line, col := lineCol(b, se)
			return req, &wsError{3, fmt.Sprintf("Invalid JSON: expected value at line %d column %d", line, col)}
		}
		return req, &wsError{2, "Invalid request: expected a JSON object"}
	}
	if obj == nil {
		return req, &wsError{2, "Invalid request: expected a JSON object"}
	}
	id, ok := obj["id"]
	if !ok {
		return req, &wsError{2, "Invalid request: request ID must be an unsigned integer"}
	}
	canon, ok := canonicalID(id)
	if !ok {
		return req, &wsError{2, "Invalid request: request ID must be an unsigned integer"}
	}
	req.id = canon
	rawMethod, ok := obj["method"]
	if !ok {
		return req, &wsError{2, "Invalid request: missing field `method`"}
	}
	if err := json.Unmarshal(rawMethod, &req.method); err != nil {
		return req, &wsError{2, "Invalid request: invalid type for `method`, expected one of " + methodList}
	}
	for k := range obj {
		if k != "id" && k != "method" && k != "params" {
			return req, &wsError{2, "Invalid request: too many parameters"}
		}
	}
	rawParams, hasParams := obj["params"]
	switch req.method {
	case "SUBSCRIBE", "UNSUBSCRIBE":
		if !hasParams {
			return req, &wsError{2, "Invalid request: missing field `params`"}
		}
		if err := json.Unmarshal(rawParams, &req.params); err != nil || req.params == nil {
			return req, &wsError{2, "Invalid request: invalid type for `params`, expected a sequence of stream names"}
		}
		for _, s := range req.params {
			if !validStreamName(s) {
				return req, &wsError{2, "Invalid request: invalid stream"}
			}
		}
	case "LIST_SUBSCRIPTIONS":
		if hasParams && !bytes.Equal(bytes.TrimSpace(rawParams), []byte("[]")) && !bytes.Equal(bytes.TrimSpace(rawParams), nullID) {
			return req, &wsError{2, "Invalid request: too many parameters"}
		}
	case "SET_PROPERTY", "GET_PROPERTY":
		var params []json.RawMessage
		if !hasParams || json.Unmarshal(rawParams, &params) != nil || len(params) == 0 {
			return req, &wsError{2, "Invalid request: property name must be a string"}
		}
		want := 1
		if req.method == "SET_PROPERTY" {
			want = 2
		}
		if len(params) > want {
			return req, &wsError{2, "Invalid request: too many parameters"}
		}
		var name string
		if json.Unmarshal(params[0], &name) != nil {
			return req, &wsError{2, "Invalid request: property name must be a string"}
		}
		if name != "combined" {
			return req, &wsError{0, "Unknown property"}
		}
		req.params = []string{name}
		if req.method == "SET_PROPERTY" {
			if len(params) < 2 || json.Unmarshal(params[1], &req.value) != nil {
				return req, &wsError{1, "Invalid value type: expected Boolean"}
			}
		}
	default:
		return req, &wsError{2, fmt.Sprintf("Invalid request: unknown variant `%s`, expected one of %s", truncate(req.method, 64), methodList)}
	}
	return req, nil
}

// canonicalID accepts a 64-bit signed integer, an alphanumeric string of
// at most 36 characters, or null, and returns it as JSON to echo.
func canonicalID(raw json.RawMessage) ([]byte, bool) {
	raw = bytes.TrimSpace(raw)
	switch {
	case bytes.Equal(raw, nullID):
		return nullID, true
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil || len(s) == 0 || len(s) > 36 {
			return nil, false
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
				return nil, false
			}
		}
		return strconv.AppendQuote(nil, s), true
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return nil, false
	}
	return strconv.AppendInt(nil, n, 10), true
}

// validStreamName accepts names shaped like Binance stream names:
// "btcusdt@depth@100ms", "!ticker@arr", "btcusdt@kline_1m@+08:00".
func validStreamName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	at := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == ':', c == '+', c == '-':
		case c == '@':
			if i == 0 || i == len(s)-1 {
				return false
			}
			at = true
		case c == '!' && i == 0:
		default:
			return false
		}
	}
	return at || s[0] == '!'
}

func lineCol(b []byte, se *json.SyntaxError) (int, int) {
	off := len(b)
	if se != nil && se.Offset > 0 && int(se.Offset) <= len(b) {
		off = int(se.Offset)
	}
	line, col := 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	if col > 1 {
		col--
	}
	return line, col
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// appendResult appends {"result":<result>,"id":<id>}.
func appendResult(dst []byte, result []byte, id []byte) []byte {
	dst = append(dst, `{"result":`...)
	dst = append(dst, result...)
	dst = append(dst, `,"id":`...)
	dst = append(dst, id...)
	return append(dst, '}')
}

// appendError appends {"error":{"code":2,"msg":"..."},"id":<id>}.
func appendError(dst []byte, e *wsError, id []byte) []byte {
	dst = append(dst, `{"error":{"code":`...)
	dst = strconv.AppendInt(dst, int64(e.code), 10)
	dst = append(dst, `,"msg":`...)
	msg, _ := json.Marshal(e.msg)
	dst = append(dst, msg...)
	dst = append(dst, `},"id":`...)
	dst = append(dst, id...)
	return append(dst, '}')
}
