package main

import (
	"github.com/styleproxy/styleproxy/server"
)

// workerCmd's flags are server.WorkerConfig's tagged fields, defaulting to
// server.DefaultWorkerConfig().
type workerCmd struct {
	server.WorkerConfig `embed:""`
}

func (c *workerCmd) Run() error {
	cfg := c.WorkerConfig
	cfg.Logger = jsonLogger()
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	w, err := server.NewWorker(cfg)
	if err != nil {
		return engineInputError(err, cfg.Weights)
	}
	return listenAndRun(cfg.Addr, w.Run)
}
