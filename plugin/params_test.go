package plugin

import (
	"errors"
	"net/url"
	"testing"
)

func TestGrammar(t *testing.T) {
	for _, s := range []string{"", "+2", "-0", "-1", " 2", "2 ", "1_0", "0x10", "1e1", "2.0", "ten", "1234567890123456789012"} {
		if _, err := Int("n", s, 0, 1<<30); !isParam(err, "n") {
			t.Errorf("Int(%q) = %v, want a ParamError for n", s, err)
		}
	}
	for s, want := range map[string]int{"0": 0, "7": 7, "007": 7, "100": 100} {
		if got, err := Int("n", s, 0, 100); err != nil || got != want {
			t.Errorf("Int(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	if _, err := Int("n", "101", 0, 100); !isParam(err, "n") {
		t.Errorf("Int over the range: %v", err)
	}
	for _, s := range []string{"", "+2", "-0", "0x1p2", "1_0", "1e1", "2.", ".5", "NaN", "Inf", "2,5", " 2"} {
		if _, err := Decimal("d", s, 0, 100); !isParam(err, "d") {
			t.Errorf("Decimal(%q) = %v, want a ParamError for d", s, err)
		}
	}
	for s, want := range map[string]float64{"2": 2, "2.5": 2.5, "0.25": 0.25, "020.50": 20.5} {
		if got, err := Decimal("d", s, 0, 100); err != nil || got != want {
			t.Errorf("Decimal(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for s, want := range map[string]bool{"true": true, "1": true, "false": false, "0": false} {
		if got, err := Bool("b", s); err != nil || got != want {
			t.Errorf("Bool(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "yes", "no", "TRUE", "True", "on", "01", "t"} {
		if _, err := Bool("b", s); !isParam(err, "b") {
			t.Errorf("Bool(%q) = %v, want a ParamError for b", s, err)
		}
	}
}

func TestAppliers(t *testing.T) {
	var order []string
	a := Appliers[[]string]{
		"b": func(o *[]string, v string) error { *o = append(*o, "b="+v); return nil },
		"a": func(o *[]string, v string) error { *o = append(*o, "a="+v); return nil },
		"c": func(o *[]string, v string) error { return &ParamError{Param: "c", Reason: "bad"} },
	}
	if err := a.Apply(&order, url.Values{"b": {"2"}, "a": {"1"}, "z": {"9"}}); err != nil {
		t.Fatal(err)
	}
	if len(order) != 2 || order[0] != "a=1" || order[1] != "b=2" {
		t.Errorf("Apply ran %v, want [a=1 b=2]", order)
	}
	if err := a.Apply(&order, url.Values{"c": {""}}); !isParam(err, "c") {
		t.Errorf("Apply = %v, want c's error", err)
	}
	if n := a.Names(); len(n) != 3 || n[0] != "a" || n[2] != "c" {
		t.Errorf("Names = %v", n)
	}
}

func isParam(err error, name string) bool {
	var pe *ParamError
	return errors.As(err, &pe) && pe.Param == name
}
