package binance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// This file holds the JSON lexer shared by the scanner and the decoder. It
// validates everything it reads, so a frame that scans without error is
// valid JSON (RFC 8259 grammar; like encoding/json, bytes >= 0x80 inside
// strings are not checked for UTF-8 validity), but it converts only the few
// integers and strings the caller asks for.

// ErrMalformed reports input that is not valid JSON, or a known field with
// the wrong JSON type, or an integer field that is not an int64. The
// wrapping error gives a short reason and the byte offset.
var ErrMalformed = errors.New("malformed frame")

// ErrImpossibleValue reports well-formed JSON that carries a value no real
// order book can have: a price or quantity that is not a plain non-negative
// decimal string, NaN or infinite, a zero price, a level that is not a
// ["price","qty"] pair, or a first update id above the final one.
var ErrImpossibleValue = errors.New("impossible value")

// maxDepth bounds the nesting of a frame, counting every object and array
// from the top level. Binance frames nest four deep; encoding/json allows
// 10000.
const maxDepth = 1024

// inputError is the error type of the lexer: a sentinel (ErrMalformed or
// ErrImpossibleValue), a constant reason and the byte offset.
type inputError struct {
	kind   error
	reason string
	off    int
}

func (e *inputError) Error() string {
	return fmt.Sprintf("%v: %s at offset %d", e.kind, e.reason, e.off)
}

func (e *inputError) Unwrap() error { return e.kind }

// scanner is a cursor over one JSON text.
type scanner struct {
	buf   []byte
	pos   int
	depth int // objects entered with open and not yet closed
}

func (s *scanner) fail(reason string) error {
	return &inputError{kind: ErrMalformed, reason: reason, off: s.pos}
}

func (s *scanner) failAt(reason string, off int) error {
	return &inputError{kind: ErrMalformed, reason: reason, off: off}
}

func (s *scanner) impossible(reason string, off int) error {
	return &inputError{kind: ErrImpossibleValue, reason: reason, off: off}
}

// isSpace is JSON insignificant whitespace.
var isSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// strPlain marks bytes that can appear unescaped inside a string and need no
// further look: everything except '"', '\\' and control characters.
var strPlain = func() (t [256]bool) {
	for i := 0x20; i < 256; i++ {
		t[i] = i != '"' && i != '\\'
	}
	return t
}()

var hexVal = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = int8(c - 'a' + 10)
		t[c-'a'+'A'] = int8(c - 'a' + 10)
	}
	return t
}()

// SWAR constants: a byte of ones, and the high bit of every byte.
const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// notPlain8 flags, in the high bit of each byte, the bytes of the
// little-endian word v that are not plain (strPlain): '"', '\\' or below
// 0x20. Each of the three tests can flag a byte wrongly only after a byte
// it flags rightly (a borrow travels upwards), so the lowest flag is
// exact, which is all plainEnd uses.
func notPlain8(v uint64) uint64 {
	q := v ^ (swarLo * '"')
	b := v ^ (swarLo * '\\')
	return ((q-swarLo)&^q | (b-swarLo)&^b | (v-swarLo*0x20)&^v) & swarHi
}

