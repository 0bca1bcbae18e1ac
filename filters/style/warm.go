package style

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/styleproxy/styleproxy/engine"
)

// warmer compiles the engine for every bucket in the background and lets requests wait for
// theirs: a request never compiles, and one whose bucket is still queued moves it to the front.
type warmer struct {
	warm   func(b engine.Bucket) error
	report func(b engine.Bucket, d time.Duration, err error)

	mu    sync.Mutex
	queue []engine.Bucket // not started, in order
	cold  []engine.Bucket // not finished (queued or compiling), in order
	done  map[engine.Bucket]chan struct{}
	errs  map[engine.Bucket]error
}

func newWarmer(buckets []engine.Bucket, warm func(engine.Bucket) error, report func(engine.Bucket, time.Duration, error)) *warmer {
	w := &warmer{warm: warm, report: report, queue: slices.Clone(buckets), cold: slices.Clone(buckets),
		done: map[engine.Bucket]chan struct{}{}, errs: map[engine.Bucket]error{}}
	for _, b := range buckets {
		w.done[b] = make(chan struct{})
	}
	return w
}

// warmWorkers is how many buckets compile at once: XLA compiles one program on a core or two, so
// a many-core GPU host warms faster with several at once, while a small host keeps a core free.
func warmWorkers() int { return min(max(runtime.GOMAXPROCS(0)/2, 1), 4) }

// start compiles the buckets on n goroutines, which end when every bucket is done.
func (w *warmer) start(n int) {
	for range n {
		go func() {
			for {
				b, ok := w.next()
				if !ok {
					return
				}
				start := time.Now()
				err := w.warm(b)
				if w.report != nil {
					w.report(b, time.Since(start), err)
				}
				w.finish(b, err)
			}
		}()
	}
}

func (w *warmer) next() (engine.Bucket, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return engine.Bucket{}, false
	}
	b := w.queue[0]
	w.queue = w.queue[1:]
	return b, true
}

func (w *warmer) finish(b engine.Bucket, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs[b] = err
	w.cold = slices.DeleteFunc(w.cold, func(c engine.Bucket) bool { return c == b })
	close(w.done[b])
}

// wait returns once bucket b is compiled (with the error compiling it gave), moving it to the
// front of the queue if it has not started. A bucket the warmer does not know returns at once.
func (w *warmer) wait(ctx context.Context, b engine.Bucket) error {
	w.mu.Lock()
	ch, ok := w.done[b]
	if i := slices.Index(w.queue, b); i > 0 {
		w.queue = slices.Insert(slices.Delete(w.queue, i, i+1), 0, b)
	}
	w.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-ch:
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.errs[b]
	case <-ctx.Done():
		return ctx.Err()
	}
}

// warming lists the buckets not compiled yet, in their planned order.
func (w *warmer) warming() []engine.Bucket {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.cold)
}
