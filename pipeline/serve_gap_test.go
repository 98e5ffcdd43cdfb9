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

// TestReplicasAgreeOnTheTurn: a job started late by its timer, or an
// "@every" schedule in processes started at different times, still names
// the same turn, which replicas claim in the shared state store.
func TestReplicasAgreeOnTheTurn(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ spec, now, want string }{
		{"*/15 * * * *", "2026-12-02T10:15:00.3Z", "2026-12-02T10:15:00Z"},
		{"*/15 * * * *", "2026-12-02T10:29:59Z", "2026-12-02T10:15:00Z"},
		{"@every 1s", "2026-12-02T10:15:07.9Z", "2026-12-02T10:15:07Z"},
		{"@every 15m", "2026-12-02T10:31:12Z", "2026-12-02T10:30:00Z"},
	} {
		sched, err := cron.ParseStandard(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		sched = aligned(sched)
		now := at(c.now).In(time.UTC)
		if got := lastTurn(sched, longestGap(sched, now), now); !got.Equal(at(c.want)) {
			t.Errorf("%s at %s: turn %s, want %s", c.spec, c.now, got, c.want)
		}
	}
	// Two processes started 2.5 s apart fire "@every 5s" at the same instants.
	every, _ := cron.ParseStandard("@every 5s")
	a, b := aligned(every).Next(at("2026-12-02T10:00:01Z")), aligned(every).Next(at("2026-12-02T10:00:03.5Z"))
	if !a.Equal(b) || !a.Equal(at("2026-12-02T10:00:05Z")) {
		t.Errorf("@every 5s: %s and %s", a, b)
	}
}
