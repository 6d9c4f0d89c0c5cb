package binance

import (
	"bytes"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/depthcap/depthcap/pkg/md"
)

// ErrNotDepth reports a stream depthcap does not capture: aggTrade, trade,
// bookTicker, kline, markPrice, ticker, all-market "!" streams and so on.
// Collectors count and skip such frames; they are not malformed.
var ErrNotDepth = errors.New("not a depth stream")

// ErrBadStream reports a stream name that looks like a depth stream but is
// not a valid one: an empty or upper-case symbol, levels other than 5, 10 or
// 20, or a bad speed suffix.
var ErrBadStream = errors.New("bad stream name")

// snapshotSuffix is the stream name the recordings give REST snapshots:
// <symbol>@depthSnapshot (Tardis's naming). Binance itself has no such
// stream.
const snapshotSuffix = "Snapshot"

// StreamInfo describes a depth stream name.
type StreamInfo struct {
	// Symbol is the lower-case symbol, a subslice of the parsed name.
	Symbol []byte
	// Kind is md.Diff, md.Partial or md.Snapshot.
	Kind md.Kind
	// Levels is 5, 10 or 20 for a partial stream, 0 otherwise.
	Levels int
	// Speed is the update-speed suffix without "@" ("100ms", "0ms"), or
	// empty for the default speed. A subslice of the parsed name.
	Speed []byte
}

// ParseStreamName parses a depth stream name without allocating:
//
//	<symbol>@depth[@<n>ms]            md.Diff
//	<symbol>@depth<5|10|20>[@<n>ms]   md.Partial
//	<symbol>@depthSnapshot            md.Snapshot (recordings' REST wrapper)
//
// Other streams return ErrNotDepth; malformed depth names return ErrBadStream.
// The symbol must be lower case: ASCII letters, digits and '_', or non-ASCII
// letters and digits that have no lower-case form of their own (Binance
// lists a few symbols such as "币安人生usdt").
func ParseStreamName(name []byte) (StreamInfo, error) {
	at := bytes.IndexByte(name, '@')
	if at < 0 {
		return StreamInfo{}, ErrNotDepth
	}
	sym, rest := name[:at], name[at+1:]
	const depth = "depth"
	if len(rest) < len(depth) || string(rest[:len(depth)]) != depth {
		return StreamInfo{}, ErrNotDepth
	}
	rest = rest[len(depth):]

	info := StreamInfo{Symbol: sym}
	switch {
	case len(rest) == 0 || rest[0] == '@':
		info.Kind = md.Diff
	case bytes.HasPrefix(rest, []byte(snapshotSuffix)):
		if len(rest) != len(snapshotSuffix) {
			return StreamInfo{}, fmt.Errorf("%w: %q after depthSnapshot", ErrBadStream, rest[len(snapshotSuffix):])
		}
		info.Kind = md.Snapshot
		rest = rest[:0]
	case rest[0] >= '0' && rest[0] <= '9':
		n := 0
		for n < len(rest) && n < 3 && rest[n] >= '0' && rest[n] <= '9' {
			info.Levels = info.Levels*10 + int(rest[n]-'0')
			n++
		}
		if info.Levels != 5 && info.Levels != 10 && info.Levels != 20 || rest[0] == '0' {
			return StreamInfo{}, fmt.Errorf("%w: partial levels %q (allowed: 5, 10, 20)", ErrBadStream, rest[:n])
		}
		info.Kind = md.Partial
		rest = rest[n:]
	default:
		// depthUpdate-like names we do not know, e.g. "@depthX".
		return StreamInfo{}, ErrNotDepth
	}

	if len(rest) > 0 {
		if rest[0] != '@' || !validSpeed(rest[1:]) {
			return StreamInfo{}, fmt.Errorf("%w: speed suffix %q (want @<n>ms)", ErrBadStream, rest)
		}
		info.Speed = rest[1:]
	}
	if !validStreamSymbol(sym) {
		return StreamInfo{}, fmt.Errorf("%w: symbol %q (want lower case)", ErrBadStream, sym)
	}
	return info, nil
}

// validSpeed reports whether s is <1 to 4 digits>ms without a leading zero
// (except "0ms").
func validSpeed(s []byte) bool {
	if len(s) < 3 || len(s) > 6 || string(s[len(s)-2:]) != "ms" {
		return false
	}
	d := s[:len(s)-2]
	if d[0] == '0' && len(d) > 1 {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validStreamSymbol reports whether sym is a lower-case stream symbol whose
// upper-case form passes md.ValidSymbol.
func validStreamSymbol(sym []byte) bool {
	if len(sym) == 0 || len(sym) > 64 {
		return false
	}
	ascii := true
	for _, c := range sym {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
		case c >= utf8.RuneSelf:
			ascii = false
		default:
			return false
		}
	}
	if ascii {
		return true
	}
	for len(sym) > 0 {
		r, n := utf8.DecodeRune(sym)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		if r >= utf8.RuneSelf && (!unicode.IsLetter(r) && !unicode.IsDigit(r) || unicode.ToLower(r) != r) {
			return false
		}
		sym = sym[n:]
	}
	return true
}

// AppendUpperSymbol appends the upper-case form of a stream symbol to dst,
// for subjects and dedup ids. Only ASCII letters change.
func AppendUpperSymbol(dst, lower []byte) []byte {
	for _, c := range lower {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
