// Package binance speaks the public Binance market-data protocol that
// depthcap records: spot and USD-M futures diff depth streams, partial depth
// streams and REST depth snapshots.
//
// The package has three layers:
//
//   - Market profiles (Profile, DepthWeight) and stream-name builders
//     (DiffStream, PartialStream, CombinedStreamURL, SubscribeMessage) hold
//     the endpoint facts of DESIGN section 4.
//   - The fast path (ScanFrame, ScanData, ParseStreamName) reads only the
//     routing and sequence fields of a frame. It never decodes book levels and
//     never allocates, so ingest services can publish the untouched bytes.
//   - The full decoder (DecodeDepth) turns a depth payload into float64
//     levels for the writer, also without allocating in steady state.
//
// The sequence rules of DESIGN section 4 (SpotBridges, FuturesBridges,
// Follows, PrevLink, Seq.Check, Seq.DedupID) live in sequence.go.
//
// Errors: ErrMalformed for input that is not valid JSON or has a known
// field of the wrong type, ErrImpossibleValue for well-formed input no real
// book can carry, ErrMissingField (also ErrMalformed) for a payload without
// a field its kind needs, ErrNotDepth and ErrBadStream for stream names,
// ErrBadLimit for REST depth limits. Services quarantine frames that fail
// with ErrMalformed or ErrImpossibleValue (DESIGN invariant 6).
package binance
