package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/styleproxy/styleproxy/server"
)

// workerCmd's flags are server.WorkerConfig's tagged fields, defaulting to
// server.DefaultWorkerConfig().
type workerCmd struct {
	server.WorkerConfig `embed:""`
}

func (c *workerCmd) Run() error {
	cfg := c.WorkerConfig
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(cfg.Logger)
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	w, err := server.NewWorker(cfg)
	if err != nil {
		return engineInputError(err, cfg.Weights)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return w.Run(ctx, ln)
}
