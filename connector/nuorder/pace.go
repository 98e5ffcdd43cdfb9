package nuorder

import (
	"context"

	"golang.org/x/time/rate"
)

// pacer spaces requests at most rate per second apart, whatever the number
// in flight: a tenant whose NuOrder answers 429 above R requests a second
// is read at R, not at R plus a stream of refusals and retries. It is a
// token bucket of one (golang.org/x/time/rate): start times are handed out
// in order, one every 1/rate; a request that would start early waits for
// its turn (or for ctx). The zero pacer does not wait.
type pacer struct {
	limit *rate.Limiter // nil: no pacing
}

func newPacer(perSecond float64) *pacer {
	if perSecond <= 0 {
		return &pacer{}
	}
	return &pacer{limit: rate.NewLimiter(rate.Limit(perSecond), 1)}
}

// wait blocks until the caller's turn to start a request, or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil || p.limit == nil {
		return nil
	}
	return p.limit.Wait(ctx)
}
