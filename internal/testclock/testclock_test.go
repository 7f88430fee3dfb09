package testclock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c := New(start)
	assert.Equal(t, start, c.Now())
	assert.Equal(t, start, c.Now(), "reading does not move it")
	c.Advance(time.Minute)
	assert.Equal(t, start.Add(time.Minute), c.Now())
	c.Set(start)
	assert.Equal(t, start, c.Now(), "Set moves it back too")
}

func TestZeroClockStartsAtTheRealTimeOfItsFirstReading(t *testing.T) {
	var c Clock
	before := time.Now()
	first := c.Now()
	assert.False(t, first.Before(before))
	assert.False(t, first.After(time.Now()))
	assert.Equal(t, first, c.Now(), "then it stands still")
	c.Advance(time.Hour)
	assert.Equal(t, first.Add(time.Hour), c.Now())
}
