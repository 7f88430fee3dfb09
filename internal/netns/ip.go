package netns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// ErrUnavailable is returned (wrapped) by New when network namespaces
// cannot be made here: not root, no ip command (Debian: apt-get install
// iproute2), or a kernel or container that refuses them. Tests skip on
// it.
var ErrUnavailable = errors.New("netns: network namespaces unavailable")

// available says why namespaces cannot be made, or returns nil.
func available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (running as uid %d)", ErrUnavailable, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: no ip command (install iproute2): %v", ErrUnavailable, err)
	}
	return nil
}

// ip runs `ip args...` and returns its standard output; its error
// carries the command and what it printed on standard error.
func ip(args ...string) ([]byte, error) {
	cmd := exec.Command("ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("netns: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// ipJSON runs `ip -j args...` and decodes its output into v. ip prints
// nothing at all, rather than [], when there is nothing to list.
func ipJSON(v any, args ...string) error {
	out, err := ip(append([]string{"-j"}, args...)...)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("netns: ip -j %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
