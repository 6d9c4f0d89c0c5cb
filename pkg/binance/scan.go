package binance

import (
	"fmt"
	"strings"
)

// Field is a bit mask of the fields present in a Seq or Header.
type Field uint32

// Fields. The first group belongs to Seq: the top-level scalars of a depth
// payload and its level arrays. The second group is set on Header only.
const (
	HasEventType         Field = 1 << iota // "e"
	HasEventTime                           // "E"
	HasTransactionTime                     // "T"
	HasSymbol                              // "s"
	HasFirstUpdateID                       // "U"
	HasFinalUpdateID                       // "u"
	HasPrevFinalUpdateID                   // "pu"
	HasLastUpdateID                        // "lastUpdateId"
	HasBids                                // "b" or "bids", an array
	HasAsks                                // "a" or "asks", an array

	HasStream  // combined frame "stream"
	HasData    // combined frame "data"
	HasID      // control reply "id", an integer
	HasErrCode // error reply "code"
	HasErrMsg  // error reply "msg"
)

var fieldNames = [...]string{"e", "E", "T", "s", "U", "u", "pu", "lastUpdateId", "bids", "asks",
	"stream", "data", "id", "code", "msg"}

// String lists the fields in f by their JSON names, for example "U,u,pu".
func (f Field) String() string {
	var b strings.Builder
	for i, name := range fieldNames {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(name)
		}
	}
	return b.String()
}

// Seq holds the top-level scalar fields of a depth payload: routing,
// times and sequence ids. Byte slices alias the scanned input.
type Seq struct {
	EventType         []byte // "e", raw string contents
	Symbol            []byte // "s", raw string contents
	EventTime         int64  // "E", ms
	TransactionTime   int64  // "T", ms (USD-M)
	FirstUpdateID     int64  // "U"
	FinalUpdateID     int64  // "u"
	PrevFinalUpdateID int64  // "pu" (USD-M)
	LastUpdateID      int64  // "lastUpdateId" (spot partial, REST)
	Has               Field
}

// Control classifies a frame that is not market data.
type Control uint8

// Control classes.
const (
	// ControlNone: a market-data frame.
	ControlNone Control = iota
	// ControlResult: a reply to SUBSCRIBE and friends, {"result":null,"id":1}.
	ControlResult
	// ControlError: an error reply, {"error":{"code":2,"msg":"..."},"id":1},
	// or the flat {"code":-1121,"msg":"..."} form of REST and older
	// websocket errors. Header.ErrCode and ErrMsg carry the details.
	ControlError
	// ControlShutdown: the serverShutdown event, sent before the server
	// closes the connection for maintenance. Reconnect now.
	// Header.EventTime carries "E" when present.
	ControlShutdown
)

func (c Control) String() string {
	switch c {
	case ControlNone:
		return "none"
	case ControlResult:
		return "result"
	case ControlError:
		return "error"
	case ControlShutdown:
		return "serverShutdown"
	}
	return "unknown"
}

// Header is what the fast path reads from a frame. Byte slices alias the
// scanned input and are valid as long as it is.
type Header struct {
	Control Control
	// Stream is the raw "stream" string of a combined frame.
	Stream []byte
	// Data is the exact bytes of the "data" value (ScanFrame), or of the
	// whole object (ScanData): publish it untouched.
	Data []byte
	// Seq holds the data's top-level scalars.
	Seq
	// ID is the request id of a control reply (HasID).
	ID int64
	// ErrCode and ErrMsg describe a ControlError (HasErrCode, HasErrMsg).
	// ErrMsg is the raw string contents.
	ErrCode int64
	ErrMsg  []byte
}

// shutdownEvent is the event type of the serverShutdown notice. The spot
// WebSocket API documents it as {"event":{"e":"serverShutdown","E":...}};
// the WebSocket Streams documentation announces the event without a
// payload example, so the scanner also accepts it bare
// ({"e":"serverShutdown","E":...}) and as the data of a combined frame.
const shutdownEvent = "serverShutdown"

