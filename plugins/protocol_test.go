package plugins

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"

	"pipehost/connector"
)

// TestTheWireFormatOfProtocolVersion1: the JSON of every message that
// crosses the plugin boundary (tickets, write descriptors, results, ledger
// acknowledgements, action bodies and replies) is what
// testdata/protocol-v1.golden holds, so renaming or dropping a field,
// which an older plugin or host would read as missing, fails here. A
// deliberate change of the protocol bumps ProtocolVersion and writes a new
// golden file (UPDATE_GOLDEN=1).
func TestTheWireFormatOfProtocolVersion1(t *testing.T) {
	if ProtocolVersion != 1 {
		t.Fatalf("ProtocolVersion is %d: add testdata/protocol-v%d.golden", ProtocolVersion, ProtocolVersion)
	}
	read := connector.ReadRequest{Stream: "orders", Checkpoint: []byte(`{"cursor":"x"}`), Options: map[string]string{"statuses": "approved"},
		With: []string{"order_lines"}, WithCheckpoints: map[string][]byte{"order_lines": []byte("c")}}
	write := connector.WriteRequest{Stream: "inventory", Options: map[string]string{"replace": "true"}, DryRun: true, Ledger: []byte("l")}
	messages := []struct {
		Name  string
		Value any
	}{
		{"info", connector.Info{Name: "nuorder", Version: "1.2.3"}},
		{"config_schema", connector.ConfigSchema{Attributes: []connector.Attribute{{Name: "token_secret", Type: json.RawMessage(`"string"`),
			Description: "d", Required: true, Sensitive: true, Identity: true}}}},
		{"configure", connector.ConfigureRequest{Config: json.RawMessage(`{"a":1}`), Sandbox: true, SandboxDir: "/state/sandbox/nuorder"}},
		{"catalog_stream", connector.Stream{Name: "orders", Kind: connector.Source, Description: "d", Schema: arrow.NewSchema(nil, nil),
			PrimaryKey: []string{"_id"}, CursorField: "modified_on", Disabled: "off", Notice: "n", ReadsWith: []string{"order_lines"},
			Options: []connector.Option{{Name: "statuses", Description: "d", Kind: connector.OptionList, Allowed: []string{"approved"}, Default: "approved"}}}},
		{"read_ticket", readTicket{ReadRequest: read, Joint: "j1", Part: "order_lines"}},
		{"write_descriptor", putCommand{WriteRequest: write, ID: "w1", Commits: true}},
		{"put_results", putMessage{Results: []connector.RowResult{{Row: 3, Error: "bad"}, {Row: 4}}}},
		{"put_ledger", putMessage{Ledger: []byte(`{"k":"v"}`), Seq: 7}},
		{"put_summary", putMessage{Summary: &connector.WriteSummary{Actions: []connector.Action{{What: "orders moved", Count: 2}}, Ledger: []byte("l")}}},
		{"ledger_ack", ledgerAck{ID: "w1", Seq: 7, Error: "e"}},
		{"stats", connector.Stats{Requests: map[string]map[string]int64{"GET /api/x": {"2xx": 3}}, Retries: map[string]int64{"GET /api/x": 1}}},
		{"actions", []string{actionInfo, actionConfigSchema, actionConfigure, actionCheck, actionStats, actionLedgerAck}},
	}
	var b bytes.Buffer
	for _, m := range messages {
		j, err := json.Marshal(m.Value)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		b.WriteString(m.Name + " " + string(j) + "\n")
	}
	const golden = "testdata/protocol-v1.golden"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, b.Bytes()) {
		t.Fatalf("the wire format of protocol version 1 changed:\nwant\n%s\ngot\n%s", want, b.Bytes())
	}
}
