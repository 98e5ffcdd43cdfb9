package nuorder

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"pipehost/internal/jsonscan"
)

// Leniency with NuOrder's JSON: values that arrive as strings, numbers or
// booleans interchangeably, timestamps with or without milliseconds, and
// amounts read exactly from their text.

// flexString decodes a JSON string, number or bool as text (NuOrder is not
// consistent about which it sends), and null as absent.
type flexString struct {
	v  string
	ok bool
}

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = flexString{}
	case len(b) > 0 && b[0] == '"':
		s, err := jsonscan.String(b)
		if err != nil {
			return err
		}
		*f = flexString{s, true}
	default:
		*f = flexString{string(b), true}
	}
	return nil
}

// flexNumber decodes a JSON number or a numeric string ("1", "$45.00" is
// not numeric and decodes as absent).
// The number's text is kept, so amounts become exact decimals.
type flexNumber struct {
	v    float64
	text string
	ok   bool
}

func (f *flexNumber) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil || !s.ok {
		*f = flexNumber{}
		return nil
	}
	text := strings.TrimSpace(s.v)
	v, err := strconv.ParseFloat(text, 64)
	*f = flexNumber{v, text, err == nil}
	return nil
}

// Amounts (totals, prices, discounts, surcharges) are exact decimals with
// amountScale digits after the point and amountPrecision digits in all:
// up to 99,999,999,999,999.9999. NuOrder sends them as JSON numbers or as
// strings ("1234.56"); either is read from its text, never through a
// float, so sums in a warehouse match NuOrder to the cent. A value with
// more decimal places is rounded half away from zero at the fourth; one too
// large for the type is null (the document column keeps it).
const (
	amountPrecision = 18
	amountScale     = 4
)

// parseDecimal reads a decimal number's text ("-1234.5", "1e3", "0.125")
// as an integer count of 10^-scale units, exactly; ok is false when the
// text is not a number or the value needs more than precision digits.
func parseDecimal(text string, precision, scale int) (unscaled int64, ok bool) {
	neg := false
	if text != "" && (text[0] == '-' || text[0] == '+') {
		neg, text = text[0] == '-', text[1:]
	}
	mant, exp := text, 0
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		e, err := strconv.Atoi(text[i+1:])
		if err != nil || e > 100 || e < -100 {
			return 0, false
		}
		mant, exp = text[:i], e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	// digits * 10^(exp - len(frac)), wanted in units of 10^-scale.
	shift := exp - len(frac) + scale
	digits = strings.TrimLeft(digits, "0")
	roundUp := false
	if shift < 0 {
		cut := len(digits) + shift
		if cut < 0 {
			digits = ""
		} else {
			roundUp = digits[cut] >= '5'
			digits = digits[:cut]
		}
		shift = 0
	}
	if len(digits)+shift > precision {
		return 0, false
	}
	var v int64
	for _, d := range digits {
		v = v*10 + int64(d-'0')
	}
	for ; shift > 0; shift-- {
		v *= 10
	}
	if roundUp {
		v++
	}
	if v >= pow10(precision) {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

func pow10(n int) int64 {
	v := int64(1)
	for ; n > 0; n-- {
		v *= 10
	}
	return v
}

// flexBool decodes true/false, "true"/"false" and 1/0.
type flexBool struct {
	v  bool
	ok bool
}

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil || !s.ok {
		*f = flexBool{}
		return nil
	}
	v, err := strconv.ParseBool(strings.TrimSpace(s.v))
	*f = flexBool{v, err == nil}
	return nil
}

// parseTime reads NuOrder's timestamps: ISO-8601 with or without
// milliseconds, or a bare date. Empty strings and anything unreadable are
// absent; the raw value stays in the document column.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "2006/01/02", "01/02/2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