// ctl collects control keys while an object is scanned.
type ctl struct {
	seen      ctlKey
	id        int64
	code      int64
	msg       []byte
	event     []byte // "e" of an "event" object
	eventTime int64
}

type ctlKey uint8

const (
	ctlResult ctlKey = 1 << iota
	ctlError
	ctlID
	ctlCode
	ctlMsg
	ctlEvent
	ctlEventTime
)

// key identifies the object keys the scanner acts on.
type key uint8

const (
	keyOther     key = iota
	keyE             // "e"
	keyEventTime     // "E"
	keyT             // "T"
	keyS             // "s"
	keyFirstU        // "U"
	keyFinalU        // "u"
	keyPU            // "pu"
	keyLastUpdateID
	keyBids // "b", "bids"
	keyAsks // "a", "asks"
	keyStream
	keyData
	keyResult
	keyID
	keyError
	keyCode
	keyMsg
	keyEvent
)

func lookupKey(k []byte) key {
	switch string(k) {
	case "e":
		return keyE
	case "E":
		return keyEventTime
	case "T":
		return keyT
	case "s":
		return keyS
	case "U":
		return keyFirstU
	case "u":
		return keyFinalU
	case "pu":
		return keyPU
	case "lastUpdateId":
		return keyLastUpdateID
	case "b", "bids":
		return keyBids
	case "a", "asks":
		return keyAsks
	case "stream":
		return keyStream
	case "data":
		return keyData
	case "result":
		return keyResult
	case "id":
		return keyID
	case "error":
		return keyError
	case "code":
		return keyCode
	case "msg":
		return keyMsg
	case "event":
		return keyEvent
	}
	return keyOther
}

// objectKey reads `"key" :` at s.pos (after whitespace) and identifies it.
func (s *scanner) objectKey() (key, error) {
	s.ws()
	if s.pos >= len(s.buf) || s.buf[s.pos] != '"' {
		return keyOther, s.fail("want object key")
	}
	start, end, esc, err := s.str()
	if err != nil {
		return keyOther, err
	}
	k := keyOther
	if !esc {
		k = lookupKey(s.buf[start:end])
	} else {
		var tmp [16]byte
		if raw, ok := unescapeKey(&tmp, s.buf[start:end]); ok {
			k = lookupKey(raw)
		}
	}
	if err := s.expect(':', "want ':' after object key"); err != nil {
		return keyOther, err
	}
	s.ws()
	return k, nil
}

// next steps past ',' and reports true, or past '}' and reports false.
func (s *scanner) next() (bool, error) {
	s.ws()
	if s.pos >= len(s.buf) {
		return false, s.fail("unexpected end of input")
	}
	switch s.buf[s.pos] {
	case ',':
		s.pos++
		return true, nil
	case '}':
		s.pos++
		s.depth--
		return false, nil
	}
	return false, s.fail("want ',' or '}' in object")
}

// open steps past '{' and reports whether the object has members.
func (s *scanner) open() (bool, error) {
	if s.pos >= len(s.buf) || s.buf[s.pos] != '{' {
		return false, s.fail("want object")
	}
	if s.depth >= maxDepth {
		return false, s.fail("nesting too deep")
	}
	s.pos++
	s.ws()
	if s.pos < len(s.buf) && s.buf[s.pos] == '}' {
		s.pos++
		return false, nil
	}
	s.depth++
	return true, nil
}

func (s *scanner) strField(dst *[]byte, name string) error {
	if s.pos >= len(s.buf) || s.buf[s.pos] != '"' {
		return s.fail(name + ": want string")
	}
	start, end, _, err := s.str()
	if err != nil {
		return err
	}
	*dst = s.buf[start:end:end]
	return nil
}

func (s *scanner) intField(dst *int64, name string) error {
	v, reason := s.int()
	if reason != "" {
		return s.fail(name + ": " + reason)
	}
	*dst = v
	return nil
}

