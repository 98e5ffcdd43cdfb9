package nuorder

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"pipehost/connector/nuorder/api"
)

// Orders read by ids (option read = "ids"). Each status listing is read as
// ids only (GET /api/orders/{status}/list, about 27 bytes an order against
// about 3.6 KB for /detail), and orders are read one by one
// (GET /api/order/{id}) when
//   - the status listing's previous membership did not hold them (new, or
//     moved from another status): emitted, as /detail does;
//   - their turn in the rolling re-read comes: every order has a fixed
//     position on a circle (a hash of its _id); each run re-reads the arc
//     that the time since the last run is of refresh_hours, so every order
//     is read at least once per refresh_hours. Such an order is emitted when
//     its modified_on lies after the window of the run that read it last
//     (the lap history in the checkpoint says which run that was) and within
//     this run's window: an edit that keeps an order in its status is
//     emitted once, within refresh_hours (plus one run interval) of the
//     edit.
// A first (or full-refresh) read, and a status without a previous
// membership, use /detail: reading every order by id would cost one request
// each.

// lap is the arc of the rolling re-read one run covered: the orders whose
// position lies in [From, To) (past 1 it wraps: To < From), read by a run
// whose window ended at Until. From 0 To 1 is the whole circle.
type lap struct {
	From  float64 `json:"from"`
	To    float64 `json:"to"`
	Until string  `json:"until"`
}

func (l lap) holds(h float64) bool {
	if l.From <= l.To {
		return h >= l.From && h < l.To
	}
	return h >= l.From || h < l.To
}

func (l lap) length() float64 {
	if l.From <= l.To {
		return l.To - l.From
	}
	return 1 - l.From + l.To
}

// idPosition is an order's position on the re-read circle, in [0, 1):
// FNV-1a of the _id, mixed (splitmix64's finaliser) so that ids that
// differ only in their last digits, as MongoDB's do, spread evenly.
func idPosition(id string) float64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	z := h.Sum64()
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// rolling is one target's rolling re-read in a run: the arc it covers and
// the laps before it.
type rolling struct {
	arc  lap
	past []lap // oldest first; the first is always the whole circle
	ran  time.Time
}

// openRolling works out the arc this run re-reads from the laps and slice
// position the last complete run stored (none: the whole circle was read
// at the checkpoint's cursor, by /detail).
func openRolling(cp checkpoint, w window, now time.Time, refresh time.Duration) rolling {
	r := rolling{past: cp.Laps, ran: now}
	if len(r.past) == 0 {
		r.past = []lap{{From: 0, To: 1, Until: w.since.Format(tsLayout)}}
	}
	prevRan := w.since
	if t, err := time.Parse(time.RFC3339Nano, cp.Ran); err == nil {
		prevRan = t
	}
	share := 1.0
	if refresh > 0 {
		share = float64(now.Sub(prevRan)) / float64(refresh)
	}
	until := w.until.Format(tsLayout)
	if share >= 1 {
		r.arc = lap{From: 0, To: 1, Until: until}
		return r
	}
	from := cp.Slice
	to := math.Mod(from+max(share, 0), 1)
	r.arc = lap{From: from, To: to, Until: until}
	return r
}

// lastRead is the end of the window of the run that last read the order at
// position h.
func (r rolling) lastRead(h float64) time.Time {
	for i := len(r.past) - 1; i >= 0; i-- {
		if r.past[i].holds(h) {
			t, _ := time.Parse(time.RFC3339Nano, r.past[i].Until)
			return t
		}
	}
	t, _ := time.Parse(time.RFC3339Nano, r.past[0].Until)
	return t
}

// next is the laps and slice position to store after the run: this run's
// arc added, laps older than one whole circle's worth dropped.
func (r rolling) next() ([]lap, float64) {
	laps := append(append([]lap(nil), r.past...), r.arc)
	covered, keep := 0.0, 0
	for i := len(laps) - 1; i >= 0; i-- {
		covered += laps[i].length()
		keep++
		if covered >= 1 {
			break
		}
	}
	// The first lap is the whole circle, so the kept laps cover it.
	laps = laps[len(laps)-keep:]
	if r.arc.length() >= 1 {
		return laps, r.arc.From
	}
	return laps, r.arc.To
}

// idsPart reads one status listing by ids for targets (each with a
// previous membership of it): it records the listing's membership, reads
// by id the orders a target must look at, and calls each target's fn for
// those it emits.
func (c *Connector) idsPart(ctx context.Context, status string, f orderFilter, active []*orderTarget) error {
	type want struct {
		moved   []bool // per target: new to the status for it
		refresh []bool // per target: its turn in the rolling re-read
	}
	wanted := map[string]*want{}
	var toRead []string
	err := c.client.streamArray(ctx, api.OrdersList, []string{status}, func(el json.RawMessage) error {
		var id string
		if err := json.Unmarshal(el, &id); err != nil || id == "" {
			return badElement(fmt.Errorf("order listing element %.80s is not an _id", el))
		}
		h := idPosition(id)
		var wt *want
		for i, t := range active {
			t.seen.add(id)
			moved := !t.prev.has(id)
			turn := !moved && t.roll.arc.holds(h)
			if !moved && !turn {
				continue
			}
			if wt == nil {
				if wt = wanted[id]; wt == nil {
					wt = &want{moved: make([]bool, len(active)), refresh: make([]bool, len(active))}
					wanted[id] = wt
					toRead = append(toRead, id)
				}
			}
			wt.moved[i], wt.refresh[i] = moved, turn
		}
		return nil
	})
	if err != nil {
		return err
	}
	// An order gone since the listing is skipped: the next run finds it
	// left, and reads it again.
	gone := func(string) json.RawMessage { return nil }
	err = c.readByID(ctx, api.OrderByID, toRead, gone, func(id string, raw json.RawMessage) error {
		var o order
		if err := decodeValidOrder(raw, &o); err != nil {
			return badElement(fmt.Errorf("order document: %w", err))
		}
		for _, t := range active {
			t.run.counted(raw)
		}
		if !f.keep(&o) {
			return nil
		}
		wt := wanted[id]
		for i, t := range active {
			emit := wt.moved[i]
			if wt.refresh[i] {
				mod, ok := cursorOf(o.ModifiedOn, o.CreatedOn)
				emit = ok && mod.After(t.roll.lastRead(idPosition(id))) && !mod.After(t.w.until)
			}
			if !emit {
				continue
			}
			if err := t.fn(&o, raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading an order listed as %s: %w", status, err)
	}
	return nil
}
