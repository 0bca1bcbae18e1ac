package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/styleproxy/styleproxy/cluster"
	"github.com/styleproxy/styleproxy/plugin"
	"github.com/styleproxy/styleproxy/styles"
)

// clusterProblems checks the --nats flags.
func (c *Config) clusterProblems() []error {
	var errs []error
	if c.NATS == "" && c.NATSCreds != "" {
		errs = append(errs, errors.New("--nats-creds: give --nats too"))
	}
	if c.NATSReplicas < 1 || c.NATSReplicas > 5 {
		errs = append(errs, fmt.Errorf("--nats-replicas: must be from 1 to 5 (JetStream's limit), got %d", c.NATSReplicas))
	}
	if c.Worker && c.NATS == "" {
		errs = append(errs, errors.New("--worker: give --nats too (without it this server does its own work)"))
	}
	if c.NATSAckWait < time.Second {
		errs = append(errs, fmt.Errorf("--nats-ack-wait: must be at least 1s, got %s", c.NATSAckWait))
	}
	if c.NATSResultTTL < 0 || c.NATSResultMB < 0 {
		errs = append(errs, errors.New("--nats-result-ttl, --nats-result-mb: must be 0 or more"))
	}
	return errs
}

// Close closes the style library and the connection to the cluster (Run does at its end).
func (s *Server) Close() {
	s.Library.Close()
	if s.cluster != nil {
		s.cluster.conn.Close()
	}
}

// clusterParts are what --nats adds to a server.
type clusterParts struct {
	conn    *cluster.Conn
	results *cluster.Results
	queue   *cluster.Queue
	metrics *clusterMetrics
	worker  *cluster.Worker // with --worker
}

// openCluster opens the shared result tier and the work queue on cl.
func openCluster(cfg Config, cl *cluster.Conn, reg *prometheus.Registry) (*clusterParts, error) {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	cp := &clusterParts{conn: cl}
	var err error
	cp.results, err = cluster.OpenResults(ctx, cl, cluster.ResultsConfig{TTL: cfg.NATSResultTTL, MaxBytes: int64(cfg.NATSResultMB) << 20})
	if err == nil {
		cp.queue, err = cluster.OpenQueue(ctx, cl, cp.results)
	}
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("--nats: %w", err)
	}
	cp.metrics = newClusterMetrics(reg, cp.queue)
	cp.queue.OnPublish = cp.metrics.published.Inc
	return cp, nil
}

// newWorker makes the worker that runs jobs with filter.
func (cp *clusterParts) newWorker(cfg Config, filter plugin.Filter, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	w, err := cluster.NewWorker(ctx, cp.queue, cluster.WorkerConfig{
		Filters: []plugin.Filter{filter}, Concurrency: cfg.Workers, AckWait: cfg.NATSAckWait,
		WorkTimeout: cfg.WorkTimeout, OnJob: cp.metrics.onJob, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("--worker: %w", err)
	}
	cp.worker = w
	return nil
}

// runWorker runs the worker (if any) until ctx ends; the channel is closed when it has.
func (cp *clusterParts) runWorker(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if cp == nil || cp.worker == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		cp.worker.Run(ctx)
	}()
	return done
}

// openTimeout bounds connecting to NATS and loading the style library from it at start.
const openTimeout = 30 * time.Second

// openLibrary opens the style library: in the data folder, or with --nats in the cluster (and
// returns the connection, which the server keeps for the result tier, the queue and /readyz).
func openLibrary(cfg Config, tc styles.TargetComputer, log *slog.Logger) (*cluster.Conn, *styles.Library, error) {
	if cfg.NATS == "" {
		lib, err := styles.Open(cfg.DataDir, tc, log)
		if err != nil {
			return nil, nil, fmt.Errorf("--data: %w", err)
		}
		return nil, lib, nil
	}
	cl, store, err := OpenClusterStyles(ClusterConfig{URL: cfg.NATS, Creds: cfg.NATSCreds, Replicas: cfg.NATSReplicas}, "styleproxy serve", log)
	if err != nil {
		return nil, nil, err
	}
	return cl, styles.New(store, tc), nil
}

// ClusterConfig is how the commands reach NATS (--nats, --nats-creds, --nats-replicas).
type ClusterConfig struct {
	URL, Creds string
	Replicas   int
}

// OpenClusterStyles connects to the cluster and opens its style store, for serve, worker and
// the styles commands. Errors name the flag.
func OpenClusterStyles(cc ClusterConfig, name string, log *slog.Logger) (*cluster.Conn, *cluster.StyleStore, error) {
	cl, err := cluster.Connect(cluster.Config{URL: cc.URL, Creds: cc.Creds, Replicas: cc.Replicas, Name: name, Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("--nats: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	store, err := cluster.OpenStyles(ctx, cl)
	if err != nil {
		cl.Close()
		return nil, nil, fmt.Errorf("--nats: %w", err)
	}
	return cl, store, nil
}
