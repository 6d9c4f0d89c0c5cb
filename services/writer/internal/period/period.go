// Package period does the writer's time partitioning: which period a
// receive time falls in, and the file names of a period.
package period

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Day is the default period.
const Day = 24 * time.Hour

// ErrInvalid reports a period that is not allowed.
var ErrInvalid = errors.New("invalid period")

// Check reports whether d is an allowed period: from 1m to 24h, a whole
// number of minutes that divides 24h, so that periods tile UTC days.
func Check(d time.Duration) error {
	switch {
	case d < time.Minute || d > Day:
		return fmt.Errorf("%w %s: want 1m to 24h", ErrInvalid, d)
	case d%time.Minute != 0:
		return fmt.Errorf("%w %s: want whole minutes", ErrInvalid, d)
	case Day%d != 0:
		return fmt.Errorf("%w %s: must divide 24h", ErrInvalid, d)
	}
	return nil
}

// Index is the number of a period: floor(t / length) since the epoch.
type Index int64

// Of returns the period index of a time in ns since the Unix epoch.
func Of(ns int64, d time.Duration) Index {
	n := int64(d)
	q := ns / n
	if ns%n != 0 && ns < 0 {
		q--
	}
	return Index(q)
}

// Start is the first ns of the period.
func (p Index) Start(d time.Duration) int64 { return int64(p) * int64(d) }

// End is the first ns after the period.
func (p Index) End(d time.Duration) int64 { return (int64(p) + 1) * int64(d) }

// Name is the base file name of a period without extension: YYYY-MM-DD
// for 24h periods, YYYY-MM-DDTHHMM otherwise, in UTC.
func (p Index) Name(d time.Duration) string {
	t := time.Unix(0, p.Start(d)).UTC()
	if d == Day {
		return t.Format("2006-01-02")
	}
	return t.Format("2006-01-02T1504")
}

// FileName is the Parquet file name of a period and supplement: the main
// file for supplement 0, <name>.late<N>.parquet for supplement N.
func FileName(p Index, d time.Duration, supplement int) string {
	if supplement == 0 {
		return p.Name(d) + ".parquet"
	}
	return p.Name(d) + ".late" + strconv.Itoa(supplement) + ".parquet"
}

// ManifestName is the gap manifest beside a Parquet file:
// 2024-08-08.parquet -> 2024-08-08.gaps.json.
func ManifestName(parquetName string) string {
	return strings.TrimSuffix(parquetName, ".parquet") + ".gaps.json"
}
