package style

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/styleproxy/styleproxy/engine"
)

// batcher runs stylizations that share a work shape and options together, up to size at a time
// (--gpu-batch): a GPU runs a batch of small images in about the time of one. A stylization never
// waits for company: one that finds its shape idle starts at once, and those that arrive while a
// batch runs go together in the next. A batch of fewer than size is padded to size (by repeating
// its first image), so that each shape needs two compiled programs, one image and size images,
// both compiled at start-up.
type batcher struct {
	eng     *engine.Engine
	size    int
	onBatch func(n int)

	mu      sync.Mutex
	queues  map[batchKey][]*batchJob
	running map[batchKey]bool
}

type batchKey struct {
	h, w int
	opt  engine.Options
}

type batchJob struct {
	ctx      context.Context
	content  *engine.Image
	style    engine.StyleTargets
	weights  engine.Weights
	progress engine.Progress
	done     chan batchResult
}

type batchResult struct {
	out  *engine.Image
	hist []engine.Losses
	err  error
}

func newBatcher(eng *engine.Engine, size int, onBatch func(int)) *batcher {
	return &batcher{eng: eng, size: size, onBatch: onBatch, queues: map[batchKey][]*batchJob{}, running: map[batchKey]bool{}}
}

// transfer is engine.Transfer, run in a batch with whatever stylizations of the same shape and
// options are waiting.
func (b *batcher) transfer(ctx context.Context, content *engine.Image, style engine.StyleTargets, w engine.Weights, opt engine.Options, progress engine.Progress) (*engine.Image, []engine.Losses, error) {
	j := &batchJob{ctx: ctx, content: content, style: style, weights: w, progress: progress, done: make(chan batchResult, 1)}
	key := batchKey{h: content.H, w: content.W, opt: opt}
	b.mu.Lock()
	b.queues[key] = append(b.queues[key], j)
	if !b.running[key] {
		b.running[key] = true
		go b.run(key)
	}
	b.mu.Unlock()
	select {
	case r := <-j.done:
		return r.out, r.hist, r.err
	case <-ctx.Done():
		return nil, nil, ctx.Err() // the batch runs on for the others; its result for j is dropped
	}
}

// run takes batches off key's queue until it is empty.
func (b *batcher) run(key batchKey) {
	for {
		jobs := b.take(key)
		if len(jobs) == 0 {
			return
		}
		b.runBatch(key.opt, jobs)
	}
}

// take removes up to size waiting jobs whose requests are still alive; with none, it marks key
// idle.
func (b *batcher) take(key batchKey) []*batchJob {
	b.mu.Lock()
	defer b.mu.Unlock()
	var jobs []*batchJob
	q := b.queues[key]
	for len(q) > 0 && len(jobs) < b.size {
		j := q[0]
		q = q[1:]
		if j.ctx.Err() == nil {
			jobs = append(jobs, j)
		}
	}
	b.queues[key] = q
	if len(jobs) == 0 {
		delete(b.queues, key)
		delete(b.running, key)
	}
	return jobs
}

// runBatch stylizes jobs together. The batch stops early only when every request in it has
// gone; each hears progress and gets its own result.
func (b *batcher) runBatch(opt engine.Options, jobs []*batchJob) {
	if b.onBatch != nil {
		b.onBatch(len(jobs))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var alive atomic.Int64
	alive.Store(int64(len(jobs)))
	for _, j := range jobs {
		stop := context.AfterFunc(j.ctx, func() {
			if alive.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	n := len(jobs)
	if n > 1 {
		n = b.size
	}
	contents, styles, ws := make([]*engine.Image, n), make([]engine.StyleTargets, n), make([]engine.Weights, n)
	for i := range n {
		j := jobs[0]
		if i < len(jobs) {
			j = jobs[i]
		}
		contents[i], styles[i], ws[i] = j.content, j.style, j.weights
	}
	outs, hists, err := b.eng.TransferBatch(ctx, contents, styles, ws, opt, func(k, n int, l engine.Losses) {
		for _, j := range jobs {
			if j.progress != nil && j.ctx.Err() == nil {
				j.progress(k, n, l)
			}
		}
	})
	for i, j := range jobs {
		r := batchResult{err: err}
		if i < len(hists) {
			r.hist = hists[i]
		}
		if err == nil {
			r.out = outs[i]
		}
		j.done <- r
	}
}
