package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

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

// command is one subcommand: its flags (each with an environment fallback) and what it runs.
type command struct {
	name, args, summary string
	flags               *flag.FlagSet
	run                 func(positional []string) error
	// out is where the command prints its results (stdout, or a buffer in tests).
	out io.Writer
}

func newCommand(name, args, summary string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &command{name: name, args: args, summary: summary, flags: fs, out: os.Stdout}
}

// envName is a flag's environment fallback: --max-iters reads STYLEPROXY_MAX_ITERS.
func envName(flagName string) string {
	return "STYLEPROXY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies environment fallbacks, then the command line, where flags may come before, after
// or between positional arguments ("--" ends the flags).
func (c *command) parse(args []string) ([]string, error) {
	var envErr error
	c.flags.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = badInput("%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	var positional []string
	for {
		if err := c.flags.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, badInput("%s: %v (see styleproxy %s --help)", c.name, err, c.name)
		}
		rest := c.flags.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usage lists the command's flags, each with its environment variable and default.
func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: styleproxy %s %s\n\n%s\n", c.name, c.args, c.summary)
	var lines []string
	c.flags.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if len(f.Name) == 1 {
			head = "  -" + f.Name
		}
		if name != "" {
			head += " " + name
		}
		def := ""
		if f.DefValue != "" {
			def = fmt.Sprintf(", default %s", f.DefValue)
		}
		lines = append(lines, fmt.Sprintf("%s\n      %s (env %s%s)", head, usage, envName(f.Name), def))
	})
	sort.Strings(lines)
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s\n", strings.Join(lines, "\n"))
	}
}
