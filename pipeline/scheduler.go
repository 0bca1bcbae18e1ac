package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"sort"
	"sync/atomic"
	"time"

	"github.com/styleproxy/styleproxy/plugin"
)

// ErrQueueFull is the answer to heavy work beyond the workers and the queue: 503 with
// Retry-After.
var ErrQueueFull error = &plugin.Error{Status: http.StatusServiceUnavailable, Msg: "too busy: the work queue is full"}

// Job is a heavy computation holding a worker, for progress displays.
type Job struct {
	Key  string `json:"key"`  // the cache key: an output's ETag without quotes, or a stage's key
	Path string `json:"path"` // the source image's path
	// Step of Total steps are done, as the heavy filter reports them (0 of 0 before its first).
	Step  int `json:"step"`
	Total int `json:"total"`
}

type job struct {
	key, path   string
	started     time.Time
	running     bool
	step, total atomic.Int64
}

// QueueFull reports whether new heavy work would be refused now (503).
func (p *Pipeline) QueueFull() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.admitted >= p.cfg.Workers+p.cfg.Queue
}

// Queued returns how many heavy computations are waiting for a worker.
func (p *Pipeline) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.admitted - p.running
}

// Waiting returns how many requests are waiting for a computation (their own or one they
// joined).
func (p *Pipeline) Waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting
}

// Running returns the heavy computations holding a worker, oldest first, with their progress.
func (p *Pipeline) Running() []Job {
	p.mu.Lock()
	var js []*job
	for _, j := range p.jobs {
		if j.running {
			js = append(js, j)
		}
	}
	p.mu.Unlock()
	sort.Slice(js, func(a, b int) bool { return js[a].started.Before(js[b].started) })
	out := make([]Job, len(js))
	for i, j := range js {
		out[i] = Job{Key: j.key, Path: j.path, Step: int(j.step.Load()), Total: int(j.total.Load())}
	}
	return out
}

// Wait blocks until no computation is running (those whose requesters left included), or ctx
// ends: call it after the HTTP server has shut down, so that finished results reach the cache.
func (p *Pipeline) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.inflight == 0 {
			p.mu.Unlock()
			return nil
		}
		idle := p.idle
		p.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *Pipeline) lookup(key string) (Entry, bool) {
	e, tier, ok, looked := p.cfg.Cache.get(key)
	if h := p.cfg.Hooks.OnCache; h != nil {
		for _, t := range looked {
			h(t, ok && t == tier)
		}
	}
	return e, ok
}

// flight is one computation, shared by everyone who asks for its key at the same time: an
// output (an /img response) or a stage (a staged filter's intermediate).
type flight struct {
	key, path string
	id        string          // the request id of the request that started it, for log lines
	heavy     bool            // needs a worker (and a place in the queue)
	parent    context.Context // for values; the flight runs detached from its cancellation
	steps     []step
	s         *processing
}

// await joins or starts the computation of r and waits for it or for ctx. The computation runs
// detached: it goes on (and its result is cached) when every requester has left.
func (p *Pipeline) await(ctx context.Context, r *request) (Entry, error) {
	p.mu.Lock()
	p.waiting++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
	}()
	return p.join(ctx, p.outputFlight(r))
}

// join joins or starts f and waits for its result or for ctx.
func (p *Pipeline) join(ctx context.Context, f *flight) (Entry, error) {
	ch := p.sf.DoChan(f.key, func() (any, error) { return p.run(f) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return Entry{}, res.Err
		}
		return res.Val.(Entry), nil
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
}

// track counts a computation in flight, for Wait; call the function it returns when it ends.
func (p *Pipeline) track() (done func()) {
	p.mu.Lock()
	if p.inflight == 0 {
		p.idle = make(chan struct{})
	}
	p.inflight++
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		if p.inflight--; p.inflight == 0 {
			close(p.idle)
		}
		p.mu.Unlock()
	}
}

