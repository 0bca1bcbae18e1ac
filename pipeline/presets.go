package pipeline

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"github.com/styleproxy/styleproxy/plugin"
)

// Presets are named sets of parameters: a URL's preset=NAME stands for them, and the URL's own
// parameters win over them. The signature covers the URL as given (preset=NAME, not what it
// expands to), so an operator may change what a preset means without re-signing the URLs that
// use it; the cache key covers the expanded options, so a preset and its expansion share one
// cache entry.
type Presets map[string]url.Values

// presetName is what a preset's name must match.
var presetName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ParsePresets reads presets, one a line: "NAME: w=400&h=300&fit=cover". Blank lines and lines
// starting with # are skipped. A name given twice, a bad name, a malformed query, a parameter
// given twice, and sig or preset inside a preset are errors naming the line.
func ParsePresets(r io.Reader) (Presets, error) {
	ps := Presets{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("presets line %d: %s", n, fmt.Sprintf(format, args...))
		}
		name, query, ok := strings.Cut(line, ":")
		name, query = strings.TrimSpace(name), strings.TrimSpace(query)
		switch {
		case !ok:
			return nil, bad("want NAME: PARAMETERS")
		case !presetName.MatchString(name):
			return nil, bad("%q is not a preset name (1-64 of a-z, 0-9, _ and -)", name)
		case ps[name] != nil:
			return nil, bad("preset %q is defined twice", name)
		}
		q, err := url.ParseQuery(query)
		if err != nil || query == "" {
			return nil, bad("%q is not a query string", query)
		}
		for k, v := range q {
			if len(v) > 1 || k == "sig" || k == "preset" {
				return nil, bad("parameter %q given twice, or not allowed in a preset", k)
			}
		}
		ps[name] = q
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("presets: %w", err)
	}
	return ps, nil
}

// check refuses presets with parameters nobody owns or pipeline values that are bad, as a
// *plugin.ConfigError for the field Presets. Filter parameters' values are checked when a
// request uses them (a 400 naming the parameter), as the filters own their rules.
func (ps Presets) check(owner map[string]bool, maxOutputPx int) error {
	for name, q := range ps {
		for k := range q {
			if !owner[k] {
				return &plugin.ConfigError{Field: "Presets", Reason: fmt.Sprintf("preset %q: unknown parameter %q", name, k)}
			}
		}
		if _, err := ParseImageOptions(q, maxOutputPx, ""); err != nil {
			return &plugin.ConfigError{Field: "Presets", Reason: fmt.Sprintf("preset %q: %v", name, err)}
		}
	}
	return nil
}

// expand replaces preset=NAME in q with the preset's parameters that q does not give itself.
func (ps Presets) expand(q url.Values) error {
	name := q.Get("preset")
	if !q.Has("preset") {
		return nil
	}
	preset, ok := ps[name]
	if !ok {
		return &plugin.ParamError{Param: "preset", Reason: fmt.Sprintf("no preset %q on this server", name)}
	}
	delete(q, "preset")
	for k, v := range preset {
		if !q.Has(k) {
			q[k] = v
		}
	}
	return nil
}
