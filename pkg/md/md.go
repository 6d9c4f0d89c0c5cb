// Package md holds the market-data vocabulary every depthcap service shares:
// markets, kinds, NATS subjects, dedup ids and the on-disk layout names.
//
// Subjects follow DESIGN section 2:
//
//	md.binance.<market>.<kind>.<SYMBOL>     raw depth events and gap records
//	ctl.snapshot.<market>.<SYMBOL>          on-demand REST snapshot requests
//	dlq.<service>.<market>.<kind>           quarantined input
package md

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Exchange is the only exchange depthcap records today.
const Exchange = "binance"

// Market is a Binance market.
type Market uint8

// Markets. The numeric values match depthcap.v1.Market in the envelope.
const (
	MarketUnknown Market = 0
	Spot          Market = 1
	Futures       Market = 2 // USD-M
)

// Markets lists the known markets in a stable order.
var Markets = []Market{Spot, Futures}

func (m Market) String() string {
	switch m {
	case Spot:
		return "spot"
	case Futures:
		return "futures"
	default:
		return "unknown"
	}
}

// Valid reports whether m is a known market.
func (m Market) Valid() bool { return m == Spot || m == Futures }

// ErrUnknownMarket is returned by ParseMarket.
var ErrUnknownMarket = errors.New("unknown market")

// ParseMarket parses "spot" or "futures".
func ParseMarket(s string) (Market, error) {
	switch s {
	case "spot":
		return Spot, nil
	case "futures":
		return Futures, nil
	}
	return MarketUnknown, fmt.Errorf("%w %q (allowed: spot, futures)", ErrUnknownMarket, s)
}

// Kind is the kind of a market-data record.
type Kind uint8

// Kinds. The numeric values match depthcap.v1.Kind in the envelope.
const (
	KindUnknown Kind = 0
	Diff        Kind = 1 // <s>@depth@100ms
	Partial     Kind = 2 // <s>@depth20@100ms
	Snapshot    Kind = 3 // REST /api/v3/depth, /fapi/v1/depth
	Gap         Kind = 4 // a gap record published by a collector
)

// DataKinds are the kinds that become Parquet files.
var DataKinds = []Kind{Diff, Partial, Snapshot}

func (k Kind) String() string {
	switch k {
	case Diff:
		return "diff"
	case Partial:
		return "partial"
	case Snapshot:
		return "snapshot"
	case Gap:
		return "gap"
	default:
		return "unknown"
	}
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k >= Diff && k <= Gap }

// Dir is the directory name of the kind in DATA_DIR and in object keys,
// the names users of earlier collectors know.
func (k Kind) Dir() string {
	switch k {
	case Diff:
		return "diff_orderbooks"
	case Partial:
		return "partial_orderbooks"
	case Snapshot:
		return "orderbooks"
	case Gap:
		return "gaps"
	default:
		return "unknown"
	}
}

// ErrUnknownKind is returned by ParseKind.
var ErrUnknownKind = errors.New("unknown kind")

// ParseKind parses a kind name as used in subjects.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "diff":
		return Diff, nil
	case "partial":
		return Partial, nil
	case "snapshot":
		return Snapshot, nil
	case "gap":
		return Gap, nil
	}
	return KindUnknown, fmt.Errorf("%w %q (allowed: diff, partial, snapshot, gap)", ErrUnknownKind, s)
}

// KindFromDir maps a kind directory name back to its kind.
func KindFromDir(dir string) (Kind, bool) {
	for _, k := range []Kind{Diff, Partial, Snapshot, Gap} {
		if k.Dir() == dir {
			return k, true
		}
	}
	return KindUnknown, false
}

// Stream names.
const (
	StreamMarketData = "MARKETDATA"
	StreamFiles      = "FILES"
	StreamDLQ        = "DLQ"
)

// Subject roots.
const (
	SubjectRoot      = "md"
	MarketDataFilter = "md.>"
	FilesFilter      = "files.>"
	DLQFilter        = "dlq.>"
	ControlRoot      = "ctl.snapshot"
)

// Subject returns md.binance.<market>.<kind>.<SYMBOL>.
func Subject(m Market, k Kind, symbol string) string {
	return "md." + Exchange + "." + m.String() + "." + k.String() + "." + symbol
}

