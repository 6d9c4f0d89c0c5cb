// Package ingest is the capture engine of spot-ws and futures-ws: it
// receives Binance depth frames over websockets and publishes each one,
// untouched, in an envelope with its dedup id to JetStream, and records
// every loss it cannot prevent as a gap record.
//
// # Shape
//
// An Engine captures one market. Its symbols are split into groups of
// INGEST_SYMBOLS_PER_CONN; each group keeps one subscribed combined-stream
// connection (two while it rotates). Per (symbol, kind) state is shared by
// every connection that carries the stream, so the sequence check spans
// reconnects and rotations.
//
//	Engine ─┬─ group 1 ── wsConn (primary) [── wsConn (rotation)]
//	        ├─ group 2 ── ...
//	        ├─ stream state: tracker per (symbol, kind), behind a mutex
//	        ├─ bus.Publisher (bounded, async, retries until acked)
//	        └─ workers: dead letters, ctl.snapshot requests, gap retries
//
// # Frame path
//
// The read loop reads a message into the connection's reused buffer,
// stamps the receive time, builds the envelope (frames.Builder), checks
// the stream's sequence (tracker), marshals envelope and dedup id into a
// recycled bus.Msg and enqueues it. Enqueue never blocks: past the
// buffer bound the frame is dropped and accounted in a buffer_overflow
// record. Nothing on this path allocates in steady state.
//
// # Gaps
//
// Diffs are chained (spot U == previous u + 1, USD-M pu == previous u). A
// break yields a record with AfterID = the last id before and
// ResumePrevID = the link of the first frame after (the missing events
// are AfterID < u <= ResumePrevID), reason disconnect when the carrying
// connection failed in between, else sequence. Partials have no chain:
// they get disconnect records (AfterID = last id before, ResumePrevID =
// first id after − 1) and buffer_overflow records. Records wait in a
// bounded per-stream slot until the publisher takes them.
//
// See services/spot-ws/README.md for settings, behaviour and metrics.
package ingest
