package style

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/engine"
)

// A request waiting for a bucket that has not started moves it to the front; the warmer compiles
// each bucket once and reports errors to the requests that wait for that bucket.
func TestWarmerServesWaitersFirst(t *testing.T) {
	a, b, c := engine.Bucket{W: 64, H: 48}, engine.Bucket{W: 48, H: 64}, engine.Bucket{W: 64, H: 64}
	gate := make(chan struct{})
	var mu sync.Mutex
	var order []engine.Bucket
	w := newWarmer([]engine.Bucket{a, b, c}, func(x engine.Bucket) error {
		mu.Lock()
		order = append(order, x)
		mu.Unlock()
		if x == a {
			<-gate // hold the first bucket until the waiter has asked for c
		}
		if x == b {
			return errors.New("boom")
		}
		return nil
	}, nil)
	w.start(1)
	for started := false; !started; time.Sleep(time.Millisecond) {
		mu.Lock()
		started = len(order) == 1
		mu.Unlock()
	}
	waited := make(chan error)
	go func() { waited <- w.wait(context.Background(), c) }()
	for deadline := time.Now().Add(5 * time.Second); ; {
		w.mu.Lock()
		front := len(w.queue) > 0 && w.queue[0] == c
		w.mu.Unlock()
		if front {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiter's bucket never moved to the front")
		}
		time.Sleep(time.Millisecond)
	}
	if got := w.warming(); len(got) != 3 {
		t.Errorf("warming() = %v while the first bucket compiles, want all three", got)
	}
	close(gate)
	if err := <-waited; err != nil {
		t.Errorf("wait(c) = %v", err)
	}
	if err := w.wait(context.Background(), b); err == nil || err.Error() != "boom" {
		t.Errorf("wait(b) = %v, want the compile error", err)
	}
	if !slices.Equal(order, []engine.Bucket{a, c, b}) {
		t.Errorf("compiled %v, want a, then the awaited c, then b", order)
	}
	if got := w.warming(); len(got) != 0 {
		t.Errorf("warming() = %v after all finished", got)
	}
	if err := w.wait(context.Background(), engine.Bucket{W: 1, H: 1}); err != nil {
		t.Errorf("wait on an unknown bucket = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w2 := newWarmer([]engine.Bucket{a}, func(engine.Bucket) error { return nil }, nil)
	if err := w2.wait(ctx, a); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context = %v", err)
	}
}
