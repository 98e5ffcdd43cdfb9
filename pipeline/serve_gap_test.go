package main

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// TestLongestGapCoversQuietDays: the schedule interval alert rules compare
// with is the longest gap, so a weekday schedule's weekend counts.
func TestLongestGapCoversQuietDays(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.Local) // a Wednesday
	for spec, want := range map[string]time.Duration{
		"@hourly":      time.Hour,
		"*/15 * * * *": 15 * time.Minute,
		"@every 90s":   90 * time.Second,
		"0 6 * * 1-5":  72 * time.Hour, // Friday 06:00 to Monday 06:00
	} {
		sched, err := cron.ParseStandard(spec)
		if err != nil {
			t.Fatal(spec, err)
		}
		if got := longestGap(sched, now); got != want {
			t.Errorf("%s: longest gap %s, want %s", spec, got, want)
		}
	}
}
