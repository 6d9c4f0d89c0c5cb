package bench

import (
	"os"
	"syscall"
	"time"
)

// pageFaultUS is what a first-touch page fault costs here, in µs: one
// write to each page of 16 MiB of fresh anonymous memory. Programs pay it
// whenever they grow into new memory (nats-server's block caches, Go
// heaps after the scavenger returned pages); on bare metal it is well
// under 1 µs, in some VMs ten times that or more.
func pageFaultUS() float64 {
	const n = 16 << 20
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0
	}
	defer func() { _ = syscall.Munmap(b) }()
	pg := os.Getpagesize()
	t0 := time.Now()
	for i := 0; i < n; i += pg {
		b[i] = 1
	}
	return float64(time.Since(t0).Nanoseconds()) / 1e3 / float64(n/pg)
}
