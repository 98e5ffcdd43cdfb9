package nuorder

import (
	"context"
	"encoding/json"
	"fmt"

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
//
// One read can feed several streams (orders and order_lines), each with
// its own checkpoint: the listings are downloaded and each document decoded
// once, and every target decides from its own window and membership what it
// emits. A target whose checkpoint is of an interrupted run that got further
// skips the listings it already committed.
func (c *Connector) eachOrder(ctx context.Context, stream string, opts map[string]string, targets []orderTarget) error {
	f, err := parseOrderOptions(stream, opts)
	if err != nil {
		return err
	}
	now := c.clock()
	startPart := len(f.statuses)
	for i := range targets {
		t := &targets[i]
		if t.w, err = openWindow(t.checkpoint, now, c.lag()); err != nil {
			return err
		}
		if t.run, err = openOrderRun(t.checkpoint, f.statuses, t.w); err != nil {
			return err
		}
		if f.ids {
			t.roll = openRolling(t.run.cp, t.w, now, f.refresh)
			t.run.roll = &t.roll
		}
		if t.run.prevMissing {
			// Which orders changed status since is unknown: emit them all, and
			// read every listing again, even if the run was interrupted.
			c.logger.Warn("the orders checkpoint predates status tracking: this run emits every order once more", "stream", t.stream)
			t.w.startPart = 0
		}
		startPart = min(startPart, t.w.startPart)
	}
	for part := startPart; part < len(f.statuses); part++ {
		status := f.statuses[part]
		var active []*orderTarget
		byIDs := f.ids
		for i := range targets {
			if t := &targets[i]; part >= t.w.startPart {
				t.prev, t.seen = t.run.prev[status], &idSet{}
				active = append(active, t)
				byIDs = byIDs && t.prev != nil && !t.run.prevMissing
			}
		}
		var err error
		if byIDs {
			err = c.idsPart(ctx, status, f, active)
		} else {
			err = c.detailPart(ctx, status, f, active)
		}
		if err != nil {
			return err
		}
		for _, t := range active {
			t.seen.sort()
			t.run.seen[status] = t.seen
			if part < len(f.statuses)-1 {
				if err := t.flush(t.run.partCheckpoint(t.w, part)); err != nil {
					return err
				}
			}
		}
	}
	if err := c.rereadLeft(ctx, targets); err != nil {
		return err
	}
	for i := range targets {
		if err := targets[i].flush(targets[i].run.finalCheckpoint(targets[i].w)); err != nil {
			return err
		}
	}
	return nil
}

// detailPart reads one status listing whole (/detail) for targets: it
// records the listing's membership and calls each target's fn for the
// orders it emits (moved into the status, or modified in its window).
func (c *Connector) detailPart(ctx context.Context, status string, f orderFilter, active []*orderTarget) error {
	{
		err := c.client.eachElement(ctx, api.OrdersDetail, []string{status}, false, func(raw json.RawMessage) error {
			var o order
			if err := decodeValidOrder(raw, &o); err != nil {
				return badElement(fmt.Errorf("order document: %w", err))
			}
			if !o.ID.ok || o.ID.v == "" {
				return badElement(fmt.Errorf("order document without _id: %.120s", raw))
			}
			for _, t := range active {
				t.run.counted(raw)
			}
			if !f.keep(&o) {
				return nil
			}
			for _, t := range active {
				t.seen.add(o.ID.v)
				moved := t.prev == nil || !t.prev.has(o.ID.v)
				if !moved && !t.w.contains(cursorOf(o.ModifiedOn, o.CreatedOn)) {
					continue
				}
				if err := t.fn(&o, raw); err != nil {
					return err
				}
			}
			return nil
		})
		return err
	}
}

// orderTarget is one stream's side of an orders read: where it resumes,
// what it emits, and (while the read runs) its window and membership.
type orderTarget struct {
	stream     string
	checkpoint []byte
	fn         func(o *order, raw json.RawMessage) error
	flush      func(cp []byte) error

	w          window
	run        *orderRun
	prev, seen *idSet  // of the listing being read
	roll       rolling // with read = "ids"
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
	// cp is the checkpoint the run started from; roll, with read = "ids",
	// the run's rolling re-read, whose next laps the final checkpoint
	// stores (an interrupted run's passes cp's on).
	cp   checkpoint
	roll *rolling
	// docs and docBytes count the documents the run read, for the average
	// the final checkpoint keeps.
	docs, docBytes int64
}

// counted records a document the run read.
func (r *orderRun) counted(raw json.RawMessage) {
	r.docs, r.docBytes = r.docs+1, r.docBytes+int64(len(raw))
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
	run.cp = cp
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
	cp.Laps, cp.Slice, cp.Ran, cp.AvgDoc = r.cp.Laps, r.cp.Slice, r.cp.Ran, r.cp.AvgDoc
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
	if r.roll != nil {
		cp.Laps, cp.Slice = r.roll.next()
		cp.Ran = r.roll.ran.UTC().Format(tsLayout)
	}
	cp.AvgDoc = r.cp.AvgDoc
	if r.docs > 0 {
		cp.AvgDoc = r.docBytes / r.docs
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

// rereadLeft reads every order that left the listed statuses by id, once
// however many targets miss it, a window of batchRows at a time, up to the
// client's in-flight limit at once, and emits each to the targets it left,
// as NuOrder has it now (DeletedStatus for a 404). An order found back in a
// listed status (it moved while the run read the listings) joins that
// status's membership.
func (c *Connector) rereadLeft(ctx context.Context, targets []orderTarget) error {
	var left []string
	leftOf := make([]map[string]bool, len(targets))
	for i := range targets {
		leftOf[i] = map[string]bool{}
		for _, id := range targets[i].run.left() {
			if !leftOf[i][id] {
				leftOf[i][id] = true
				seen := false
				for k := 0; k < i && !seen; k++ {
					seen = leftOf[k][id]
				}
				if !seen {
					left = append(left, id)
				}
			}
		}
	}
	deleted := func(id string) json.RawMessage {
		doc, _ := json.Marshal(map[string]string{"_id": id, "status": DeletedStatus})
		return doc
	}
	err := c.readByID(ctx, api.OrderByID, left, deleted, func(id string, raw json.RawMessage) error {
		var o order
		if err := decodeOrder(raw, &o); err != nil {
			return fmt.Errorf("order document: %w", err)
		}
		for i := range targets {
			if !leftOf[i][id] {
				continue
			}
			if s := targets[i].run.seen[o.Status.v]; s != nil && o.Status.v != DeletedStatus {
				s.add(o.ID.v) // sorted below, before the final checkpoint
			}
			if err := targets[i].fn(&o, raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading an order that left the listed statuses: %w", err)
	}
	for i := range targets {
		for _, s := range targets[i].run.seen {
			s.sort()
		}
	}
	return nil
}
