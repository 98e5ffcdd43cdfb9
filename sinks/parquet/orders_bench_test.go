package parquet

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"

	"pipehost/connector"
	"pipehost/connector/nuorder"
	"pipehost/connector/nuorder/fakeapi"
	"pipehost/sinks"
)

// nuorderRecords reads orders and order_lines of a fake NuOrder account of
// n orders through the real connector, in process, and returns each
// stream's batches as the host's sinks receive them.
func nuorderRecords(tb testing.TB, n int) map[string][]arrow.Record {
	tb.Helper()
	creds := fakeapi.SandboxCredentials
	srv, err := fakeapi.Start(fakeapi.Options{Credentials: creds, Catalog: fakeapi.Catalog{Seed: 42, Products: 2000, Companies: 500, Orders: n},
		Prerender: filepath.Join(os.TempDir(), "pipehost-bench", "listings")})
	if err != nil {
		tb.Fatal(err)
	}
	defer srv.Close()
	c := nuorder.New(nil, nil)
	defer c.Close()
	cfg, _ := json.Marshal(map[string]any{"base_url": srv.URL(), "consumer_key": creds.ConsumerKey, "consumer_secret": creds.ConsumerSecret,
		"token": creds.Token, "token_secret": creds.TokenSecret, "cursor_lag_seconds": 0})
	if err := c.Configure(context.Background(), connector.ConfigureRequest{Config: cfg}); err != nil {
		tb.Fatal(err)
	}
	out := map[string][]arrow.Record{}
	err = c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}, {Stream: "order_lines"}}}, func(b connector.Batch) error {
		if b.Record != nil && b.Record.NumRows() > 0 {
			b.Record.Retain()
			out[b.Stream] = append(out[b.Stream], b.Record)
		}
		return nil
	})
	if err != nil || len(out["orders"]) == 0 || len(out["order_lines"]) == 0 {
		tb.Fatalf("read %d and %d batches: %v", len(out["orders"]), len(out["order_lines"]), err)
	}
	return out
}

// BenchmarkWriteNuOrderStreams writes the orders and order_lines batches the
// NuOrder connector emits for 10,000 orders of the fake account (the rows
// make bench moves, at a tenth of its smaller size) into one committed
// Parquet file each, with the sink's defaults: the host's share of the
// orders path, without the plugin or the network. Bytes are the Arrow size
// of the batches; it reports each file's size too.
//
//	go test ./sinks/parquet -run '^$' -bench WriteNuOrderStreams -count 5
func BenchmarkWriteNuOrderStreams(b *testing.B) {
	recs := nuorderRecords(b, 10_000)
	for _, stream := range []string{"orders", "order_lines"} {
		b.Run(stream, func(b *testing.B) {
			b.SetBytes(arrowBytes(recs[stream]))
			s, err := Open(&Config{Path: "lake"}, sinks.Env{BaseDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			var fileBytes int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				info := commitFile(b, s, stream, recs[stream])
				if fi, err := os.Stat(info.Location); err == nil {
					fileBytes = fi.Size()
				}
				os.Remove(info.Location)
			}
			b.ReportMetric(float64(fileBytes), "file-bytes")
		})
	}
}