// payload scans the depth payload object at s.pos into q. Level arrays are
// decoded into d when d is not nil and skipped otherwise. When c is not nil,
// control keys are collected too (ScanData on a bare object).
func (s *scanner) payload(q *Seq, d *Depth, c *ctl) error {
	more, err := s.open()
	for more && err == nil {
		var k key
		if k, err = s.objectKey(); err != nil {
			break
		}
		switch k {
		case keyE:
			err = s.strField(&q.EventType, "e")
			q.Has |= HasEventType
		case keyS:
			err = s.strField(&q.Symbol, "s")
			q.Has |= HasSymbol
		case keyEventTime:
			err = s.intField(&q.EventTime, "E")
			q.Has |= HasEventTime
		case keyT:
			err = s.intField(&q.TransactionTime, "T")
			q.Has |= HasTransactionTime
		case keyFirstU:
			err = s.intField(&q.FirstUpdateID, "U")
			q.Has |= HasFirstUpdateID
		case keyFinalU:
			err = s.intField(&q.FinalUpdateID, "u")
			q.Has |= HasFinalUpdateID
		case keyPU:
			err = s.intField(&q.PrevFinalUpdateID, "pu")
			q.Has |= HasPrevFinalUpdateID
		case keyLastUpdateID:
			err = s.intField(&q.LastUpdateID, "lastUpdateId")
			q.Has |= HasLastUpdateID
		case keyBids, keyAsks:
			flag := HasBids
			if k == keyAsks {
				flag = HasAsks
			}
			switch {
			case d != nil:
				if k == keyBids {
					d.Bids, err = s.levels(d.Bids[:0], "bids")
				} else {
					d.Asks, err = s.levels(d.Asks[:0], "asks")
				}
				q.Has |= flag
			case s.pos < len(s.buf) && s.buf[s.pos] == '[':
				err = s.skipContainer()
				q.Has |= flag
			default:
				// bookTicker's "b" and aggTrade's "a" are scalars.
				q.Has &^= flag
				err = s.skip()
			}
		default:
			if c != nil {
				err = s.control(k, c)
			} else {
				err = s.skip()
			}
		}
		if err == nil {
			more, err = s.next()
		}
	}
	return err
}

// control handles a key of a frame that may be a control reply. Control
// keys are read leniently: a value of an unexpected type is skipped, never
// an error, so only invalid JSON fails here.
func (s *scanner) control(k key, c *ctl) error {
	var ok bool
	var err error
	switch k {
	case keyResult:
		c.seen |= ctlResult
		return s.skip()
	case keyID:
		ok, err = s.optInt(&c.id)
		c.seen = c.seen&^ctlID | pick(ok, ctlID)
	case keyCode:
		ok, err = s.optInt(&c.code)
		c.seen = c.seen&^ctlCode | pick(ok, ctlCode)
	case keyMsg:
		ok, err = s.optString(&c.msg)
		c.seen = c.seen&^ctlMsg | pick(ok, ctlMsg)
	case keyError:
		c.seen |= ctlError
		if s.pos < len(s.buf) && s.buf[s.pos] == '{' {
			return s.errorObject(c)
		}
		return s.skip()
	case keyEvent:
		c.seen |= ctlEvent
		if s.pos < len(s.buf) && s.buf[s.pos] == '{' {
			return s.eventObject(c)
		}
		return s.skip()
	default:
		return s.skip()
	}
	return err
}

func pickField(ok bool, f Field) Field {
	if ok {
		return f
	}
	return 0
}

func pick(ok bool, k ctlKey) ctlKey {
	if ok {
		return k
	}
	return 0
}

