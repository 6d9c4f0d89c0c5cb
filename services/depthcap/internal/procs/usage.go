package procs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Usage is what the sampler saw of a process, over all its incarnations.
type Usage struct {
	// PeakRSS is the largest resident set of any incarnation, in bytes:
	// the kernel's high-water mark (VmHWM), so a peak between two samples
	// is not missed (only the last moments of a killed incarnation can be).
	PeakRSS int64
	// LastRSS is the resident set at the last sample (0 once exited).
	LastRSS int64
	// CPU is user + system time, summed over incarnations (up to each
	// one's last sample).
	CPU time.Duration
	// Samples is how many samples were taken.
	Samples int
}

type usage struct {
	peakRSS, lastRSS int64
	cpuTicks         int64
	samples          int
}

// add folds an incarnation into the accumulated usage.
func (u *usage) add(o usage) {
	u.peakRSS = max(u.peakRSS, o.peakRSS)
	u.cpuTicks += o.cpuTicks
	u.samples += o.samples
}

// clockTick is USER_HZ, the unit of utime/stime in /proc/<pid>/stat: 100
// on every Linux architecture Go supports (the kernel exports times to
// user space in USER_HZ regardless of its internal HZ).
const clockTick = 100

// Usage returns the process's sampled usage so far.
func (p *Proc) Usage() Usage {
	p.mu.Lock()
	defer p.mu.Unlock()
	acc := p.stat
	acc.add(p.cur)
	u := Usage{PeakRSS: acc.peakRSS, CPU: time.Duration(acc.cpuTicks) * time.Second / clockTick, Samples: acc.samples}
	if p.cmd != nil && p.runningLocked() {
		u.LastRSS = p.cur.lastRSS
	}
	return u
}

// Sample reads the running incarnation's /proc entries once and folds
// them into its usage. The sampler calls it; tests may call it too.
func (p *Proc) Sample() error {
	pid := p.Pid()
	if pid == 0 {
		return nil
	}
	st, err := ReadProcStatus(pid)
	if err != nil {
		return err
	}
	ticks, err := ReadCPUTicks(pid)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process.Pid != pid || !p.runningLocked() {
		return nil // restarted or exited meanwhile
	}
	p.cur.lastRSS = st.RSS
	p.cur.peakRSS = max(p.cur.peakRSS, st.HWM, st.RSS)
	p.cur.cpuTicks = max(p.cur.cpuTicks, ticks)
	p.cur.samples++
	return nil
}

// StartSampling samples every running process of the group every
// interval (default 200ms) until StopSampling or cleanup.
func (g *Group) StartSampling(interval time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopSampler != nil {
		return
	}
	if interval > 0 {
		g.sampleEvery = interval
	}
	g.stopSampler = make(chan struct{})
	g.samplerDone = make(chan struct{})
	go g.sampleLoop(g.sampleEvery, g.stopSampler, g.samplerDone)
}

// StopSampling stops the sampler (after one last sample).
func (g *Group) StopSampling() {
	g.mu.Lock()
	stop, done := g.stopSampler, g.samplerDone
	g.stopSampler = nil
	g.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (g *Group) sampleLoop(every time.Duration, stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, p := range g.Procs() {
			_ = p.Sample() // a process that exits between Pid and read is fine
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// ProcStatus is what /proc/<pid>/status says about memory.
type ProcStatus struct {
	RSS int64 // VmRSS, bytes
	HWM int64 // VmHWM (peak RSS of the process so far), bytes
}

// ReadProcStatus reads VmRSS and VmHWM of pid.
func ReadProcStatus(pid int) (ProcStatus, error) {
	var st ProcStatus
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &st.RSS
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &st.HWM
		default:
			continue
		}
		f := bytes.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			return st, fmt.Errorf("/proc/%d/status: %q: %w", pid, line, err)
		}
		if len(f) >= 3 && string(f[2]) == "kB" {
			n *= 1024
		}
		*dst = n
	}
	return st, nil
}

// ReadCPUTicks reads utime + stime of pid from /proc/<pid>/stat, in clock
// ticks (USER_HZ).
func ReadCPUTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU extracts utime + stime (fields 14 and 15) from a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may contain spaces, so fields are counted after the last ')'.
func parseStatCPU(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')' in %q", truncate(string(b), 80))
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime is field 14 -> f[11], stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command", len(f))
	}
	ut, err := strconv.ParseInt(string(f[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat utime: %w", err)
	}
	stime, err := strconv.ParseInt(string(f[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat stime: %w", err)
	}
	return ut + stime, nil
}
