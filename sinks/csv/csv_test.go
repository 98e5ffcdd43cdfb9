package csv

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"pipehost/sinks"
	"pipehost/sinks/internal/textsink"
	"pipehost/sinks/sinkstest"
)

func TestConformance(t *testing.T) {
	sinkstest.Run(t, sinkstest.Harness{Modes: textsink.Driver{}.Modes(), Open: func(t *testing.T) (sinks.Sink, func(string) []string) {
		base := t.TempDir()
		s, err := textsink.Open(&textsink.Config{Path: "out"}, sinks.Env{BaseDir: base}, encoder{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, func(stream string) []string {
			files, _ := filepath.Glob(filepath.Join(base, "out", stream, "*.csv"))
			var ids []string
			for _, f := range files {
				fh, err := os.Open(f)
				if err != nil {
					t.Fatal(err)
				}
				recs, err := csv.NewReader(fh).ReadAll()
				fh.Close()
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs[1:] {
					ids = append(ids, r[0])
				}
			}
			sort.Strings(ids)
			return ids
		}
	}})
}
