package style

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/plugin"
	"github.com/styleproxy/styleproxy/styles"
)

// A URL's style= is one style or a blend of up to MaxBlend: "starry", "starry@VERSION",
// "starry,scream" (equal shares) or "starry:0.7,scream:0.3". The shares are normalised to sum 1
// and rounded to four decimals, which the key and the optimisation both use; a style without a
// share weighs 1. The parts are kept sorted by name, a part whose share rounds to 0 is dropped
// (its style must still exist), and a blend left with one part is that style: so equivalent
// values share one key. Each part follows the pinning rules of style=NAME@VERSION.

// MaxBlend is the most styles one URL may blend.
const MaxBlend = 4

// part is one style of a URL's style=.
type part struct {
	name, version string // the version only when pinned
	pinned        bool
	share         float64
	style         *styles.Style
}

// parseParts reads style='s value; resolve completes the parts.
func parseParts(v string) ([]part, error) {
	bad := func(format string, args ...any) error {
		return &plugin.ParamError{Param: "style", Reason: fmt.Sprintf(format, args...)}
	}
	items := strings.Split(v, ",")
	if len(items) > MaxBlend {
		return nil, bad("blends at most %d styles, got %d", MaxBlend, len(items))
	}
	parts := make([]part, 0, len(items))
	for _, item := range items {
		ref, share, weighted := strings.Cut(item, ":")
		p := part{share: 1}
		p.name, p.version, p.pinned = strings.Cut(ref, "@")
		if p.pinned && !versionPattern.MatchString(p.version) {
			return nil, bad("%q is not a style version (16 hex digits, as GET /styles lists them)", p.version)
		}
		if weighted {
			var err error
			if p.share, err = plugin.Decimal("style", share, 0, 100); err != nil {
				return nil, bad("the share of %q must be a number from 0 to 100", p.name)
			}
		}
		if slices.ContainsFunc(parts, func(q part) bool { return q.name == p.name }) {
			return nil, bad("names %q twice", p.name)
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// normalise makes the shares sum to 1 (rounded to four decimals), drops the parts of share 0 and
// sorts the rest by name.
func normalise(parts []part) ([]part, error) {
	total := 0.0
	for _, p := range parts {
		total += p.share
	}
	if !(total > 0) {
		return nil, &plugin.ParamError{Param: "style", Reason: "the shares must not all be 0"}
	}
	for i := range parts {
		parts[i].share = math.Round(parts[i].share/total*1e4) / 1e4
	}
	kept := slices.DeleteFunc(slices.Clone(parts), func(p part) bool { return p.share == 0 })
	if len(kept) == 1 {
		kept[0].share = 1
	}
	slices.SortFunc(kept, func(a, b part) int { return strings.Compare(a.name, b.name) })
	return kept, nil
}

// resolve looks every part's style up in lib, the parts of share 0 too (a URL naming a missing
// style is a 404 whatever its share), checks pinned versions, and normalises the shares.
func resolve(lib Library, parts []part) ([]part, error) {
	for i, p := range parts {
		st, err := getStyle(lib, p.name, p.version, p.pinned)
		if err != nil {
			return nil, err
		}
		parts[i].style = st
	}
	return normalise(parts)
}

// getStyle is the style called name, at version if pinned.
func getStyle(lib Library, name, version string, pinned bool) (*styles.Style, error) {
	st, err := lib.Get(name)
	switch {
	case errors.Is(err, styles.ErrInvalidName):
		return nil, &plugin.ParamError{Param: "style", Reason: fmt.Sprintf("%q is not a style name", name)}
	case errors.Is(err, styles.ErrNotFound):
		return nil, &plugin.NotFoundError{What: fmt.Sprintf("style %q", name)}
	case err != nil:
		return nil, fmt.Errorf("style %q: %w", name, err)
	case pinned && version != st.Version:
		// The library keeps only the current version (see the README's caching section).
		return nil, &plugin.NotFoundError{What: fmt.Sprintf("version %s of style %q (the current version is %s; replaced versions are not kept)", version, name, st.Version)}
	}
	return st, nil
}

// mixKey is the parts' canonical text: NAME@VERSION for one style (as before blends existed),
// NAME@VERSION:SHARE,... for a blend. Pinned or not, the same versions give the same text.
func mixKey(parts []part) string {
	if len(parts) == 1 {
		return Pinned(parts[0].style)
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(Pinned(p.style) + ":" + strconv.FormatFloat(p.share, 'f', -1, 64))
	}
	return b.String()
}

// mixTargets are what the optimisation runs against: the style's own, or the blend's.
func mixTargets(parts []part) (engine.StyleTargets, engine.Weights, error) {
	if len(parts) == 1 {
		return parts[0].style.Targets, parts[0].style.Weights, nil
	}
	bp := make([]engine.BlendPart, len(parts))
	for i, p := range parts {
		bp[i] = engine.BlendPart{Targets: p.style.Targets, Weights: p.style.Weights, Mix: p.share}
	}
	return engine.Blend(bp)
}

// Pin returns style='s value v with every part pinned to its style's current version in lib
// (NAME becomes NAME@VERSION, shares and pinned parts kept as given): what `styleproxy sign` signs by default.
func Pin(lib Library, v string) (string, error) {
	parts, err := parseParts(v)
	if err != nil {
		return "", err
	}
	items := strings.Split(v, ",")
	for i, p := range parts {
		if p.pinned {
			continue // the server checks the version
		}
		st, err := getStyle(lib, p.name, "", false)
		if err != nil {
			return "", err
		}
		_, share, weighted := strings.Cut(items[i], ":")
		items[i] = Pinned(st)
		if weighted {
			items[i] += ":" + share
		}
	}
	return strings.Join(items, ","), nil
}
