package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/plugin"
)

// WorkersBucket holds one key per running worker, refreshed while it runs (the worker count).
const WorkersBucket = "styleproxy_workers"

const (
	presenceTTL   = 30 * time.Second
	presenceEvery = 10 * time.Second
	fetchWait     = 2 * time.Second
)

// DefaultAckWait is how long JetStream waits for a worker's word on a job before handing it to
// another worker; a live worker renews it every third of it, so a job may run for longer.
const DefaultAckWait = 30 * time.Second

// Job outcomes, as WorkerConfig.OnJob receives them.
const (
	JobCompleted   = "completed"   // computed and stored
	JobFailed      = "failed"      // the computation failed; requesters get the error
	JobDone        = "done"        // the result was stored already (a redelivery after a crash)
	JobRedelivered = "redelivered" // a job another worker had taken and not finished, taken again
)

// WorkerConfig configures a worker.
type WorkerConfig struct {
	// Filters parse and run the jobs: the same filters, configured alike, as the replicas'.
	Filters []plugin.Filter
	// Concurrency is how many jobs this worker runs at once.
	Concurrency int
	// AckWait: see DefaultAckWait (0 = that).
	AckWait time.Duration
	// WorkTimeout bounds one job's computation.
	WorkTimeout time.Duration
	// OnJob, if set, is told each job's outcome (one of the Job* constants) and, for completed
	// and failed jobs, how long it took.
	OnJob  func(outcome string, d time.Duration)
	Logger *slog.Logger
}

// Worker pulls jobs from the queue, runs each stage and stores its result.
type Worker struct {
	q    *Queue
	cfg  WorkerConfig
	cons jetstream.Consumer
	kv   jetstream.KeyValue
	id   string
}

// NewWorker joins the workers' consumer (creating it if needed).
func NewWorker(ctx context.Context, q *Queue, cfg WorkerConfig) (*Worker, error) {
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	w := &Worker{q: q, cfg: cfg, id: q.owner + "/" + rand.Text()[:8]}
	err := q.c.call(ctx, func(ctx context.Context) (err error) {
		w.cons, err = q.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: WorkersConsumer, Description: "styleproxy workers", AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: cfg.AckWait, FilterSubject: jobsSubject + ".>",
		})
		if err != nil {
			return err
		}
		w.kv, err = workersBucket(ctx, q.c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: join the workers: %w", err)
	}
	return w, nil
}

func workersBucket(ctx context.Context, c *Conn) (jetstream.KeyValue, error) {
	return c.keyValue(ctx, jetstream.KeyValueConfig{
		Bucket: WorkersBucket, Description: "styleproxy: running workers", History: 1, TTL: presenceTTL,
	})
}

// Run works until ctx ends, riding out losses of the NATS connection. A job in hand when ctx
// ends is given back to the queue at once.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.announce(ctx) }()
	for range w.cfg.Concurrency {
		wg.Add(1)
		go func() { defer wg.Done(); w.loop(ctx) }()
	}
	wg.Wait()
	return nil
}

// announce keeps this worker's key in WorkersBucket.
func (w *Worker) announce(ctx context.Context) {
	t := time.NewTicker(presenceEvery)
	defer t.Stop()
	for {
		_ = w.q.c.call(ctx, func(ctx context.Context) error { _, err := w.kv.Put(ctx, kvSafe(w.id), nil); return err })
		select {
		case <-ctx.Done():
			_ = w.q.c.call(context.Background(), func(ctx context.Context) error { return w.kv.Delete(ctx, kvSafe(w.id)) })
			return
		case <-t.C:
		}
	}
}

// kvSafe keeps what KV keys allow.
func kvSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

func (w *Worker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		if w.q.c.Healthy() != nil {
			sleep(ctx, 250*time.Millisecond)
			continue
		}
		batch, err := w.cons.Fetch(1, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			sleep(ctx, 250*time.Millisecond)
			continue
		}
		for msg := range batch.Messages() {
			w.handle(ctx, msg)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// handle runs one job: nothing is computed whose result is stored already, and the job is
// acknowledged only once its result is.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 {
		w.outcome(JobRedelivered, 0)
	}
	job, err := jobFromMsg(msg)
	if err != nil {
		w.cfg.Logger.Error("dropping a malformed job", "error", err.Error())
		_ = msg.Term()
		return
	}
	log := w.cfg.Logger.With("key", job.Key[:16], "path", job.Path)
	if done, err := w.q.results.has(job.Key); err != nil {
		_ = msg.Nak()
		return
	} else if done {
		announce(w.q.c, job.Key, nil)
		_ = msg.Ack()
		w.outcome(JobDone, 0)
		return
	}
	stop := w.keepAlive(msg, "job."+job.Key)
	start := time.Now()
	e, err := w.compute(ctx, &job)
	if err == nil {
		err = w.q.results.Put(job.Key, e)
	}
	stop()
	d := time.Since(start)
	switch {
	case ctx.Err() != nil: // shutting down: another worker takes it now
		_ = msg.Nak()
	case errors.Is(err, ErrUnavailable):
		log.Warn("job interrupted by the NATS connection; it will be redelivered", "error", err.Error())
	case err != nil:
		log.Error("job failed", "seconds", d.Seconds(), "error", err.Error())
		announce(w.q.c, job.Key, err)
		_ = msg.Term()
		w.q.locks.release("job." + job.Key)
		w.outcome(JobFailed, d)
	default:
		announce(w.q.c, job.Key, nil)
		if err := msg.DoubleAck(context.Background()); err != nil {
			log.Warn("job done but its acknowledgement was lost; a redelivery finds the result", "error", err.Error())
		}
		w.q.locks.release("job." + job.Key)
		w.deleteInput(job.Key)
		log.Info("job completed", "seconds", d.Seconds(), "bytes", len(e.Body))
		w.outcome(JobCompleted, d)
	}
}

// compute fetches the job's input and runs its stage.
func (w *Worker) compute(ctx context.Context, job *pipeline.StageJob) (pipeline.Entry, error) {
	err := w.q.c.call(ctx, func(ctx context.Context) (err error) {
		job.Input, err = w.q.inputs.GetBytes(ctx, job.Key)
		return err
	})
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return pipeline.Entry{}, fmt.Errorf("the job's input is gone (older than %s?)", jobMaxAge)
	}
	if err != nil {
		return pipeline.Entry{}, err
	}
	if w.cfg.WorkTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.cfg.WorkTimeout)
		defer cancel()
	}
	return pipeline.RunStage(ctx, w.cfg.Filters, *job, nil)
}

// keepAlive tells JetStream the job is in progress, and renews its lease, every third of the
// ack wait until stop is called.
func (w *Worker) keepAlive(msg jetstream.Msg, lease string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(w.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
				_ = w.q.locks.refresh(lease, w.id)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (w *Worker) deleteInput(key string) {
	_ = w.q.c.call(context.Background(), func(ctx context.Context) error { return w.q.inputs.Delete(ctx, key) })
}

func (w *Worker) outcome(o string, d time.Duration) {
	if w.cfg.OnJob != nil {
		w.cfg.OnJob(o, d)
	}
}