// run is one flight: admitted to the queue if heavy, its steps run in order, its result cached.
func (p *Pipeline) run(f *flight) (e Entry, err error) {
	defer p.track()()
	defer func() {
		if v := recover(); v != nil {
			p.cfg.Logger.Error("panic computing an image", "id", f.id, "path", f.path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("pipeline: panic computing %s: %v", f.path, v)
		}
	}()

	// A flight that finished between this one's cache miss and its start has stored its
	// result already: computing it again would be waste.
	if e, _, ok := p.cfg.Cache.Get(f.key); ok {
		return e, nil
	}
	s := f.s
	s.ctx = context.WithoutCancel(f.parent)
	defer s.release()
	switch {
	case f.heavy:
		if s.j, err = p.admit(f.key, f.path); err != nil {
			return Entry{}, err
		}
		defer p.finish(s.j)
	case s.r.staged == nil:
		// Light work takes its slot (or its 503) before it fetches anything; an output that
		// waits for a stage takes it only once the stage is there (hold).
		if s.releaseLight, err = p.admitLight(s.ctx); err != nil {
			return Entry{}, err
		}
	}
	err = s.run(f.steps)
	d := time.Since(s.started)
	if h := p.cfg.Hooks.OnWorkEnd; h != nil && !s.started.IsZero() {
		h(f.heavy, d, err)
	}
	if err != nil {
		p.cfg.Logger.Debug("image failed", "id", f.id, "path", f.path, "key", f.key[:16], "seconds", d.Seconds(), "error", err.Error())
		return Entry{}, err
	}
	if s.cacheable {
		put := p.cfg.Cache.Put
		if s.remote {
			put = p.cfg.Cache.putLocal
		}
		if err := put(f.key, s.out); err != nil {
			p.cfg.Logger.Warn("caching an image failed", "id", f.id, "path", f.path, "key", f.key[:16], "error", err.Error())
		}
	}
	p.cfg.Logger.Info("image computed", "id", f.id, "path", f.path, "key", f.key[:16], "heavy", f.heavy,
		"seconds", d.Seconds(), "bytes", len(s.out.Body), "cached", s.cacheable && p.cfg.Cache != nil)
	return s.out, nil
}

// hold waits for what s's work needs: a worker for heavy work (the queue's order), a light
// slot for the rest. The work's deadline, WorkTimeout, starts once it holds it.
func (p *Pipeline) hold(s *processing) error {
	if s.j != nil {
		if err := p.work(s.ctx, s.j); err != nil {
			return err
		}
	} else if s.releaseLight == nil {
		release, err := p.admitLight(s.ctx)
		if err != nil {
			return err
		}
		s.releaseLight = release
	}
	s.ctx, s.cancel = context.WithTimeout(s.ctx, p.cfg.WorkTimeout)
	s.started = time.Now()
	if h := p.cfg.Hooks.OnWorkStart; h != nil {
		h(s.j != nil)
	}
	return nil
}

// admit reserves a place among the workers and the queue for a heavy computation.
func (p *Pipeline) admit(key, path string) (*job, error) {
	p.mu.Lock()
	if p.admitted >= p.cfg.Workers+p.cfg.Queue {
		p.mu.Unlock()
		return nil, ErrQueueFull
	}
	p.admitted++
	j := &job{key: key, path: path, started: time.Now()}
	p.jobs[key] = j
	queued, running := p.admitted-p.running, p.running
	p.mu.Unlock()
	p.queueChanged(queued, running)
	return j, nil
}

// admitLight waits for a light slot, refusing work beyond the slots and LightQueue.
func (p *Pipeline) admitLight(ctx context.Context) (release func(), err error) {
	p.mu.Lock()
	if p.lightAdmitted >= cap(p.light)+p.cfg.LightQueue {
		p.mu.Unlock()
		return nil, ErrQueueFull
	}
	p.lightAdmitted++
	p.mu.Unlock()
	leave := func() {
		p.mu.Lock()
		p.lightAdmitted--
		p.mu.Unlock()
	}
	select {
	case p.light <- struct{}{}:
		return func() { <-p.light; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// work waits for a worker for j.
func (p *Pipeline) work(ctx context.Context, j *job) error {
	select {
	case p.heavy <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	j.running = true
	j.started = time.Now()
	p.running++
	queued, running := p.admitted-p.running, p.running
	p.mu.Unlock()
	p.queueChanged(queued, running)
	return nil
}

// finish gives back j's worker (if it got one) and its place.
func (p *Pipeline) finish(j *job) {
	p.mu.Lock()
	if j.running {
		p.running--
		<-p.heavy
	}
	p.admitted--
	delete(p.jobs, j.key)
	queued, running := p.admitted-p.running, p.running
	p.mu.Unlock()
	p.queueChanged(queued, running)
}

func (p *Pipeline) queueChanged(queued, running int) {
	if h := p.cfg.Hooks.OnQueue; h != nil {
		h(queued, running)
	}
}

// progress is where a computation's filters report their steps.
func (j *job) progress(k, n int) {
	if j != nil {
		j.step.Store(int64(k))
		j.total.Store(int64(n))
	}
}
