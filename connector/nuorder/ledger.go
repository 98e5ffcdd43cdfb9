package nuorder

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"sort"

	"pipehost/connector"
)

// inventoryLedger is what an inventory push remembers of the pushes before
// it (the host keeps it as the pipeline's state): per warehouse id, the
// (SKU, digest of its replenishment set) pairs NuOrder holds from us. A SKU
// whose set has the digest the ledger holds is unchanged since it was sent
// and is skipped: no delete, no PUT. Stored as JSON, each warehouse an
// encoded idSet whose keys are the SKU's key followed by 8 digest bytes.
type inventoryLedger map[string]*idSet

func decodeInventoryLedger(raw []byte) (inventoryLedger, error) {
	l := inventoryLedger{}
	if len(raw) == 0 {
		return l, nil
	}
	var text map[string]string
	if err := json.Unmarshal(raw, &text); err != nil {
		return nil, fmt.Errorf("inventory ledger: %w (run with --full-refresh or reset the pipeline's state)", err)
	}
	for wh, t := range text {
		s, err := decodeIDSet(t)
		if err != nil {
			return nil, fmt.Errorf("inventory ledger of warehouse %s: %w (run with --full-refresh or reset the pipeline's state)", wh, err)
		}
		l[wh] = s
	}
	return l, nil
}

// skuDigest is the digest of a SKU's consolidated replenishments: kind,
// date (not for immediate rows, whose date is always the day of the push)
// and quantity of each, in a fixed order.
func skuDigest(items []*replenishment) [8]byte {
	keys := make([]string, len(items))
	for i, rp := range items {
		date := ""
		if rp.kind != "immediate" {
			date = rp.date.Format("2006-01-02")
		}
		var q [8]byte
		binary.BigEndian.PutUint64(q[:], math.Float64bits(rp.quantity))
		keys[i] = rp.kind + "\x00" + date + "\x00" + string(q[:])
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0xfe})
	}
	var d [8]byte
	binary.BigEndian.PutUint64(d[:], h.Sum64())
	return d
}

func ledgerKey(sku string, d [8]byte) []byte { return append(idKey(sku), d[:]...) }

// unchanged says whether the ledger holds this SKU with this digest.
func (l inventoryLedger) unchanged(wh, sku string, d [8]byte) bool {
	s := l[wh]
	return s != nil && s.hasKey(ledgerKey(sku, d))
}

// next is the ledger after a push: for each warehouse, the entries of SKUs
// the push did not try to send stay; SKUs it sent get their new digest
// (sent), SKUs whose delete or PUT NuOrder refused get none (their state in
// NuOrder is unknown, so the next push sends them again).
//
// flags lists the products whose replenishments were sent but whose
// inventory flags are not refreshed yet: a push killed between the two
// leaves them under flagsKey, and the next push refreshes them.
func (l inventoryLedger) next(tried map[string]map[string]bool, sent map[string]map[string][8]byte, flags map[string]bool) []byte {
	whs := map[string]bool{}
	for wh := range l {
		if wh != flagsKey {
			whs[wh] = true
		}
	}
	for wh := range sent {
		whs[wh] = true
	}
	out := map[string]string{}
	for wh := range whs {
		s := &idSet{}
		if old := l[wh]; old != nil {
			for i := 0; i < old.len(); i++ {
				k := old.key(i)
				if len(k) > 8 && !tried[wh][idOf(k[:len(k)-8])] {
					s.addKey(k)
				}
			}
		}
		for sku, d := range sent[wh] {
			s.addKey(ledgerKey(sku, d))
		}
		if s.len() > 0 {
			out[wh] = s.encode()
		}
	}
	if len(flags) > 0 {
		s := &idSet{}
		for id := range flags {
			s.add(id)
		}
		out[flagsKey] = s.encode()
	}
	b, _ := json.Marshal(out)
	return b
}

// flagsKey holds, in an inventory ledger, the products whose inventory
// flags a killed push left unrefreshed.
const flagsKey = "_flags_pending"

// pendingFlags returns the products an earlier push left unrefreshed.
func (l inventoryLedger) pendingFlags() []string {
	var out []string
	if s := l[flagsKey]; s != nil {
		s.each(func(id string) { out = append(out, id) })
	}
	return out
}

// readJSONLedger decodes a push's JSON ledger into v (left as is when the
// push has none). A ledger that does not decode fails the push, saying how
// to start over.
func readJSONLedger(stream string, raw []byte, v any) error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s ledger: %w (run with --full-refresh or reset the pipeline's state)", stream, err)
	}
	return nil
}

// keepJSONLedger puts v into the summary as the ledger the host keeps,
// unless the write was a dry run (which must change nothing).
func keepJSONLedger(req connector.WriteRequest, sum *connector.WriteSummary, v any) error {
	if req.DryRun {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	sum.Ledger = b
	return nil
}

// commitJSONLedger records v as the ledger so far through req.Commit (the
// host stores it before the connector sends anything more); nothing for a
// dry run or a host that keeps no state.
func commitJSONLedger(req connector.WriteRequest, v any) error {
	if req.DryRun || req.Commit == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return req.Commit(b)
}
