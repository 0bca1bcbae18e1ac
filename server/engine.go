package server

import (
	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/weights"
)

// OpenEngine finds the weights as every command does (weightsFlag, else $STYLEPROXY_WEIGHTS, else
// the user cache; see weights.Resolve), loads them and opens an engine on the backend named by
// backendSpec, with opts. The engine itself reads no environment: finding files is the caller's
// business.
func OpenEngine(weightsFlag, backendSpec string, opts ...engine.Option) (*engine.Engine, *weights.Checkpoint, error) {
	if err := engine.CheckBackendSpec(backendSpec); err != nil {
		return nil, nil, err // a typo is reported first, however the weights stand
	}
	path, err := weights.Resolve(weightsFlag)
	if err != nil {
		return nil, nil, err
	}
	return engine.Open(path, backendSpec, opts...)
}
