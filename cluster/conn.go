package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/styleproxy/styleproxy/plugin"
)

// Config says how to reach the cluster.
type Config struct {
	// URL is the NATS server, or several separated by commas; tls:// turns on TLS.
	URL string
	// Creds is a NATS credentials file (a user JWT and its seed); "" for none.
	Creds string
	// Replicas is how many copies JetStream keeps of each bucket and stream (1 for a single
	// server, 3 on a three-node cluster). Buckets that exist keep their settings.
	Replicas int
	// Name identifies this process to the server (its connection name).
	Name string
	// Logger receives connection events (default slog.Default()).
	Logger *slog.Logger
}

// opTimeout bounds each JetStream call, so a request fails instead of hanging on a cluster
// that cannot answer.
const opTimeout = 5 * time.Second

// ErrUnavailable is the answer while the connection to NATS is down: 503, and the caller may
// retry once it returns.
var ErrUnavailable error = &plugin.Error{Status: http.StatusServiceUnavailable, Msg: "the cluster (NATS) is unreachable"}

// Conn is a connection to the cluster's NATS servers, reconnecting for ever.
type Conn struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	replicas int
	log      *slog.Logger

	mu   sync.Mutex
	lost chan struct{} // closed when the connection drops, replaced when it is back
}

// Connect dials the cluster. It fails when no server answers now; later losses of the
// connection are retried in the background (Healthy reports them).
func Connect(cfg Config) (*Conn, error) {
	if cfg.URL == "" {
		return nil, errors.New("cluster: no NATS URL")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Conn{replicas: max(cfg.Replicas, 1), log: log, lost: make(chan struct{})}
	opts := []nats.Option{
		nats.Name(cfg.Name), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(opTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.setLost(true)
			if err != nil { // nil: closed on purpose
				log.Warn("NATS connection lost", "error", err.Error())
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("NATS asynchronous error", "subject", subject, "error", err.Error())
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.setLost(false)
			log.Info("NATS connection back", "server", nc.ConnectedUrlRedacted())
		}),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if strings.HasPrefix(cfg.URL, "tls://") {
		opts = append(opts, nats.Secure())
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to %s: %w", redact(cfg.URL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.nc, c.js = nc, js
	return c, nil
}

// setLost closes the lost channel (the connection dropped) or opens a new one (it is back).
func (c *Conn) setLost(lost bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.lost:
		if !lost {
			c.lost = make(chan struct{})
		}
	default:
		if lost {
			close(c.lost)
		}
	}
}

func (c *Conn) lostCh() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// redact drops user:password from a URL for error messages.
func redact(u string) string {
	if at := strings.LastIndex(u, "@"); at >= 0 {
		if i := strings.Index(u, "://"); i >= 0 && i < at {
			return u[:i+3] + "***" + u[at:]
		}
	}
	return u
}

// Close drains nothing and closes the connection.
func (c *Conn) Close() { c.nc.Close() }

// Healthy is nil while the connection is up, else ErrUnavailable with the reason.
func (c *Conn) Healthy() error {
	if s := c.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("%w: connection %s", ErrUnavailable, strings.ToLower(s.String()))
	}
	return nil
}

// call runs one JetStream operation with opTimeout, failing at once while disconnected (a
// disconnected client would otherwise buffer the request and wait out the timeout).
func (c *Conn) call(ctx context.Context, op func(ctx context.Context) error) error {
	if err := c.Healthy(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	lost := c.lostCh()
	go func() { // a call in flight when the connection drops fails then, not at its timeout
		select {
		case <-lost:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := op(ctx)
	if err != nil && (c.Healthy() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat)) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// keyValue opens cfg's bucket, creating it with cfg when missing: a bucket that exists keeps the
// settings it has (an operator's, or the first replica's), whatever this process was told.
func (c *Conn) keyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = c.replicas
	return openOrCreate(ctx, cfg.Bucket, c.js.KeyValue,
		func(ctx context.Context) (jetstream.KeyValue, error) { return c.js.CreateKeyValue(ctx, cfg) },
		jetstream.ErrBucketNotFound, jetstream.ErrBucketExists)
}

// objectStore is keyValue for object stores.
func (c *Conn) objectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = c.replicas
	return openOrCreate(ctx, cfg.Bucket, c.js.ObjectStore,
		func(ctx context.Context) (jetstream.ObjectStore, error) { return c.js.CreateObjectStore(ctx, cfg) },
		jetstream.ErrBucketNotFound, jetstream.ErrBucketExists)
}

// stream is keyValue for streams.
func (c *Conn) stream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = c.replicas
	return openOrCreate(ctx, cfg.Name, c.js.Stream,
		func(ctx context.Context) (jetstream.Stream, error) { return c.js.CreateStream(ctx, cfg) },
		jetstream.ErrStreamNotFound, jetstream.ErrStreamNameAlreadyInUse)
}

// openOrCreate opens name, creating it when open answers notFound; when another process creates
// it meanwhile (create answers exists), it opens the one that process made.
func openOrCreate[T any](ctx context.Context, name string, open func(context.Context, string) (T, error),
	create func(context.Context) (T, error), notFound, exists error) (T, error) {
	v, err := open(ctx, name)
	if errors.Is(err, notFound) {
		if v, err = create(ctx); errors.Is(err, exists) {
			v, err = open(ctx, name)
		}
	}
	return v, err
}
