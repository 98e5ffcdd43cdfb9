package nuorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
)

// DeletedStatus is the status the orders streams give an order that an
// earlier run read and NuOrder now answers 404 for: it is in no listing and
// cannot be read. Its row carries the _id and this status, every other
// column null, so a merge sink stops showing it as approved.
const DeletedStatus = "deleted"

// eachOrder streams the orders of every status listing the read names and
// calls fn with those the run must emit; flush receives the checkpoint after
// each listing (the final one after the last).
//
// NuOrder moves an order between statuses without touching its modified_on
// (shared/nuorder-api.md §13.1): status is membership of a status listing.
// So the checkpoint keeps, per listed status, the ids the last run found in
// that listing, and an order is emitted when
//   - its modified_on (else created_on) lies in the read's window (an edit,
//     or a new order), or
//   - it is in a listing whose previous membership did not hold it (it
//     changed status, or entered a listed status from an unlisted one).
//
// An order the previous run listed and no listing holds now left every
// listed status (moved to pending, say, or deleted): it is read again by id
// (GET /api/order/{id}) and emitted as NuOrder has it now, with its real
// status, or with status DeletedStatus when NuOrder answers 404.
//
// Each listing is one unpaged /detail array, decoded element by element;
// memory grows only by the id sets (about 16 bytes per order).
func (c *Connector) eachOrder(ctx context.Context, stream string, req connector.ReadRequest,
	fn func(o *order, raw json.RawMessage) error, flush func(cp []byte) error) error {
	f, err := parseOrderOptions(stream, req.Options)
	if err != nil {
		return err
	}
	w, err := openWindow(req.Checkpoint, time.Now(), c.lag())
	if err != nil {
		return err
	}
	run, err := openOrderRun(req.Checkpoint, f.statuses, w)
	if err != nil {
		return err
	}
	if run.prevMissing {
		// Which orders changed status since is unknown: emit them all, and
		// read every listing again, even if the run was interrupted.
		c.logger.Warn("the orders checkpoint predates status tracking: this run emits every order once more", "stream", stream)
		w.startPart = 0
	}
	for part := w.startPart; part < len(f.statuses); part++ {
		status := f.statuses[part]
		prev, seen := run.prev[status], &idSet{}
		err := c.client.streamArray(ctx, api.OrdersDetail, []string{status}, func(raw json.RawMessage) error {
			var o order
			if err := json.Unmarshal(raw, &o); err != nil {
				return fmt.Errorf("order document: %w", err)
			}
			if !o.ID.ok || o.ID.v == "" {
				return fmt.Errorf("order document without _id: %.120s", raw)
			}
			if !f.keep(&o) {
				return nil
			}
			seen.add(o.ID.v)
			moved := prev == nil || !prev.has(o.ID.v)
			if !moved && !w.contains(cursorOf(o.ModifiedOn, o.CreatedOn)) {
				return nil
			}
			return fn(&o, raw)
		})
		if err != nil {
			return err
		}
		seen.sort()
		run.seen[status] = seen
		if part < len(f.statuses)-1 {
			if err := flush(run.partCheckpoint(w, part)); err != nil {
				return err
			}
		}
	}
	if err := c.rereadLeft(ctx, run, f, fn); err != nil {
		return err
	}
	return flush(run.finalCheckpoint(w))
}

// orderRun is the status membership of one orders read.
type orderRun struct {
	statuses []string
	// prev is the membership the last complete run found, per listed
	// status (nil for a status it did not list).
	prev map[string]*idSet
	// prevText is prev as the checkpoint carried it, passed on unchanged in
	// the checkpoints of an interrupted run.
	prevText map[string]string
	// prevMissing: a checkpoint without membership (written before status
	// tracking).
	prevMissing bool
	// seen is this run's membership of the listings read so far.
	seen     map[string]*idSet
	seenText map[string]string
}

