package nuorder

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"time"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
)

// Catalog reads that follow change. NuOrder has no known route that lists
// products modified since a time (shared/nuorder-api.md §4): a product is
// only seen by reading it, one request each. So the products stream keeps,
// in its checkpoint, what it knows of the catalog: each product id with
// when it was last read and a digest of the document then. A run lists the
// ids (one request per listing), reads the ids it does not know, and
// re-reads known products on a rolling schedule: every product at most
// refresh_hours old (default 24), the oldest first, spread so that each
// run re-reads the share of the catalog the time since the last run is of
// refresh_hours. A product whose document changed since it was last read
// is emitted; an unchanged one is not. An edit to a known product is
// therefore seen within refresh_hours (about refresh_hours / 2 on
// average), not at the next run; --full-refresh reads everything again.

// productRefresh is the products stream's option: how old a known
// product's last read may grow before it is read again.
var productRefresh = connector.Option{Name: "refresh_hours", Kind: connector.OptionInteger, Default: "24",
	Description: "re-read each known product at least this often (hours): an edit to a known product is seen within this time, new products at the next run; 0 re-reads every product every run"}

// defaultRefresh is refresh_hours unset.
const defaultRefresh = 24 * time.Hour

// catalogEntry is what the products stream knows of one product.
type catalogEntry struct {
	read   uint32 // last read, minutes since the Unix epoch
	digest uint32 // of the document then
}

// catalog is the products stream's knowledge of the catalog, by product id.
type catalog map[string]catalogEntry

// entryBytes is the length of an entry after its id's key in an encoded
// catalog: read, then digest, big-endian.
const entryBytes = 8

// encodeCatalog returns the catalog as text for the checkpoint (an encoded
// idSet whose keys are the id's key followed by the entry).
func encodeCatalog(c catalog) string {
	var s idSet
	for id, e := range c {
		k := idKey(id)
		k = binary.BigEndian.AppendUint32(k, e.read)
		k = binary.BigEndian.AppendUint32(k, e.digest)
		s.addKey(k)
	}
	s.sort()
	return s.encode()
}

// decodeCatalog reads what encodeCatalog wrote.
func decodeCatalog(text string) (catalog, error) {
	s, err := decodeIDSet(text)
	if err != nil {
		return nil, fmt.Errorf("the catalog in the products checkpoint: %w (run with --full-refresh or reset the pipeline's state)", err)
	}
	c := make(catalog, s.len())
	for i := 0; i < s.len(); i++ {
		k := s.key(i)
		if len(k) <= entryBytes {
			return nil, fmt.Errorf("the catalog in the products checkpoint has a short entry (run with --full-refresh or reset the pipeline's state)")
		}
		tail := k[len(k)-entryBytes:]
		c[idOf(k[:len(k)-entryBytes])] = catalogEntry{read: binary.BigEndian.Uint32(tail), digest: binary.BigEndian.Uint32(tail[4:])}
	}
	return c, nil
}

// minutes is t as catalogEntry.read.
func minutes(t time.Time) uint32 { return uint32(t.Unix() / 60) }

// docDigest is a document's digest for catalogEntry.
func docDigest(raw json.RawMessage) uint32 {
	h := fnv.New32a()
	h.Write(raw)
	return h.Sum32()
}

// refreshOf reads refresh_hours (checked by CheckOptions).
func refreshOf(options map[string]string) time.Duration {
	v, ok := options[productRefresh.Name]
	if !ok {
		return defaultRefresh
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return defaultRefresh
	}
	return time.Duration(n) * time.Hour
}

// toRefresh picks the known, listed products a run re-reads: every one last
// read refresh or more ago, and, oldest first, as many more as make up the
// share of the catalog that the time since the last run (since; zero: not
// known) is of refresh, at least one per run once a run comes later than
// the last. With refresh 0, every one.
func toRefresh(known catalog, listed map[string]bool, now, since time.Time, refresh time.Duration) map[string]bool {
	type aged struct {
		id   string
		read uint32
	}
	var candidates []aged
	for id := range listed {
		if e, ok := known[id]; ok {
			candidates = append(candidates, aged{id, e.read})
		}
	}
	sort.Slice(candidates, func(i, j int) bool {
		if candidates[i].read != candidates[j].read {
			return candidates[i].read < candidates[j].read
		}
		return candidates[i].id < candidates[j].id
	})
	quota := 0
	switch {
	case refresh <= 0:
		quota = len(candidates)
	case !since.IsZero() && now.After(since):
		quota = int(math.Ceil(float64(len(candidates)) * float64(now.Sub(since)) / float64(refresh)))
	}
	stale := minutes(now.Add(-refresh))
	out := map[string]bool{}
	for i, c := range candidates {
		if i >= quota && c.read > stale {
			break
		}
		out[c.id] = true
	}
	return out
}

// readProductIDs reads the products of ids (sorted) and calls fn with each
// document, in order.
func (c *Connector) readProductIDs(ctx context.Context, ids []string, fn func(id string, doc json.RawMessage) error) error {
	return c.readByID(ctx, api.ProductByID, ids, nil, fn)
}
