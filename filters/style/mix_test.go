package style

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/styleproxy/styleproxy/plugin"
)

const (
	starryV = "00000000000000a1"
	screamV = "00000000000000b2"
)

func blendFilter(t *testing.T) *Filter {
	t.Helper()
	lib := fakeLibrary{
		"starry": {Name: "starry", Version: starryV},
		"scream": {Name: "scream", Version: screamV},
		"wave":   {Name: "wave", Version: "00000000000000c3"},
		"kiss":   {Name: "kiss", Version: "00000000000000d4"},
		"lilies": {Name: "lilies", Version: "00000000000000e5"},
	}
	f, err := New(lib, nil, NewDefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func parseStyle(t *testing.T, f *Filter, value string) (*Options, error) {
	t.Helper()
	o, err := f.Parse(context.Background(), url.Values{"style": {value}})
	if err != nil {
		return nil, err
	}
	return o.(*Options), nil
}

func TestBlendValues(t *testing.T) {
	f := blendFilter(t)
	key := func(v string) string {
		t.Helper()
		o, err := parseStyle(t, f, v)
		if err != nil {
			t.Fatalf("style=%s: %v", v, err)
		}
		return o.Key()
	}
	if k := key("starry,scream"); !strings.Contains(k, "style=scream@"+screamV+":0.5,starry@"+starryV+":0.5;") {
		t.Errorf("even blend key %q", k)
	}
	if k := key("starry:0.7,scream:0.3"); !strings.Contains(k, "scream@"+screamV+":0.3,starry@"+starryV+":0.7;") {
		t.Errorf("weighted blend key %q", k)
	}
	for _, group := range [][]string{
		{"starry", "starry:0.5", "starry:1,scream:0", "scream:0,starry:3", "starry@" + starryV},
		{"starry:0.7,scream:0.3", "scream:0.3,starry:0.7", "starry:7,scream:3", "starry:0.70001,scream:0.3"},
		{"starry,scream", "scream:2,starry:2", "scream@" + screamV + ",starry"},
	} {
		want := key(group[0])
		for _, v := range group[1:] {
			if got := key(v); got != want {
				t.Errorf("style=%s: key %q, want that of style=%s, %q", v, got, group[0], want)
			}
		}
	}
	if key("starry:0.6,scream:0.4") == key("starry:0.4,scream:0.6") {
		t.Error("different shares share a key")
	}
	if !strings.HasPrefix(key("starry"), "style=starry@"+starryV+";iters=") {
		t.Errorf("one style's key changed form: %q", key("starry"))
	}

	for _, tc := range []struct {
		value   string
		missing bool
	}{
		{value: "starry,scream,wave,kiss,lilies"}, {value: "starry,starry"}, {value: "starry:x,scream"},
		{value: "starry:0,scream:0"}, {value: "starry:-1,scream"}, {value: "starry:101,scream"},
		{value: "starry@zz,scream"}, {value: "starry,"}, {value: "Starry,scream"}, {value: "starry:1e0,scream"},
		{value: "starry,nope", missing: true}, {value: "starry:1,nope:0", missing: true},
		{value: "starry,scream@00000000000000ff", missing: true},
	} {
		_, err := parseStyle(t, f, tc.value)
		var pe *plugin.ParamError
		var nf *plugin.NotFoundError
		if tc.missing && !errors.As(err, &nf) || !tc.missing && (!errors.As(err, &pe) || pe.Param != "style") {
			t.Errorf("style=%s: %v, want a %s", tc.value, err, map[bool]string{true: "NotFoundError", false: "ParamError for style"}[tc.missing])
		}
	}
	if _, err := parseStyle(t, f, "starry,scream,wave,kiss"); err != nil {
		t.Errorf("four styles: %v", err)
	}
}

func TestBlendPinningAndPurgeKeys(t *testing.T) {
	f := blendFilter(t)
	for _, tc := range []struct {
		value    string
		floating bool
		purge    []string
	}{
		{"starry@" + starryV + ",scream", true, []string{"style:scream", "style:starry@" + starryV}},
		{"starry@" + starryV + ",scream@" + screamV, false, []string{"style:scream@" + screamV, "style:starry@" + starryV}},
		{"starry,scream", true, []string{"style:scream", "style:starry"}},
	} {
		o, err := parseStyle(t, f, tc.value)
		if err != nil {
			t.Fatal(err)
		}
		if o.Floating() != tc.floating || !slices.Equal(o.PurgeKeys(), tc.purge) {
			t.Errorf("style=%s: floating %t, purge keys %v; want %t, %v", tc.value, o.Floating(), o.PurgeKeys(), tc.floating, tc.purge)
		}
	}
	a, _ := parseStyle(t, f, "starry:0.6,scream:0.4")
	b, _ := parseStyle(t, f, "scream:2,starry:3")
	c, _ := parseStyle(t, f, "starry,scream")
	if a.StageKey() != b.StageKey() || a.StageKey() == c.StageKey() {
		t.Errorf("stage keys: %q, %q, %q", a.StageKey(), b.StageKey(), c.StageKey())
	}
}
