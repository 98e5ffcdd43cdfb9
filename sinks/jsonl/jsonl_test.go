package jsonl

import (
	"bufio"
	"encoding/json"
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
			return sinkstest.FileIDs(t, filepath.Join(base, "out", stream, "*.jsonl"), func(r io.Reader) ([]string, error) {
				var ids []string
				sc := bufio.NewScanner(r)
				for sc.Scan() {
					var row struct {
						ID string `json:"_id"`
					}
					if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
						return nil, err
					}
					ids = append(ids, row.ID)
				}
				return ids, sc.Err()
			})
		}
	}})
}
