package csv

import (
	"encoding/csv"
	"io"
	"path/filepath"
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
			return sinkstest.FileIDs(t, filepath.Join(base, "out", stream, "*.csv"), func(r io.Reader) ([]string, error) {
				recs, err := csv.NewReader(r).ReadAll()
				if err != nil {
					return nil, err
				}
				var ids []string
				for _, rec := range recs[1:] {
					ids = append(ids, rec[0])
				}
				return ids, nil
			})
		}
	}})
}
