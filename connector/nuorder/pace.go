package nuorder

import (
	"context"
	"sync"
	"time"
)

// pacer spaces requests at most rate per second apart, whatever the number
// in flight: a tenant whose NuOrder answers 429 above R requests a second
// is read at R, not at R plus a stream of refusals and retries. Start times
// are handed out in order, one every 1/rate; a request that would start
// early waits for its turn (or for ctx). The zero pacer does not wait.
type pacer struct {
	every time.Duration // 0: no pacing

	mu   sync.Mutex
	next time.Time
}

func newPacer(perSecond float64) *pacer {
	if perSecond <= 0 {
		return &pacer{}
	}
	return &pacer{every: time.Duration(float64(time.Second) / perSecond)}
}

// wait blocks until the caller's turn to start a request, or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil || p.every == 0 {
		return nil
	}
	p.mu.Lock()
	now := time.Now()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.every)
	p.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
