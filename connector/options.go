package connector

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agext/levenshtein"
)

// Option declares one option a stream's read (a pipeline's `options`) or
// write (`to_options`) accepts: its kind and the values it allows, so the
// host checks a value where the pipeline sets it (validate, plan) and the
// connector checks it again before using it. Options are strings in the
// pipeline file; Kind says what a string must look like.
type Option struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Kind is what the value must be: OptionString (the default),
	// OptionBool, OptionDate, OptionInteger or OptionList.
	Kind string `json:"kind,omitempty"`
	// Allowed, when not empty, lists the values accepted (for a list,
	// each of its items), compared case-insensitively.
	Allowed []string `json:"allowed,omitempty"`
	// Default is what an unset option means, for people (documentation).
	Default string `json:"default,omitempty"`
}

// The kinds of option values.
const (
	OptionString  = "string"
	OptionBool    = "bool"    // true or false
	OptionDate    = "date"    // YYYY-MM-DD, a real calendar date
	OptionInteger = "integer" // a whole number
	OptionList    = "list"    // comma-separated items, each checked against Allowed
)

// UnmarshalJSON accepts an option as an object, or as its bare name (the
// form plugins built before options had kinds send).
func (o *Option) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		*o = Option{Name: name}
		return nil
	}
	type plain Option
	return json.Unmarshal(b, (*plain)(o))
}

// Check returns an error saying what is wrong with value, with the closest
// allowed value when one is near ("did you mean"), or nil when it fits.
func (o Option) Check(value string) error {
	v := strings.TrimSpace(value)
	switch o.Kind {
	case OptionBool:
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("option %s = %q is not true or false", o.Name, value)
		}
	case OptionDate:
		if _, err := time.Parse("2006-01-02", v); err != nil {
			return fmt.Errorf("option %s = %q is not a date like 2026-01-31 (year-month-day, a day that exists)", o.Name, value)
		}
	case OptionInteger:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("option %s = %q is not a whole number", o.Name, value)
		}
	case OptionList:
		items := 0
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			items++
			if err := o.allowed(item); err != nil {
				return err
			}
		}
		if items == 0 && v != "" {
			return fmt.Errorf("option %s = %q names nothing", o.Name, value)
		}
		return nil
	}
	if v == "" {
		return nil
	}
	return o.allowed(v)
}

// allowed checks one value (or list item) against Allowed.
func (o Option) allowed(v string) error {
	if len(o.Allowed) == 0 {
		return nil
	}
	for _, a := range o.Allowed {
		if strings.EqualFold(a, v) {
			return nil
		}
	}
	hint := ""
	if s := Closest(v, o.Allowed); s != "" {
		hint = fmt.Sprintf("; did you mean %q?", s)
	}
	return fmt.Errorf("option %s: %q is not one of %s%s", o.Name, v, strings.Join(o.Allowed, ", "), hint)
}

// OptionNames lists the names of opts, in order.
func OptionNames(opts []Option) []string {
	out := make([]string, len(opts))
	for i, o := range opts {
		out[i] = o.Name
	}
	return out
}

// CheckOptions checks the options given to a stream against those it
// declares: an unknown name or a value that does not fit its declaration is
// an error naming the stream, the option and, where one is close, the
// name or value meant. Names are checked in sorted order, so the error is
// the same every time.
func CheckOptions(stream string, declared []Option, given map[string]string) error {
	keys := make([]string, 0, len(given))
	for k := range given {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i := -1
		for j, o := range declared {
			if o.Name == k {
				i = j
			}
		}
		if i < 0 {
			if len(declared) == 0 {
				return &OptionError{Name: k, Unknown: true, msg: fmt.Sprintf("stream %s takes no option %q (it takes none)", stream, k)}
			}
			hint := ""
			if s := Closest(k, OptionNames(declared)); s != "" {
				hint = fmt.Sprintf("; did you mean %q?", s)
			}
			return &OptionError{Name: k, Unknown: true,
				msg: fmt.Sprintf("stream %s takes no option %q (its options: %s)%s", stream, k, strings.Join(OptionNames(declared), ", "), hint)}
		}
		if err := declared[i].Check(given[k]); err != nil {
			return &OptionError{Name: k, msg: fmt.Sprintf("stream %s: %v", stream, err)}
		}
	}
	return nil
}

// OptionError is CheckOptions' error: which option is wrong, and whether
// its name is unknown (else its value does not fit).
type OptionError struct {
	Name    string
	Unknown bool
	msg     string
}

func (e *OptionError) Error() string { return e.msg }

// Closest returns the candidate nearest to name (case-insensitive edit
// distance under 3), for "did you mean" hints, or "" when none is close.
func Closest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(strings.ToLower(name), strings.ToLower(c), nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}
