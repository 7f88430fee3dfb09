package defaults

import (
	"testing"
	"time"
)

func TestSetFillsOnlyZeroFields(t *testing.T) {
	zero, set := time.Duration(0), 5*time.Second
	Set(&zero, time.Minute)
	Set(&set, time.Minute)
	if zero != time.Minute || set != 5*time.Second {
		t.Fatalf("zero field became %v (want 1m), set field became %v (want 5s)", zero, set)
	}
	name := ""
	Set(&name, "session")
	if name != "session" {
		t.Fatalf("empty string became %q, want %q", name, "session")
	}
}
