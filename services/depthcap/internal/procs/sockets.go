package procs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// TCPLocalPorts returns the local ports of the process's TCP sockets (both
// listening and connected), from /proc/<pid>/fd and /proc/<pid>/net/tcp{,6}.
// A test uses it to tell which process owns a connection a server reports
// by its remote address (e.g. binance-sim's GET /sim/conns).
func (p *Proc) TCPLocalPorts() (map[int]bool, error) {
	pid := p.Pid()
	if pid == 0 {
		return nil, fmt.Errorf("%s is not running", p.Name())
	}
	return TCPLocalPorts(pid)
}

// TCPLocalPorts is Proc.TCPLocalPorts for any pid.
func TCPLocalPorts(pid int) (map[int]bool, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			inodes[strings.TrimSuffix(s, "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(fs) < 10 || !inodes[fs[9]] {
				continue
			}
			_, hexPort, ok := strings.Cut(fs[1], ":")
			if !ok {
				continue
			}
			port, err := strconv.ParseInt(hexPort, 16, 32)
			if err == nil {
				ports[int(port)] = true
			}
		}
	}
	return ports, nil
}