// SubjectFilter returns a filter for one market and kind over all symbols,
// or over all kinds when k is KindUnknown.
func SubjectFilter(m Market, k Kind) string {
	if k == KindUnknown {
		return "md." + Exchange + "." + m.String() + ".*.*"
	}
	return "md." + Exchange + "." + m.String() + "." + k.String() + ".*"
}

// ErrBadSubject is returned when a subject does not follow the md layout.
var ErrBadSubject = errors.New("bad subject")

// Partitions is the number of symbol partitions of the MARKETDATA stream.
// The stream's subject transform appends a partition token, a hash of the
// symbol, to every stored subject: md.binance.<market>.<kind>.<SYMBOL>.<p>.
// Writers shard by partition through consumer filter subjects, so all
// kinds of one symbol land in the same shard. Fixed forever: changing it
// would move symbols between shards.
const Partitions = 64

// PartitionTransform is the MARKETDATA subject transform (source and
// destination) that appends the partition token.
var PartitionTransform = [2]string{
	"md.*.*.*.*",
	"md.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}.{{wildcard(4)}}.{{partition(" + strconv.Itoa(Partitions) + ",4)}}",
}

// PartitionFilter is the consumer filter subject of one partition.
func PartitionFilter(p int) string { return "md.*.*.*.*." + strconv.Itoa(p) }

// SubjectPartition returns the partition token of a stored MARKETDATA
// subject (md.binance.<market>.<kind>.<SYMBOL>.<p>), the last token; false
// when it is not one (a subject the stream did not transform). It does not
// check the rest of the subject (ParseSubject does) and allocates nothing.
func SubjectPartition(subject string) (int, bool) {
	k := strings.LastIndexByte(subject, '.')
	if k < 0 {
		return 0, false
	}
	p, err := strconv.Atoi(subject[k+1:])
	if err != nil || p < 0 || p >= Partitions {
		return 0, false
	}
	return p, true
}

// ParseSubject splits md.binance.<market>.<kind>.<SYMBOL>, as published,
// or md.binance.<market>.<kind>.<SYMBOL>.<partition>, as stored.
func ParseSubject(subject string) (Market, Kind, string, error) {
	rest, ok := strings.CutPrefix(subject, "md."+Exchange+".")
	if !ok {
		return 0, 0, "", fmt.Errorf("%w %q: want md.%s.<market>.<kind>.<SYMBOL>", ErrBadSubject, subject, Exchange)
	}
	ms, rest, ok1 := strings.Cut(rest, ".")
	ks, sym, ok2 := strings.Cut(rest, ".")
	if s, p, stored := strings.Cut(sym, "."); stored {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n >= Partitions {
			return 0, 0, "", fmt.Errorf("%w %q: bad partition token", ErrBadSubject, subject)
		}
		sym = s
	}
	if !ok1 || !ok2 || sym == "" || strings.Contains(sym, ".") {
		return 0, 0, "", fmt.Errorf("%w %q: want md.%s.<market>.<kind>.<SYMBOL>", ErrBadSubject, subject, Exchange)
	}
	m, err := ParseMarket(ms)
	if err != nil {
		return 0, 0, "", fmt.Errorf("%w %q: %w", ErrBadSubject, subject, err)
	}
	k, err := ParseKind(ks)
	if err != nil {
		return 0, 0, "", fmt.Errorf("%w %q: %w", ErrBadSubject, subject, err)
	}
	return m, k, sym, nil
}

// ControlSubject returns ctl.snapshot.<market>.<SYMBOL>.
func ControlSubject(m Market, symbol string) string {
	return ControlRoot + "." + m.String() + "." + symbol
}

// ControlFilter returns ctl.snapshot.<market>.* .
func ControlFilter(m Market) string { return ControlRoot + "." + m.String() + ".*" }

// ParseControlSubject splits ctl.snapshot.<market>.<SYMBOL>.
func ParseControlSubject(subject string) (Market, string, error) {
	rest, ok := strings.CutPrefix(subject, ControlRoot+".")
	if !ok {
		return 0, "", fmt.Errorf("%w %q: want %s.<market>.<SYMBOL>", ErrBadSubject, subject, ControlRoot)
	}
	ms, sym, ok := strings.Cut(rest, ".")
	if !ok || sym == "" || strings.Contains(sym, ".") {
		return 0, "", fmt.Errorf("%w %q: want %s.<market>.<SYMBOL>", ErrBadSubject, subject, ControlRoot)
	}
	m, err := ParseMarket(ms)
	if err != nil {
		return 0, "", fmt.Errorf("%w %q: %w", ErrBadSubject, subject, err)
	}
	return m, sym, nil
}