// optInt reads an int64 into dst if the value is one, and skips any other
// value.
func (s *scanner) optInt(dst *int64) (bool, error) {
	if s.pos < len(s.buf) && (s.buf[s.pos] == '-' || s.buf[s.pos] >= '0' && s.buf[s.pos] <= '9') {
		if v, reason := s.int(); reason == "" {
			*dst = v
			return true, nil
		}
	}
	return false, s.skip()
}

// optString reads a string's raw contents into dst if the value is a
// string, and skips any other value.
func (s *scanner) optString(dst *[]byte) (bool, error) {
	if s.pos < len(s.buf) && s.buf[s.pos] == '"' {
		return true, s.strField(dst, "")
	}
	return false, s.skip()
}

// errorObject scans the object of an "error" key: {"code":2,"msg":"..."}.
func (s *scanner) errorObject(c *ctl) error {
	more, err := s.open()
	for more && err == nil {
		var k key
		if k, err = s.objectKey(); err != nil {
			break
		}
		if k == keyCode || k == keyMsg {
			err = s.control(k, c)
		} else {
			err = s.skip()
		}
		if err == nil {
			more, err = s.next()
		}
	}
	return err
}

// eventObject scans the object of an "event" key: {"e":"serverShutdown","E":...}.
// A later "event" replaces an earlier one.
func (s *scanner) eventObject(c *ctl) error {
	c.event, c.seen = nil, c.seen&^ctlEventTime
	more, err := s.open()
	for more && err == nil {
		var k key
		if k, err = s.objectKey(); err != nil {
			break
		}
		var ok bool
		switch k {
		case keyE:
			if ok, err = s.optString(&c.event); !ok {
				c.event = nil
			}
		case keyEventTime:
			ok, err = s.optInt(&c.eventTime)
			c.seen = c.seen&^ctlEventTime | pick(ok, ctlEventTime)
		default:
			err = s.skip()
		}
		if err == nil {
			more, err = s.next()
		}
	}
	return err
}

// classify sets h.Control for a frame without stream and data.
func classify(h *Header, c *ctl) {
	if c.seen&ctlID != 0 {
		h.ID = c.id
		h.Has |= HasID
	}
	switch {
	case string(h.EventType) == shutdownEvent:
		h.Control = ControlShutdown
	case c.seen&ctlEvent != 0 && string(c.event) == shutdownEvent:
		h.Control = ControlShutdown
		h.EventType = c.event
		h.Has |= HasEventType
		if c.seen&ctlEventTime != 0 {
			h.EventTime = c.eventTime
			h.Has |= HasEventTime
		}
	case c.seen&ctlError != 0,
		c.seen&(ctlCode|ctlMsg) == ctlCode|ctlMsg && c.seen&ctlResult == 0:
		h.Control = ControlError
	case c.seen&ctlResult != 0:
		h.Control = ControlResult
	}
	if h.Control == ControlError {
		if c.seen&ctlCode != 0 {
			h.ErrCode = c.code
			h.Has |= HasErrCode
		}
		if c.seen&ctlMsg != 0 {
			h.ErrMsg = c.msg
			h.Has |= HasErrMsg
		}
	}
}

func scanError(op string, err error) error {
	return fmt.Errorf("%s: %w", op, err)
}

