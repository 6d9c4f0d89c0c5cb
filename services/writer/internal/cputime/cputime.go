// Package cputime measures the CPU time a process uses, for benchmarks on
// shared machines: wall-clock rates swing with the load of other
// processes, the CPU time a benchmark consumes much less.
package cputime

import (
	"syscall"
	"time"
)

// Now returns the user + system CPU time the process has used so far
// (every thread, the garbage collector's included).
func Now() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Meter accumulates the CPU time of measured sections.
type Meter struct {
	start time.Duration
	total time.Duration
}

// Start begins a section.
func (m *Meter) Start() { m.start = Now() }

// Stop ends a section.
func (m *Meter) Stop() { m.total += Now() - m.start }

// Total is the CPU time of every section so far.
func (m *Meter) Total() time.Duration { return m.total }

// PerSecond returns n events over the measured CPU time, per second.
func (m *Meter) PerSecond(n float64) float64 {
	if m.total <= 0 {
		return 0
	}
	return n / m.total.Seconds()
}
