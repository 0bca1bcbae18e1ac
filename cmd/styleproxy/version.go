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

type versionCmd struct {
	Weights string `placeholder:"FILE" help:"SqueezeNet 1.1 checkpoint (or a folder holding one); else the user cache"`
	Backend string `help:"GoMLX backend: auto, go, xla:cpu, xla:cuda"`
}

func (c *versionCmd) Run(io *stdio) error {
	fmt.Fprintf(io.out, "styleproxy %s (engine %s)\n", version, engine.Version)
	b, err := engine.NewBackend(c.Backend)
	if errors.Is(err, engine.ErrUnknownBackend) {
		return usageError{err}
	}
	if err != nil {
		fmt.Fprintf(io.out, "backend: unavailable: %v\n", err)
	} else {
		fmt.Fprintf(io.out, "backend: %s\n", engine.BackendName(b))
	}
	path, err := weights.Resolve(c.Weights)
	if err != nil {
		fmt.Fprintf(io.out, "weights: %v\n", err)
		return nil
	}
	ck, err := weights.Load(path)
	if err != nil {
		return engineInputError(err, c.Weights)
	}
	fmt.Fprintf(io.out, "weights: %s sha256:%s\n", path, ck.Hash)
	return nil
}

type weightsFetchCmd struct {
	URL  string `name:"url" env:"-" help:"where to download the checkpoint from"`
	Dest string `placeholder:"FILE" env:"-" help:"where to save it (default: the user cache, where every command looks)"`
}

func (c *weightsFetchCmd) Run(io *stdio) error {
	path := c.Dest
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
	err := weights.Fetch(context.Background(), c.URL, path, func(done, total int64) {
		bar.step(int(done>>10), int(total>>10), "KiB")
	})
	bar.done()
	if err != nil {
		return err
	}
	fmt.Fprintln(io.out, path)
	return nil
}
