package connector

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestOptionsAreCheckedByKindAndAllowedValues(t *testing.T) {
	decl := []Option{
		{Name: "statuses", Kind: OptionList, Allowed: []string{"approved", "processed", "shipped"}},
		{Name: "approved_from", Kind: OptionDate},
		{Name: "replace", Kind: OptionBool},
		{Name: "count", Kind: OptionInteger},
		{Name: "method", Allowed: []string{"read", "force"}},
	}
	for _, tc := range []struct {
		opts map[string]string
		want string // "" = accepted; else a part of the error
	}{
		{map[string]string{"statuses": "approved, Shipped", "approved_from": "2026-02-28", "replace": "false", "count": "12", "method": "force"}, ""},
		{map[string]string{"statuses": ""}, ""},
		{map[string]string{"statuses": "aproved,shipped"}, `"aproved" is not one of approved, processed, shipped; did you mean "approved"?`},
		{map[string]string{"statuses": " , "}, "names nothing"},
		{map[string]string{"approved_from": "2026-13-01"}, `approved_from = "2026-13-01" is not a date`},
		{map[string]string{"approved_from": "2026-02-30"}, "is not a date"},
		{map[string]string{"replace": "yes"}, "not true or false"},
		{map[string]string{"count": "1e3"}, "not a whole number"},
		{map[string]string{"method": "forse"}, `did you mean "force"?`},
		{map[string]string{"statusses": "approved"}, `takes no option "statusses"`},
		{map[string]string{"statusses": "approved"}, `did you mean "statuses"?`},
	} {
		err := CheckOptions("orders", decl, tc.opts)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: got %v, want %q", tc.opts, err, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "stream orders") {
			t.Errorf("%v: %v does not name the stream", tc.opts, err)
		}
	}
	if err := CheckOptions("products", []Option{}, map[string]string{"x": "1"}); err == nil || !strings.Contains(err.Error(), `takes no option "x" (it takes none)`) {
		t.Errorf("a stream without options: %v", err)
	}
}

// TestAnOptionReadsFromItsOldWireForm: a plugin built before options had
// kinds sends their bare names.
func TestAnOptionReadsFromItsOldWireForm(t *testing.T) {
	var st Stream
	if err := json.Unmarshal([]byte(`{"name":"orders","options":["statuses",{"name":"approved_from","kind":"date"}]}`), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Options) != 2 || st.Options[0].Name != "statuses" || st.Options[1].Kind != OptionDate {
		t.Fatalf("%+v", st.Options)
	}
}
