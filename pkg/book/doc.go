// Package book is the price-level order book that depthcap uses to verify
// recorded data and to rebuild books, and the Syncer that keeps a book in
// step with a Binance diff depth stream and REST snapshots by the rules of
// DESIGN section 4.
//
// It is independent of the wire format: callers decode frames (pkg/binance)
// and pass levels as []Level (AppendLevels converts any level type of the
// same shape) and events as Update.
//
//   - Book: Apply, ApplyLevels, Load, Reset, BestBid, BestAsk, Crossed, TopN,
//     Levels, Bids/Asks iterators, Qty, EqualTop and Aggregate. TopN, Levels
//     and Aggregate write into caller buffers and do not allocate when the
//     buffers are large enough; Apply does not allocate in steady state.
//   - Syncer: the spot and USD-M sync rules, gap and crossed-book reports
//     (*GapError, *CrossedError), bounded retention of recent events so that
//     a snapshot can be loaded at any moment, and CheckPartial for partial
//     depth frames.
//
// Day-level verification of recorded files (snapshots compared at their own
// id, partials, the depth rule) lives in the depthcap tool's quality package,
// built on Book.
//
// # Data structure
//
// Each side is a two-level B+-tree (side.go): sorted blocks of at most 128
// levels plus a slice of the blocks' first keys. A bid is stored under its
// price and an ask under its negated price, so both sides are the same code
// with the best level last. An update binary-searches the first keys, then
// the block, and moves at most one block's levels; blocks split when full and
// merge when a quarter full.
//
// Where updates land decides the choice. On the recordings in shared
// testdata, updates are not concentrated at the top: on USD-M ETHUSDT
// (428k level updates, book of 1,000-3,300 levels) the number of levels
// better than the updated one has median 146, p90 1,649 and p99 2,989; on
// spot ETHUSDT median 79, p90 415. About half of spot updates and a quarter
// of USD-M ones insert or delete a level. A sorted slice pays a copy of every
// level better than the one inserted or deleted (with the best level at the
// end) or of every worse one (best first); the B+-tree pays at most one block.
//
// BenchmarkStructures measures the candidates (structures_test.go) on books
// of 5,000 levels per side, with two update mixes: "top-heavy" (80% of
// updates within the best ~28 levels) and "recorded" (the USD-M ETHUSDT rank
// distribution above). ns per single-level update, and ns for the best 20
// levels of both sides; minimum of 5 runs of go1.26 on a 2-vCPU Xeon VM that
// other jobs shared, so the figures are noisy and only their ratios count:
//
//	structure                          top-heavy  recorded  top-20
//	two-level B+-tree, 128 (chosen)        63        81      41-59
//	two-level blocks, slices of 128        70        92       46
//	skip list (p=1/4, free list)           88       121       32
//	sorted slices, best at end             93       145       41
//	  same, binary search only             90       166       42
//	  same, one []Level slice (AoS)       115       185       47
//	sorted slices, best first             983       976       40
//	map, sorted on read                    39        45   650,000
//
// The map is fastest to update but sorts the whole side for every read, so
// it cannot serve TopN, Crossed or partial checks per event. Among ordered
// structures the B+-tree is fastest on both mixes, and its cost does not grow
// with the depth of an update, where the slices' cost does. Blocks of 64 and
// 256 levels measured no faster than 128. Memory: a block is 2 KiB (128
// prices and quantities), blocks are kept for reuse, so a side holds at most
// the blocks its largest size needed; 5,000 levels take 40-80 blocks (80-160
// KiB per side).
//
// # Benchmarks
//
// With -benchmem, same machine and caveat (go test -bench . -benchmem):
//
//	BenchmarkApply/top-heavy          74 ns/op  13.5M updates/s  0 allocs
//	BenchmarkApply/recorded           86 ns/op  11.6M updates/s  0 allocs
//	BenchmarkSyncerApply/top-heavy   2.3 µs per 40-level event   0 allocs
//	BenchmarkSyncerApply/recorded    3.0 µs per 40-level event   0 allocs
//	BenchmarkTopN20                   41 ns/op                   0 allocs
//	BenchmarkAggregate/1/top20       4.8 µs/op                   0 allocs
//	BenchmarkAggregate/10/all         15 µs/op (10,000 levels)   0 allocs
//	BenchmarkLoad (5,000 a side)      44 µs/op                   0 allocs
package book
