package main

import (
	"github.com/styleproxy/styleproxy/filters/engine"
	"github.com/styleproxy/styleproxy/weights"
)

// openEngine loads the weights (--weights, then STYLEPROXY_WEIGHTS, then the user cache) and
// opens the GoMLX backend.
func openEngine(weightsFlag, backend string) (*engine.Engine, *weights.Checkpoint, error) {
	path, err := weights.Resolve(weightsFlag)
	if err != nil {
		return nil, nil, err
	}
	ck, err := weights.Load(path)
	if err != nil {
		return nil, nil, err
	}
	b, err := engine.NewBackend(backend)
	if err != nil {
		return nil, nil, err
	}
	e, err := engine.New(b, ck)
	if err != nil {
		return nil, nil, err
	}
	return e, ck, nil
}