// plainEnd returns the index of the first byte at or after i that is not
// plain, or len(buf): eight bytes at a time, then byte by byte.
func plainEnd(buf []byte, i int) int {
	for i+8 <= len(buf) {
		if m := notPlain8(binary.LittleEndian.Uint64(buf[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for i < len(buf) && strPlain[buf[i]] {
		i++
	}
	return i
}

func (s *scanner) ws() {
	for s.pos < len(s.buf) && isSpace[s.buf[s.pos]] {
		s.pos++
	}
}

// expect consumes byte c after optional whitespace.
func (s *scanner) expect(c byte, reason string) error {
	s.ws()
	if s.pos >= len(s.buf) {
		return s.fail("unexpected end of input")
	}
	if s.buf[s.pos] != c {
		return s.fail(reason)
	}
	s.pos++
	return nil
}

// scanString validates the string whose opening quote is at buf[i]. It
// returns the index after the closing quote, whether the string has escapes,
// and a reason when it is invalid (then next is the offending offset).
func scanString(buf []byte, i int) (next int, esc bool, reason string) {
	i++
	for {
		i = plainEnd(buf, i)
		if i >= len(buf) {
			return i, esc, "unterminated string"
		}
		switch buf[i] {
		case '"':
			return i + 1, esc, ""
		case '\\':
			esc = true
			if i+1 >= len(buf) {
				return i + 1, esc, "unterminated string"
			}
			switch buf[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(buf) {
					return len(buf), esc, "unterminated string"
				}
				if hexVal[buf[i+2]]|hexVal[buf[i+3]]|hexVal[buf[i+4]]|hexVal[buf[i+5]] < 0 {
					return i, esc, "bad \\u escape in string"
				}
				i += 6
			default:
				return i, esc, "bad escape in string"
			}
		default:
			return i, esc, "control character in string"
		}
	}
}

// str reads the string at s.pos and returns its raw contents (escapes left
// as they are) as buf[start:end].
func (s *scanner) str() (start, end int, esc bool, err error) {
	if s.pos >= len(s.buf) || s.buf[s.pos] != '"' {
		return 0, 0, false, s.fail("want string")
	}
	start = s.pos + 1
	next, esc, reason := scanString(s.buf, s.pos)
	if reason != "" {
		return 0, 0, false, s.failAt(reason, next)
	}
	s.pos = next
	return start, next - 1, esc, nil
}

// scanNumber validates the JSON number starting at buf[i] and returns the
// index after it, or a reason.
func scanNumber(buf []byte, i int) (int, string) {
	if i < len(buf) && buf[i] == '-' {
		i++
	}
	switch {
	case i >= len(buf):
		return i, "unexpected end of input in number"
	case buf[i] == '0':
		i++
	case buf[i] >= '1' && buf[i] <= '9':
		i++
		for i < len(buf) && buf[i] >= '0' && buf[i] <= '9' {
			i++
		}
	default:
		return i, "bad number"
	}
	if i < len(buf) && buf[i] == '.' {
		i++
		if i >= len(buf) || buf[i] < '0' || buf[i] > '9' {
			return i, "bad number fraction"
		}
		for i < len(buf) && buf[i] >= '0' && buf[i] <= '9' {
			i++
		}
	}
	if i < len(buf) && (buf[i] == 'e' || buf[i] == 'E') {
		i++
		if i < len(buf) && (buf[i] == '+' || buf[i] == '-') {
			i++
		}
		if i >= len(buf) || buf[i] < '0' || buf[i] > '9' {
			return i, "bad number exponent"
		}
		for i < len(buf) && buf[i] >= '0' && buf[i] <= '9' {
			i++
		}
	}
	return i, ""
}

// int reads a JSON number at s.pos that must be an integer in int64 range.
// On failure it returns a reason and leaves s.pos at the number.
func (s *scanner) int() (int64, string) {
	buf, i := s.buf, s.pos
	neg := false
	if i < len(buf) && buf[i] == '-' {
		neg = true
		i++
	}
	if i >= len(buf) || buf[i] < '0' || buf[i] > '9' {
		return 0, "want integer"
	}
	var v uint64
	if buf[i] == '0' {
		i++
	} else {
		for i < len(buf) && buf[i] >= '0' && buf[i] <= '9' {
			d := uint64(buf[i] - '0')
			if v > (1<<63-d)/10 { // v*10+d would exceed 1<<63
				return 0, "integer overflows int64"
			}
			v = v*10 + d
			i++
		}
	}
	if i < len(buf) && (buf[i] == '.' || buf[i] == 'e' || buf[i] == 'E') {
		return 0, "want integer, got fraction or exponent"
	}
	if !neg && v > 1<<63-1 {
		return 0, "integer overflows int64"
	}
	s.pos = i
	if neg {
		return -int64(v), "" // -(1<<63) wraps to itself, which is correct
	}
	return int64(v), ""
}

func (s *scanner) literal(lit string) error {
	if len(s.buf)-s.pos < len(lit) || string(s.buf[s.pos:s.pos+len(lit)]) != lit {
		return s.fail("bad literal")
	}
	s.pos += len(lit)
	return nil
}

// skip validates and steps over the value at s.pos (after whitespace)
// without converting anything.
func (s *scanner) skip() error {
	s.ws()
	if s.pos >= len(s.buf) {
		return s.fail("unexpected end of input")
	}
	switch c := s.buf[s.pos]; c {
	case '"':
		next, _, reason := scanString(s.buf, s.pos)
		if reason != "" {
			return s.failAt(reason, next)
		}
		s.pos = next
		return nil
	case '{', '[':
		return s.skipContainer()
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		next, reason := scanNumber(s.buf, s.pos)
		if reason != "" {
			return s.failAt(reason, next)
		}
		s.pos = next
		return nil
	}
}

// skipContainer validates and steps over the object or array at s.pos. It
// is iterative, with the container kinds kept as a bit stack, so hostile
// nesting costs neither stack growth nor recursion.
func (s *scanner) skipContainer() error {
	const (
		stValue = iota // a value must follow
		stOpen         // just after '{' or '['
		stAfter        // just after a value
	)
	var objs [maxDepth / 64]uint64 // bit set: the container at that depth is an object
	depth, limit := 0, maxDepth-s.depth
	buf, i := s.buf, s.pos
	st := stValue
	var reason string
	for {
		if st == stAfter && depth == 0 {
			s.pos = i
			return nil
		}
		for i < len(buf) && isSpace[buf[i]] {
			i++
		}
		if i >= len(buf) {
			s.pos = i
			return s.fail("unexpected end of input")
		}
		c := buf[i]
		switch st {
		case stOpen, stAfter:
			obj := objs[(depth-1)>>6]&(1<<((depth-1)&63)) != 0
			if obj && c == '}' || !obj && c == ']' {
				depth--
				i++
				st = stAfter
				continue
			}
			if st == stAfter {
				if c != ',' {
					s.pos = i
					return s.fail("want ',' or closing bracket")
				}
				i++
			}
			if !obj {
				st = stValue
				continue
			}
			// An object member: "key" ':' value.
			for i < len(buf) && isSpace[buf[i]] {
				i++
			}
			if i >= len(buf) || buf[i] != '"' {
				s.pos = i
				return s.fail("want object key")
			}
			if i, _, reason = scanString(buf, i); reason != "" {
				return s.failAt(reason, i)
			}
			for i < len(buf) && isSpace[buf[i]] {
				i++
			}
			if i >= len(buf) || buf[i] != ':' {
				s.pos = i
				return s.fail("want ':' after object key")
			}
			i++
			st = stValue
		case stValue:
			switch c {
			case '"':
				if i, _, reason = scanString(buf, i); reason != "" {
					return s.failAt(reason, i)
				}
			case '{', '[':
				// Fast path for book levels ["price","qty"]: complete
				// array values, no state to push.
				if c == '[' {
					if next := skipLevels(buf, i); next > 0 {
						i = next
						st = stAfter
						continue
					}
				}
				if depth >= limit {
					s.pos = i
					return s.fail("nesting too deep")
				}
				if c == '{' {
					objs[depth>>6] |= 1 << (depth & 63)
				} else {
					objs[depth>>6] &^= 1 << (depth & 63)
				}
				depth++
				i++
				st = stOpen
				continue
			case 't', 'f', 'n':
				s.pos = i
				lit := "null"
				switch c {
				case 't':
					lit = "true"
				case 'f':
					lit = "false"
				}
				if err := s.literal(lit); err != nil {
					return err
				}
				i = s.pos
			default:
				if i, reason = scanNumber(buf, i); reason != "" {
					return s.failAt(reason, i)
				}
			}
			st = stAfter
		}
	}
}

// skipLevel matches the compact level ["<plain>","<plain>"] at buf[i],
// where plain bytes need no escape, and returns the index after it, or 0
// when the input has any other shape (the caller then takes the general
// path). Everything it matches is valid JSON.
func skipLevel(buf []byte, i int) int {
	if i+2 > len(buf) || buf[i+1] != '"' {
		return 0
	}
	i = plainEnd(buf, i+2)
	if i+3 > len(buf) || buf[i] != '"' || buf[i+1] != ',' || buf[i+2] != '"' {
		return 0
	}
	i = plainEnd(buf, i+3)
	if i+2 > len(buf) || buf[i] != '"' || buf[i+1] != ']' {
		return 0
	}
	return i + 2
}

// skipLevels matches the compact level at buf[i] (skipLevel) and the
// levels that follow it, each right after a ',', and returns the index
// after the last one, or 0 when the first does not match. What follows is
// left to the caller: a ',' before something else, a ']', or anything.
func skipLevels(buf []byte, i int) int {
	end := skipLevel(buf, i)
	for end > 0 && end+1 < len(buf) && buf[end] == ',' && buf[end+1] == '[' {
		next := skipLevel(buf, end+1)
		if next == 0 {
			break
		}
		end = next
	}
	return end
}

// end checks that only whitespace follows the top-level value.
func (s *scanner) end() error {
	s.ws()
	if s.pos != len(s.buf) {
		return s.fail("trailing data after JSON value")
	}
	return nil
}

// unescapeKey decodes a short escaped object key into dst. It reports false
// when the key cannot be one of the ASCII keys this package knows (too long,
// or it decodes to a non-ASCII character); the escapes were already
// validated by scanString.
func unescapeKey(dst *[16]byte, raw []byte) ([]byte, bool) {
	n := 0
	for i := 0; i < len(raw); {
		if n == len(dst) {
			return nil, false
		}
		c := raw[i]
		if c != '\\' {
			dst[n] = c
			n++
			i++
			continue
		}
		switch raw[i+1] {
		case 'u':
			v := int(hexVal[raw[i+2]])<<12 | int(hexVal[raw[i+3]])<<8 | int(hexVal[raw[i+4]])<<4 | int(hexVal[raw[i+5]])
			if v >= 0x80 {
				return nil, false
			}
			dst[n] = byte(v)
			i += 6
		case 'b':
			dst[n] = '\b'
			i += 2
		case 'f':
			dst[n] = '\f'
			i += 2
		case 'n':
			dst[n] = '\n'
			i += 2
		case 'r':
			dst[n] = '\r'
			i += 2
		case 't':
			dst[n] = '\t'
			i += 2
		default: // '"', '\\', '/'
			dst[n] = raw[i+1]
			i += 2
		}
		n++
	}
	return dst[:n], true
}
