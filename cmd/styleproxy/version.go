package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/weights"
)

func versionCommand() *command {
	c := newCommand("version", "[flags]", "Print the version, the GoMLX backend in use and the weights' hash.")
	wf := c.flags.String("weights", "", "SqueezeNet 1.1 checkpoint `FILE` (or a folder holding one); else the user cache")
	backend := c.flags.String("backend", engine.BackendAuto, "GoMLX backend: auto, go, xla:cpu, xla:cuda")
	c.run = func(positional []string) error {
		if len(positional) > 0 {
			return badInput("unexpected argument %q", positional[0])
		}
		fmt.Fprintf(c.out, "styleproxy %s (engine %s)\n", version, engine.Version)
		b, err := engine.NewBackend(*backend)
		if errors.Is(err, engine.ErrUnknownBackend) {
			return usageError{err}
		}
		if err != nil {
			fmt.Fprintf(c.out, "backend: unavailable: %v\n", err)
		} else {
			fmt.Fprintf(c.out, "backend: %s\n", engine.BackendName(b))
		}
		path, err := weights.Resolve(*wf)
		if err != nil {
			fmt.Fprintf(c.out, "weights: %v\n", err)
			return nil
		}
		ck, err := weights.Load(path)
		if err != nil {
			return engineInputError(err, *wf)
		}
		fmt.Fprintf(c.out, "weights: %s sha256:%s\n", path, ck.Hash)
		return nil
	}
	return c
}

func weightsFetchCommand() *command {
	c := newCommand("weights fetch", "[flags]",
		"Download torchvision's SqueezeNet 1.1 checkpoint into the user cache, checking its SHA-256.")
	url := c.flags.String("url", weights.OfficialURL, "where to download the checkpoint from")
	dest := c.flags.String("dest", "", "where to save it (default: the user cache, where every command looks)")
	c.run = func(positional []string) error {
		if len(positional) > 0 {
			return badInput("unexpected argument %q", positional[0])
		}
		path := *dest
		if path == "" {
			p, err := weights.CachePath()
			if err != nil {
				return err
			}
			path = p
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		bar := newProgressBar(os.Stderr)
		err := weights.Fetch(context.Background(), *url, path, func(done, total int64) {
			bar.step(int(done>>10), int(total>>10), "KiB")
		})
		bar.done()
		if err != nil {
			return err
		}
		fmt.Fprintln(c.out, path)
		return nil
	}
	return c
}
