// Package procstat reads what the bench programs watch of a process in
// /proc (its resident memory, its sockets), and holds their two waits:
// a sleep that a context cuts short and a ticker loop.
package procstat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RSS is the process's resident set size in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	v, err := Field(pid, "status", "VmRSS:")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(v) // "1234 kB"
	if len(f) < 1 {
		return 0, fmt.Errorf("procstat: no VmRSS for pid %d", pid)
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	return n << 10, err
}

// Field is what follows key on the first line of /proc/PID/file that
// begins with it.
func Field(pid int, file, key string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("procstat: no %q in /proc/%d/%s", key, pid, file)
}

// Sockets counts the process's open sockets (its /proc fd links to
// socket:[...]); -1 if its fds cannot be read.
func Sockets(pid int) int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// Sleep sleeps d or until ctx ends; false if ctx ended.
func Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Every calls f every d until ctx ends.
func Every(ctx context.Context, d time.Duration, f func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f()
		}
	}
}

// clkTck is USER_HZ, which Linux fixes at 100 on every architecture Go
// supports.
const clkTck = 100

// CPU is the process's user + system CPU time (/proc/PID/stat fields 14
// and 15).
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state): utime is field 14
	if len(f) < 13 {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clkTck, nil
}
