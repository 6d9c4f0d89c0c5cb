// Package pq turns row buffers into the user-facing Parquet files: the
// Arrow schema of each market and kind (SCHEMA.md), the writer properties
// (ZSTD level, per-column encodings, fixed row groups) and a streaming
// file writer that cuts row groups at fixed row counts so that a file's
// bytes depend only on its rows.
package pq

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/rows"
)

// SchemaVersion is written into every file's metadata; bump it on any
// change of columns or their meaning.
const SchemaVersion = "1"

// Column names.
const (
	ColRequestTime     = "request_time"
	ColReceivedTime    = "received_time"
	ColEventTime       = "event_time"
	ColTransactionTime = "transaction_time"
	ColSymbol          = "symbol"
	ColFirstUpdateID   = "first_update_id"
	ColFinalUpdateID   = "final_update_id"
	ColPrevFinalID     = "prev_final_update_id"
	ColLastUpdateID    = "last_update_id"
	ColLimit           = "limit"
	ColBidPrices       = "bid_prices"
	ColBidSizes        = "bid_sizes"
	ColAskPrices       = "ask_prices"
	ColAskSizes        = "ask_sizes"
)

// TimestampType is int64 microseconds, UTC: Parquet
// TIMESTAMP(MICROS, isAdjustedToUTC=true).
var TimestampType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// LevelsType is the type of the four level columns. The element field is
// named "element", the name of the Parquet list element group, as
// pqarrow normalizes it before storing the Arrow schema.
var LevelsType = arrow.ListOfField(arrow.Field{Name: "element", Type: arrow.PrimitiveTypes.Float64, Nullable: true})

func ts(name string, nullable bool) arrow.Field {
	return arrow.Field{Name: name, Type: TimestampType, Nullable: nullable}
}

func i64(name string, nullable bool) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int64, Nullable: nullable}
}

var levelFields = []arrow.Field{
	{Name: ColBidPrices, Type: LevelsType},
	{Name: ColBidSizes, Type: LevelsType},
	{Name: ColAskPrices, Type: LevelsType},
	{Name: ColAskSizes, Type: LevelsType},
}

var symbolField = arrow.Field{Name: ColSymbol, Type: arrow.BinaryTypes.String}

// Schema returns the Arrow schema of a layout. Column order and
// nullability are part of the file contract (SCHEMA.md).
func Schema(l rows.Layout) *arrow.Schema {
	var f []arrow.Field
	futures := l.Futures()
	switch l.Kind {
	case md.Snapshot:
		f = append(f, ts(ColRequestTime, true), ts(ColReceivedTime, false))
		if futures {
			f = append(f, ts(ColEventTime, false), ts(ColTransactionTime, false))
		}
		f = append(f, i64(ColLastUpdateID, false),
			arrow.Field{Name: ColLimit, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			symbolField)
	case md.Partial:
		// Spot partials carry only lastUpdateId: event_time and
		// first_update_id are null, final_update_id holds lastUpdateId.
		spot := !futures
		f = append(f, ts(ColReceivedTime, false), ts(ColEventTime, spot))
		if futures {
			f = append(f, ts(ColTransactionTime, false))
		}
		f = append(f, symbolField, i64(ColFirstUpdateID, spot), i64(ColFinalUpdateID, false))
		if futures {
			f = append(f, i64(ColPrevFinalID, false))
		}
	default: // diff
		f = append(f, ts(ColReceivedTime, false), ts(ColEventTime, false))
		if futures {
			f = append(f, ts(ColTransactionTime, false))
		}
		f = append(f, symbolField, i64(ColFirstUpdateID, false), i64(ColFinalUpdateID, false))
		if futures {
			f = append(f, i64(ColPrevFinalID, false))
		}
	}
	f = append(f, levelFields...)
	return arrow.NewSchema(f, nil)
}
