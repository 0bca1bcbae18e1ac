package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/styleproxy/styleproxy/cluster"
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
	if c.NATSResultTTL < 0 || c.NATSResultMB < 0 {
		errs = append(errs, errors.New("--nats-result-ttl, --nats-result-mb: must be 0 or more"))
	}
	return errs
}

// Close closes the style library and the connection to the cluster (Run does at its end).
func (s *Server) Close() {
	s.Library.Close()
	if s.cluster != nil {
		s.cluster.Close()
	}
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

// openResults opens the cluster's shared result tier.
func openResults(cfg Config, cl *cluster.Conn) (*cluster.Results, error) {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	r, err := cluster.OpenResults(ctx, cl, cluster.ResultsConfig{TTL: cfg.NATSResultTTL, MaxBytes: int64(cfg.NATSResultMB) << 20})
	if err != nil {
		return nil, fmt.Errorf("--nats: %w", err)
	}
	return r, nil
}