func openOrderRun(raw []byte, statuses []string, w window) (*orderRun, error) {
	run := &orderRun{statuses: statuses, prev: map[string]*idSet{}, prevText: map[string]string{},
		seen: map[string]*idSet{}, seenText: map[string]string{}}
	var cp checkpoint
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &cp); err != nil {
			return nil, fmt.Errorf("unreadable checkpoint: %w (reset the stream's state)", err)
		}
	}
	run.prevMissing = len(raw) > 0 && cp.Listed == nil && cp.Seen == nil
	for i, st := range statuses {
		if text, ok := cp.Listed[st]; ok {
			s, err := decodeIDSet(text)
			if err != nil {
				return nil, fmt.Errorf("checkpoint: orders listed as %s: %w (reset the stream's state)", st, err)
			}
			run.prev[st], run.prevText[st] = s, text
		}
		if i < w.startPart && !run.prevMissing {
			text, ok := cp.Seen[st]
			if !ok {
				return nil, fmt.Errorf("checkpoint of an interrupted run lacks the %s listing it read (reset the stream's state)", st)
			}
			s, err := decodeIDSet(text)
			if err != nil {
				return nil, fmt.Errorf("checkpoint: orders seen as %s: %w (reset the stream's state)", st, err)
			}
			run.seen[st], run.seenText[st] = s, text
		}
	}
	return run, nil
}

// partCheckpoint is the checkpoint once listing part is committed: the
// window, the previous membership and this run's so far.
func (r *orderRun) partCheckpoint(w window, part int) []byte {
	var cp checkpoint
	json.Unmarshal(w.afterPart(part), &cp)
	cp.Listed = r.prevText
	for st, s := range r.seen {
		if _, ok := r.seenText[st]; !ok {
			r.seenText[st] = s.encode()
		}
	}
	cp.Seen = r.seenText
	b, _ := json.Marshal(cp)
	return b
}

// finalCheckpoint is the checkpoint of the complete run: the next run's
// lower bound and this run's membership.
func (r *orderRun) finalCheckpoint(w window) []byte {
	var cp checkpoint
	json.Unmarshal(w.final(), &cp)
	cp.Listed = map[string]string{}
	for _, st := range r.statuses {
		if s, ok := r.seen[st]; ok {
			cp.Listed[st] = s.encode()
		}
	}
	b, _ := json.Marshal(cp)
	return b
}

// left returns the ids the previous run listed that no listing of this run
// holds.
func (r *orderRun) left() []string {
	var out []string
	for _, st := range r.statuses {
		p := r.prev[st]
		if p == nil {
			continue
		}
		p.each(func(id string) {
			for _, s := range r.seen {
				if s.has(id) {
					return
				}
			}
			out = append(out, id)
		})
	}
	return out
}

// rereadLeft reads every order that left the listed statuses by id, a window
// of batchRows at a time, up to the client's in-flight limit at once, and
// emits each as NuOrder has it now (DeletedStatus for a 404). An order found
// back in a listed status (it moved while the run read the listings) joins
// that status's membership.
func (c *Connector) rereadLeft(ctx context.Context, run *orderRun, f orderFilter, fn func(o *order, raw json.RawMessage) error) error {
	left := run.left()
	for start := 0; start < len(left); start += batchRows {
		ids := left[start:min(start+batchRows, len(left))]
		docs := make([]json.RawMessage, len(ids))
		g, gctx := errgroup.WithContext(ctx)
		for i, id := range ids {
			g.Go(func() error {
				err := c.client.getJSON(gctx, api.OrderByID, []string{id}, &docs[i])
				var apiErr *APIError
				if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
					docs[i], _ = json.Marshal(map[string]string{"_id": id, "status": DeletedStatus})
					return nil
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return fmt.Errorf("reading an order that left the listed statuses: %w", err)
		}
		for _, raw := range docs {
			var o order
			if err := json.Unmarshal(raw, &o); err != nil {
				return fmt.Errorf("order document: %w", err)
			}
			if s := run.seen[o.Status.v]; s != nil && o.Status.v != DeletedStatus {
				s.add(o.ID.v) // sorted below, before the final checkpoint
			}
			if err := fn(&o, raw); err != nil {
				return err
			}
		}
	}
	for _, s := range run.seen {
		s.sort()
	}
	return nil
}
