package main

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/alecthomas/kong"
	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/weights"
)

// usageError marks bad input: the command exits with status 2 instead of 1.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func badInput(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// engineInputError marks the errors of opening the engine that the flags caused as bad input: an
// unknown --backend, and a checkpoint named by --weights that is damaged or not SqueezeNet's. A
// damaged copy in the user cache stays a failure (`weights fetch` replaces it).
func engineInputError(err error, weightsFlag string) error {
	if errors.Is(err, engine.ErrUnknownBackend) ||
		weightsFlag != "" && (errors.Is(err, weights.ErrNotCheckpoint) || errors.Is(err, weights.ErrNotSqueezeNet)) {
		return usageError{err}
	}
	return err
}

// defaultsFromValues makes the value a flag's field holds before parsing its default, so the
// defaults live in one place (server.DefaultConfig, engine.DefaultOptions) rather than in tags.
// kong would otherwise zero the field before applying the command line.
func defaultsFromValues(k *kong.Kong) error {
	return kong.Visit(k.Model, func(n kong.Visitable, next kong.Next) error {
		if f, ok := n.(*kong.Flag); ok && !f.HasDefault && f.Target.IsValid() && !f.Target.IsZero() {
			f.HasDefault, f.Default = true, formatDefault(f.Target)
		}
		return next(nil)
	})
}

func formatDefault(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	return fmt.Sprint(v.Interface())
}

// autoInt is an integer flag whose default, "auto", is derived from other flags.
type autoInt struct {
	v    int
	auto bool
}

func (a autoInt) String() string {
	if a.auto {
		return "auto"
	}
	return fmt.Sprint(a.v)
}

func (a *autoInt) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "auto" {
		*a = autoInt{auto: true}
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want an integer or auto, got %q", s)
	}
	*a = autoInt{v: v}
	return nil
}
