package plugins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/flight"

	"pipehost/connector"
)

// TestTheWireFormatOfTheProtocol: the JSON of every message that crosses
// the plugin boundary (tickets, write descriptors, results, ledger
// acknowledgements, action bodies and replies) and the descriptor naming
// the stream of each message of a read are what
// testdata/protocol-v<ProtocolVersion>.golden holds, so renaming or dropping a field,
// which an older plugin or host would read as missing, fails here. A
// deliberate change of the protocol bumps ProtocolVersion and writes a new
// golden file (UPDATE_GOLDEN=1).
func TestTheWireFormatOfTheProtocol(t *testing.T) {
	read := connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders", Checkpoint: []byte(`{"cursor":"x"}`)},
		{Stream: "order_lines", Checkpoint: []byte("c")}}, Options: map[string]string{"statuses": "approved"}}
	write := connector.WriteRequest{Stream: "inventory", Options: map[string]string{"replace": "true"}, DryRun: true, Ledger: []byte("l")}
	messages := []struct {
		Name  string
		Value any
	}{
		{"info", connector.Info{Name: "nuorder", Version: "1.2.3"}},
		{"config_schema", connector.ConfigSchema{Attributes: []connector.Attribute{{Name: "token_secret", Type: json.RawMessage(`"string"`),
			Description: "d", Required: true, Sensitive: true, Identity: true}}}},
		{"configure", connector.ConfigureRequest{Config: json.RawMessage(`{"a":1}`), Sandbox: true, SandboxDir: "/state/sandbox/nuorder", CacheDir: "/state/cache/nuorder-0a1b2c"}},
		{"catalog_stream", connector.Stream{Name: "orders", Kind: connector.Source, Description: "d", Schema: arrow.NewSchema(nil, nil),
			PrimaryKey: []string{"_id"}, CursorField: "modified_on", Disabled: "off", Notice: "n", ReadsWith: []string{"order_lines"},
			Options: []connector.Option{{Name: "statuses", Description: "d", Kind: connector.OptionList, Allowed: []string{"approved"}, Default: "approved"}}}},
		{"read_ticket", readTicket{ReadRequest: read}},
		{"read_message_descriptor", descriptorFields(streamDescriptor("order_lines"))},
		{"write_descriptor", putCommand{WriteRequest: write, ID: "w1", Commits: true}},
		{"put_results", putMessage{Results: []connector.RowResult{{Row: 3, Error: "bad"}, {Row: 4}}}},
		{"put_ledger", putMessage{Ledger: []byte(`{"k":"v"}`), Seq: 7}},
		{"put_summary", putMessage{Summary: &connector.WriteSummary{Actions: []connector.Action{{What: "orders moved", Count: 2}}, Ledger: []byte("l")}}},
		{"ledger_ack", ledgerAck{ID: "w1", Seq: 7, Error: "e"}},
		{"stats", connector.Stats{Requests: map[string]map[string]int64{"GET /api/x": {"2xx": 3}}, Retries: map[string]int64{"GET /api/x": 1}}},
		{"estimate_reply", estimateReply{Estimate: &connector.Estimate{Requests: 835, Bytes: 1 << 20, Parts: []string{"1 listing"}}}},
		{"actions", []string{actionInfo, actionConfigSchema, actionConfigure, actionCheck, actionStats, actionLedgerAck, actionEstimate}},
	}
	var b bytes.Buffer
	for _, m := range messages {
		j, err := json.Marshal(m.Value)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		b.WriteString(m.Name + " " + string(j) + "\n")
	}
	golden := fmt.Sprintf("testdata/protocol-v%d.golden", ProtocolVersion)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, b.Bytes()) {
		t.Fatalf("the wire format of protocol version %d changed (bump ProtocolVersion for a deliberate change):\nwant\n%s\ngot\n%s", ProtocolVersion, want, b.Bytes())
	}
}

// descriptorFields is a FlightDescriptor's fields as the golden file shows
// them (the descriptor itself is protobuf, not JSON).
func descriptorFields(d *flight.FlightDescriptor) map[string]any {
	return map[string]any{"type": d.Type.String(), "path": d.Path, "cmd": d.Cmd}
}
