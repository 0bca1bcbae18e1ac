package grayscale

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/styleproxy/styleproxy/plugin"
)

func parse(t *testing.T, f plugin.Filter, query string) (plugin.Options, error) {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	return f.Parse(context.Background(), q)
}

func TestGrayscaleParse(t *testing.T) {
	f := New()
	for q, on := range map[string]bool{"": false, "grayscale=1": true, "grayscale=true": true, "grayscale=0": false, "grayscale=false": false} {
		o, err := parse(t, f, q)
		if err != nil || (o != nil) != on {
			t.Errorf("%q: %v, %v", q, o, err)
		}
		if o != nil && (o.Heavy() || o.Key() != "on") {
			t.Errorf("%q: options %v %q", q, o.Heavy(), o.Key())
		}
	}
	for _, q := range []string{"grayscale=", "grayscale=2", "grayscale=yes", "grayscale=TRUE", "grayscale=on", "grayscale=01"} {
		_, err := parse(t, f, q)
		var pe *plugin.ParamError
		if !errors.As(err, &pe) || pe.Param != "grayscale" {
			t.Errorf("%q: %v", q, err)
		}
	}
}

func TestBlurParse(t *testing.T) {
	f := NewBlur()
	for q, key := range map[string]string{
		"blur=2": "sigma=2", "blur=2.0": "sigma=2", "blur=2.04": "sigma=2", "blur=0.1": "sigma=0.1",
		"blur=0.10": "sigma=0.1", "blur=20": "sigma=20", "blur=1.25": "sigma=1.3", "blur=010": "sigma=10",
	} {
		o, err := parse(t, f, q)
		if err != nil || o.Key() != key || o.Heavy() {
			t.Errorf("%q: %v, %v", q, o, err)
			continue
		}
	}
	if o, err := parse(t, f, "w=1"); o != nil || err != nil {
		t.Errorf("no blur: %v, %v", o, err)
	}
	for _, q := range []string{"blur=", "blur=0", "blur=0.04", "blur=-1", "blur=20.1", "blur=NaN", "blur=Inf", "blur=x",
		"blur=0.05", "blur=1e1", "blur=0x1p2", "blur=1_0", "blur=+2", "blur=-0", "blur= 2", "blur=2.", "blur=.5"} {
		_, err := parse(t, f, q)
		var pe *plugin.ParamError
		if !errors.As(err, &pe) || pe.Param != "blur" {
			t.Errorf("%q: %v", q, err)
		}
	}
}
