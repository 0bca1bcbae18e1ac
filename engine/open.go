package engine

import "github.com/styleproxy/styleproxy/weights"

// Open loads the checkpoint at checkpointPath (a file; callers find it with weights.Resolve),
// opens the backend named by backendSpec (see NewBackend) and returns an engine on them, with the
// checkpoint it loaded.
func Open(checkpointPath, backendSpec string, opts ...Option) (*Engine, *weights.Checkpoint, error) {
	ck, err := weights.Load(checkpointPath)
	if err != nil {
		return nil, nil, err
	}
	b, err := NewBackend(backendSpec)
	if err != nil {
		return nil, nil, err
	}
	e, err := New(b, ck, opts...)
	if err != nil {
		return nil, nil, err
	}
	return e, ck, nil
}
