package plugin

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Applier parses one parameter's value into the options T being built: one short function per
// parameter, on the shared helpers below, so every parameter of every filter follows one grammar.
type Applier[T any] func(o *T, value string) error

// Appliers are a parser's appliers by parameter name; their names are the parameters it owns.
type Appliers[T any] map[string]Applier[T]

// Names returns the parameters, sorted: what Filter.Params returns.
func (a Appliers[T]) Names() []string { return slices.Sorted(maps.Keys(a)) }

// Apply runs the applier of each parameter that q gives, in name order, stopping at the first
// error. q holds each name at most once: the pipeline refuses a repeated parameter before any
// parser runs.
func (a Appliers[T]) Apply(o *T, q url.Values) error {
	for _, name := range a.Names() {
		if v, ok := q[name]; ok && len(v) > 0 {
			if err := a[name](o, v[0]); err != nil {
				return err
			}
		}
	}
	return nil
}

// The grammar of values, as the README documents it: whole numbers are decimal digits (leading
// zeros allowed; no sign, spaces, underscores or other bases); decimals are whole numbers with an
// optional fraction of digits ("2", "2.5", "0.25"; no exponent); booleans are true, false, 1 or 0.
// Anything else is a ParamError naming the parameter.

// Int parses a whole number from lo to hi.
func Int(name, s string, lo, hi int) (int, error) {
	n, ok := digits(s)
	if !ok || n < int64(lo) || n > int64(hi) {
		return 0, &ParamError{Param: name, Reason: "must be a whole number from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi)}
	}
	return int(n), nil
}

// Decimal parses a decimal from lo to hi.
func Decimal(name, s string, lo, hi float64) (float64, error) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	_, okWhole := digits(whole)
	_, okFrac := digits(frac)
	if !okWhole || (hasFrac && !okFrac) {
		return 0, decimalError(name, lo, hi)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < lo || v > hi {
		return 0, decimalError(name, lo, hi)
	}
	return v, nil
}

func decimalError(name string, lo, hi float64) error {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return &ParamError{Param: name, Reason: "must be a number from " + f(lo) + " to " + f(hi) + " (digits and an optional fraction)"}
}

// Bool parses true, false, 1 or 0.
func Bool(name, s string) (bool, error) {
	switch s {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, &ParamError{Param: name, Reason: "must be true, false, 1 or 0"}
}

// Choice returns the index of s among choices.
func Choice(name, s string, choices ...string) (int, error) {
	if i := slices.Index(choices, s); i >= 0 {
		return i, nil
	}
	reason := "must be one of"
	for i, c := range choices {
		if i > 0 {
			reason += ","
		}
		reason += " " + c
	}
	return 0, &ParamError{Param: name, Reason: reason}
}

// digits parses 1 to 18 significant decimal digits after any leading zeros.
func digits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	significant := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > 0 || c != '0' {
			significant++
		}
		n = 10*n + int64(c-'0')
	}
	return n, significant <= 18
}