// ScanFrame reads the routing and sequence fields of a combined-stream
// frame {"stream":"...","data":{...}} without decoding levels and without
// allocating. Keys may come in any order and duplicate keys take the last
// value. The whole frame is validated as JSON; the level arrays are only
// stepped over.
//
// On success h.Stream and h.Data are subslices of frame (Data is the exact
// bytes of the data value) and h.Seq holds the data's top-level scalars.
// A data value may also be an array (all-market "!...@arr" streams); then
// h.Seq is empty.
//
// Control frames are classified, not reported as errors: a subscribe reply
// sets h.Control to ControlResult, an error reply to ControlError, and the
// serverShutdown event, bare, wrapped in "event" or as combined data, to
// ControlShutdown.
//
// Types are strict where routing depends on them: "stream" must be a
// string, "data" an object or array, and in the data "e" and "s" strings
// and "E", "T", "U", "u", "pu" and "lastUpdateId" integers in int64 range
// (no fraction or exponent). Control keys ("result", "id", "error", "code",
// "msg", "event") are read leniently. Invalid JSON, a strict field of the
// wrong type, nesting deeper than 1024, and an object that is neither a
// combined frame nor a control reply return an error wrapping ErrMalformed.
// On error h is zero.
func ScanFrame(frame []byte, h *Header) error {
	*h = Header{}
	s := scanner{buf: frame}
	var c ctl
	var top Seq // bare top-level e/E, for a bare serverShutdown
	s.ws()
	more, err := s.open()
	for more && err == nil {
		var k key
		if k, err = s.objectKey(); err != nil {
			break
		}
		switch k {
		case keyStream:
			err = s.strField(&h.Stream, "stream")
			h.Has |= HasStream
		case keyData:
			// Last one wins: forget the fields of an earlier data value
			// but keep the header's own bits.
			h.Seq = Seq{Has: h.Has & HasStream}
			start := s.pos
			switch {
			case s.pos < len(s.buf) && s.buf[s.pos] == '{':
				err = s.payload(&h.Seq, nil, nil)
			case s.pos < len(s.buf) && s.buf[s.pos] == '[':
				err = s.skipContainer()
			default:
				err = s.fail("data: want object or array")
			}
			h.Data = frame[start:s.pos:s.pos]
			h.Has |= HasData
		case keyE:
			var ok bool
			if ok, err = s.optString(&top.EventType); !ok {
				top.EventType = nil
			}
		case keyEventTime:
			var ok bool
			ok, err = s.optInt(&top.EventTime)
			top.Has = top.Has&^HasEventTime | pickField(ok, HasEventTime)
		default:
			err = s.control(k, &c)
		}
		if err == nil {
			more, err = s.next()
		}
	}
	if err == nil {
		err = s.end()
	}
	if err != nil {
		*h = Header{}
		return scanError("scan frame", err)
	}

	if h.Has&(HasStream|HasData) == HasStream|HasData {
		if string(h.EventType) == shutdownEvent {
			h.Control = ControlShutdown
		}
		return nil
	}
	// Not market data: it must be a control frame.
	ds := h.Has & (HasStream | HasData)
	*h = Header{}
	if string(top.EventType) == shutdownEvent {
		h.Seq = top
		h.Has = top.Has | HasEventType
	}
	classify(h, &c)
	if h.Control == ControlNone {
		switch ds {
		case HasStream:
			return scanError("scan frame", s.failAt("combined frame without \"data\"", 0))
		case HasData:
			return scanError("scan frame", s.failAt("combined frame without \"stream\"", 0))
		}
		return scanError("scan frame", s.failAt("neither a combined-stream frame nor a control reply", 0))
	}
	h.Data = trimSpace(frame)
	return nil
}

// ScanData is ScanFrame for a bare data object: a raw /ws/<stream> frame or
// a REST depth body such as {"lastUpdateId":..,"E":..,"T":..,"bids":..,"asks":..}.
// h.Data is the object itself. Control replies are classified as in
// ScanFrame; an object with neither market-data nor control keys is
// returned with ControlNone and an empty Has, so check the fields you need
// (Seq.Check does).
func ScanData(data []byte, h *Header) error {
	*h = Header{}
	s := scanner{buf: data}
	var c ctl
	s.ws()
	start := s.pos
	err := s.payload(&h.Seq, nil, &c)
	end := s.pos
	if err == nil {
		err = s.end()
	}
	if err != nil {
		*h = Header{}
		return scanError("scan data", err)
	}
	h.Data = data[start:end:end]
	h.Has |= HasData
	classify(h, &c)
	return nil
}

func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace[b[i]] {
		i++
	}
	for j > i && isSpace[b[j-1]] {
		j--
	}
	return b[i:j:j]
}
