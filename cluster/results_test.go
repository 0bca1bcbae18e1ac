package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/internal/natstest"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/pipeline/cachetest"
)

func openResults(t *testing.T, c *Conn) *Results {
	t.Helper()
	r, err := OpenResults(context.Background(), c, ResultsConfig{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The shared tier passes the same conformance test as the memory and disk tiers, and two
// replicas' caches share its entries.
func TestResultsConformance(t *testing.T) {
	srv := natstest.Start(t)
	cachetest.Run(t, pipeline.TierShared, true, func(t *testing.T) *pipeline.Cache {
		c, err := pipeline.NewCache(pipeline.CacheConfig{Shared: openResults(t, connect(t, srv))})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

// While NATS is down the shared tier misses at once (no hang) and Put fails; both work again
// once it is back.
func TestResultsWhileNATSIsDown(t *testing.T) {
	srv := natstest.Start(t)
	r := openResults(t, connect(t, srv))
	k := cachetest.Key("x")
	if err := r.Put(k, pipeline.Entry{ContentType: "image/png", Body: []byte("png")}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for r.c.Healthy() == nil { // the client notices the server is gone
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if _, ok := r.Get(k); ok {
		t.Error("a hit while NATS is down")
	}
	if err := r.Put(cachetest.Key("y"), pipeline.Entry{Body: []byte("y")}); err == nil {
		t.Error("Put succeeded while NATS is down")
	}
	if d := time.Since(start); d > opTimeout {
		t.Errorf("took %s while NATS is down; want an answer at once", d)
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if e, ok := r.Get(k); ok && string(e.Body) == "png" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry is not served after NATS came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
