//go:build !linux

package bench

// pageFaultUS is not measured off Linux.
func pageFaultUS() float64 { return 0 }
