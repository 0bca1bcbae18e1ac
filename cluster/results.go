package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/styleproxy/styleproxy/pipeline"
)

// ResultsBucket is the object store of computed results (outputs and stages) under their cache
// keys: the tier every replica shares behind its own memory cache, and where workers put what
// they compute.
const ResultsBucket = "styleproxy_results"

// ResultsConfig bounds the shared tier.
type ResultsConfig struct {
	// TTL is how long a result is kept after it was stored (0 = until MaxBytes is reached).
	TTL time.Duration
	// MaxBytes is the bucket's budget (0 = unbounded). A full bucket refuses new results until
	// TTL frees room; they are computed and served all the same, only not shared.
	MaxBytes int64
}

// Results is the shared result tier, a pipeline.SharedTier.
type Results struct {
	c     *Conn
	obj   jetstream.ObjectStore
	locks *locks
}

var _ pipeline.SharedTier = (*Results)(nil)

// OpenResults opens (creating it if needed) the results bucket.
func OpenResults(ctx context.Context, c *Conn, cfg ResultsConfig) (*Results, error) {
	r := &Results{c: c}
	err := c.call(ctx, func(ctx context.Context) (err error) {
		r.obj, err = c.objectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: ResultsBucket, Description: "styleproxy: results by cache key", TTL: cfg.TTL, MaxBytes: cfg.MaxBytes,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: results bucket: %w", err)
	}
	if r.locks, err = openLocks(ctx, c); err != nil {
		return nil, err
	}
	return r, nil
}

// Get implements pipeline.SharedTier: a missing, damaged or unreachable entry is a miss (the
// object store checks each object's SHA-256 digest as it reads).
func (r *Results) Get(key string) (pipeline.Entry, bool) {
	e, err := r.get(key)
	if err != nil {
		if !errors.Is(err, jetstream.ErrObjectNotFound) && !errors.Is(err, ErrUnavailable) {
			r.c.log.Warn("shared cache: read failed", "key", key, "error", err.Error())
		}
		return pipeline.Entry{}, false
	}
	return e, true
}

func (r *Results) get(key string) (pipeline.Entry, error) {
	var e pipeline.Entry
	err := r.c.call(context.Background(), func(ctx context.Context) error {
		res, err := r.obj.Get(ctx, key)
		if err != nil {
			return err
		}
		defer res.Close()
		body, err := io.ReadAll(res)
		if err != nil {
			return err
		}
		info, err := res.Info()
		if err != nil {
			return err
		}
		e = pipeline.Entry{ContentType: info.Headers.Get("Content-Type"), Body: body}
		return nil
	})
	return e, err
}

// Put implements pipeline.SharedTier. A key's bytes never change, so a key stored already, or
// being stored by another process, is left alone: one writer per object, and readers never
// meet an object being replaced.
func (r *Results) Put(key string, e pipeline.Entry) error {
	if ok, err := r.has(key); ok || err != nil {
		return err
	}
	lease := "put." + key
	if ok, err := r.locks.take(lease, ""); !ok || err != nil {
		if err != nil {
			return err
		}
		return r.awaitWriter(key, lease)
	}
	defer r.locks.release(lease)
	if ok, err := r.has(key); ok || err != nil { // stored by a writer that held the lease before
		return err
	}
	err := r.c.call(context.Background(), func(ctx context.Context) error {
		_, err := r.obj.Put(ctx, jetstream.ObjectMeta{Name: key, Headers: nats.Header{"Content-Type": {e.ContentType}}}, bytes.NewReader(e.Body))
		return err
	})
	if err != nil {
		return fmt.Errorf("shared cache: %w", err)
	}
	return nil
}

// awaitWriter waits for another process's write of key to end, so that a Get after Put finds
// the entry as it would after a write of its own.
func (r *Results) awaitWriter(key, lease string) error {
	for deadline := time.Now().Add(opTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok, err := r.has(key); ok || err != nil {
			return err
		}
		if held, err := r.locks.held(lease); !held || err != nil {
			return err
		}
	}
	return nil
}

// has reports whether key is stored (a worker checks it before computing a redelivered job).
func (r *Results) has(key string) (bool, error) {
	err := r.c.call(context.Background(), func(ctx context.Context) error {
		_, err := r.obj.GetInfo(ctx, key)
		return err
	})
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	return err == nil, err
}