// DLQSubject returns dlq.<service>.<market>.<kind>. Market and kind may be
// unknown when the input could not be classified.
func DLQSubject(service string, m Market, k Kind) string {
	return "dlq." + service + "." + m.String() + "." + k.String()
}

// FilesSubject returns files.<market>.<kind>, the subject of "file sealed"
// messages in the FILES work queue.
func FilesSubject(m Market, k Kind) string {
	return "files." + m.String() + "." + k.String()
}

// AppendMsgID appends the dedup id <market>.<kind>.<SYMBOL>.<id> to dst.
// Two collectors that received the same exchange event build the same id.
func AppendMsgID(dst []byte, m Market, k Kind, symbol string, id int64) []byte {
	dst = append(dst, m.String()...)
	dst = append(dst, '.')
	dst = append(dst, k.String()...)
	dst = append(dst, '.')
	dst = append(dst, symbol...)
	dst = append(dst, '.')
	return strconv.AppendInt(dst, id, 10)
}

// MsgID returns the dedup id as a string.
func MsgID(m Market, k Kind, symbol string, id int64) string {
	return string(AppendMsgID(nil, m, k, symbol, id))
}

// ValidSymbol reports whether s can be a symbol in a subject, a path and an
// object key: 1 to 64 bytes of upper-case ASCII letters, digits, '_' or
// non-ASCII letters (Binance lists a few symbols such as "币安人生USDT").
// Lower-case ASCII, '.', '*', '>', '/', spaces and control characters are
// rejected because they would break a subject token or a file name.
func ValidSymbol(s string) bool {
	if len(s) == 0 || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
		case r >= utf8.RuneSelf && unicode.IsLetter(r) || unicode.IsDigit(r) && r >= utf8.RuneSelf:
		default:
			return false
		}
	}
	return true
}

// SnapshotRequest is the JSON body of an on-demand snapshot request on
// ctl.snapshot.<market>.<SYMBOL>. Every field is optional: an empty body
// (or one without min_update_id) asks for a recent snapshot, with no
// condition on its update id.
type SnapshotRequest struct {
	Market string `json:"market,omitempty"` // when present, the subject's market
	Symbol string `json:"symbol,omitempty"` // when present, the subject's symbol
	Source string `json:"source,omitempty"` // the requester (SOURCE_ID), for logs
	Reason string `json:"reason,omitempty"` // why, e.g. "gap", for logs
	// MinUpdateID is the lowest lastUpdateId a snapshot must have to be of
	// use to the requester; 0 means any. After a diff gap the ingest sends
	// the lowest lastUpdateId the first diff after the gap bridges
	// (binance.BridgeMin: spot U-1, USD-M U): an older snapshot cannot
	// restore the book after the gap.
	MinUpdateID int64 `json:"min_update_id,omitempty"`
}

// ErrBadPayload reports a control request body that is not a valid
// SnapshotRequest.
var ErrBadPayload = errors.New("bad request payload")

// ParseSnapshotRequest decodes the body of a request on the control
// subject of market m and symbol. An empty body (or only white space, or
// null) is the zero request. Errors wrap ErrBadPayload: a body that is not
// one JSON object, a field of the wrong type, a negative or fractional
// min_update_id, a market or symbol other than the subject's. Unknown
// fields are ignored.
func ParseSnapshotRequest(body []byte, m Market, symbol string) (SnapshotRequest, error) {
	var r SnapshotRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return SnapshotRequest{}, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	switch {
	case r.MinUpdateID < 0:
		return SnapshotRequest{}, fmt.Errorf("%w: min_update_id %d < 0", ErrBadPayload, r.MinUpdateID)
	case r.Market != "" && r.Market != m.String():
		return SnapshotRequest{}, fmt.Errorf("%w: market %q on the subject of %s", ErrBadPayload, r.Market, m)
	case r.Symbol != "" && r.Symbol != symbol:
		return SnapshotRequest{}, fmt.Errorf("%w: symbol %q on the subject of %s", ErrBadPayload, r.Symbol, symbol)
	}
	return r, nil
}
