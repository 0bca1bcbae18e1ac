package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LocksBucket holds leases: "job.KEY" while a key's computation is queued or running (one
// computation per key across the cluster), "put.KEY" while a result is being stored (one writer
// per object). A lease is a KV Create, which only one caller wins; the bucket's TTL frees the
// leases of processes that died holding them, and a worker refreshes its job's lease as it
// works.
const LocksBucket = "styleproxy_locks"

// LeaseTTL is how long a lease outlives its last refresh.
const LeaseTTL = 10 * time.Minute

type locks struct {
	c  *Conn
	kv jetstream.KeyValue
}

func openLocks(ctx context.Context, c *Conn) (*locks, error) {
	l := &locks{c: c}
	err := c.call(ctx, func(ctx context.Context) (err error) {
		l.kv, err = c.keyValue(ctx, jetstream.KeyValueConfig{
			Bucket: LocksBucket, Description: "styleproxy: leases of computations and writes", History: 1, TTL: LeaseTTL,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: locks bucket: %w", err)
	}
	return l, nil
}

// take creates the lease name for owner; false when someone holds it.
func (l *locks) take(name, owner string) (bool, error) {
	err := l.c.call(context.Background(), func(ctx context.Context) error {
		_, err := l.kv.Create(ctx, name, []byte(owner))
		return err
	})
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	return err == nil, err
}

// refresh restarts the lease's TTL (taking it if it had expired).
func (l *locks) refresh(name, owner string) error {
	return l.c.call(context.Background(), func(ctx context.Context) error {
		_, err := l.kv.Put(ctx, name, []byte(owner))
		return err
	})
}

// release gives the lease up; a failure leaves it to the TTL.
func (l *locks) release(name string) {
	err := l.c.call(context.Background(), func(ctx context.Context) error { return l.kv.Delete(ctx, name) })
	if err != nil {
		l.c.log.Warn("cluster: cannot release a lease; it expires by itself", "lease", name, "error", err.Error())
	}
}

// held reports whether anyone holds the lease.
func (l *locks) held(name string) (bool, error) {
	err := l.c.call(context.Background(), func(ctx context.Context) error {
		_, err := l.kv.Get(ctx, name)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return false, nil
	}
	return err == nil, err
}
