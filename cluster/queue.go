package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/plugin"
)

// The work queue: JobsStream, a work-queue stream on jobsSubject.KEY, holds one message per job
// (the job's fields in headers, the filter's query as the body); the stage's input is in the
// object store InputsBucket under the job's key. Workers pull jobs through the durable consumer
// WorkersConsumer and acknowledge each once its result is stored; one that dies leaves its job
// unacknowledged, and JetStream hands it to another worker after the ack wait. A worker
// announces a finished job (or its failure) on doneSubject+KEY, where requesters wait.
const (
	JobsStream      = "STYLEPROXY_JOBS"
	InputsBucket    = "styleproxy_job_inputs"
	WorkersConsumer = "workers"
	jobsSubject     = "styleproxy.jobs"
	doneSubject     = "styleproxy.done."
	jobMaxAge       = time.Hour // a job nobody took in an hour has no requester left
)

// Job message headers.
const (
	hdrKey      = "Styleproxy-Key"
	hdrPath     = "Styleproxy-Path"
	hdrFilter   = "Styleproxy-Filter"
	hdrStageKey = "Styleproxy-Stage-Key"
	hdrStatus   = "Styleproxy-Status" // on a done message: the failure's HTTP status
	hdrError    = "Styleproxy-Error"  // and its public message
)

// errRetry: a job that failed a moment ago was asked for again; the requester gets 503.
var errRetry error = &plugin.Error{Status: http.StatusServiceUnavailable, Msg: "the image's computation failed a moment ago; retry later"}

// pollEvery is how often a requester looks at the result store and the lease besides waiting
// for the done message (which a worker that died after storing its result never sent).
const pollEvery = time.Second

// Queue sends a replica's stages to the workers: a pipeline.Offloader.
type Queue struct {
	c       *Conn
	results *Results
	locks   *locks
	inputs  jetstream.ObjectStore
	stream  jetstream.Stream
	owner   string // this process, in the leases it takes
	// OnPublish, if set, is called for each job this replica publishes (for metrics).
	OnPublish func()
}

var _ pipeline.Offloader = (*Queue)(nil)

// OpenQueue opens (creating them if needed) the jobs stream and the inputs bucket.
func OpenQueue(ctx context.Context, c *Conn, results *Results) (*Queue, error) {
	q := &Queue{c: c, results: results, locks: results.locks, owner: c.nc.Opts.Name + "/" + rand.Text()}
	err := c.call(ctx, func(ctx context.Context) (err error) {
		q.stream, err = c.stream(ctx, jetstream.StreamConfig{
			Name: JobsStream, Description: "styleproxy: stylization jobs", Subjects: []string{jobsSubject + ".>"},
			Retention: jetstream.WorkQueuePolicy, MaxAge: jobMaxAge, Duplicates: 2 * time.Minute,
		})
		if err != nil {
			return err
		}
		q.inputs, err = c.objectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: InputsBucket, Description: "styleproxy: stage inputs of queued jobs", TTL: jobMaxAge,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: jobs stream: %w", err)
	}
	return q, nil
}

// Stage implements pipeline.Offloader: the stored result; else the computation another replica
// started; else a job this replica publishes, holding the key's lease.
func (q *Queue) Stage(ctx context.Context, job pipeline.StageJob) (pipeline.Entry, error) {
	if err := q.c.Healthy(); err != nil {
		return pipeline.Entry{}, err
	}
	sub, err := q.c.nc.SubscribeSync(doneSubject + job.Key)
	if err != nil {
		return pipeline.Entry{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer sub.Unsubscribe()
	lease := "job." + job.Key
	for attempt := 0; ; attempt++ {
		if e, ok := q.results.Get(job.Key); ok {
			return e, nil
		}
		won, err := q.locks.take(lease, q.owner)
		if err != nil {
			return pipeline.Entry{}, err
		}
		if won {
			if e, ok := q.results.Get(job.Key); ok { // stored as the lease was released
				q.locks.release(lease)
				return e, nil
			}
			if err := q.publish(job, attempt); err != nil {
				q.locks.release(lease)
				return pipeline.Entry{}, err
			}
		}
		e, ok, err := q.await(ctx, sub, job.Key, lease, won)
		if ok || err != nil {
			return e, err
		}
		// The lease is gone, or the job left the queue, and no result came: its holder died
		// before publishing, the job failed for a reason the next try may not meet, or JetStream
		// lost it. Try again.
	}
}

// publish stores the job's input, then sends the job (deduplicated by key and attempt within
// the stream's window, should two replicas ever both hold the lease).
func (q *Queue) publish(job pipeline.StageJob, attempt int) error {
	err := q.c.call(context.Background(), func(ctx context.Context) error {
		_, err := q.inputs.PutBytes(ctx, job.Key, job.Input)
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster: store a job's input: %w", err)
	}
	msg := nats.NewMsg(jobsSubject + "." + job.Key)
	msg.Header.Set(nats.MsgIdHdr, job.Key+"."+strconv.Itoa(attempt))
	msg.Header.Set(hdrKey, job.Key)
	msg.Header.Set(hdrPath, job.Path)
	msg.Header.Set(hdrFilter, job.Filter)
	msg.Header.Set(hdrStageKey, job.StageKey)
	msg.Data = []byte(job.Query.Encode())
	var ack *jetstream.PubAck
	err = q.c.call(context.Background(), func(ctx context.Context) (err error) {
		ack, err = q.c.js.PublishMsg(ctx, msg)
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster: publish a job: %w", err)
	}
	if ack.Duplicate {
		// The same job was published moments ago and has ended without a result (it failed):
		// JetStream dropped this copy, so nothing would answer. The client may retry.
		return errRetry
	}
	if q.OnPublish != nil {
		q.OnPublish()
	}
	return nil
}

// await waits for key's result: ok with the entry, or !ok when the lease went away without one
// or, for the job this replica published (mine), when the job left the queue without one.
func (q *Queue) await(ctx context.Context, sub *nats.Subscription, key, lease string, mine bool) (pipeline.Entry, bool, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, pollEvery)
		msg, err := sub.NextMsgWithContext(wctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return pipeline.Entry{}, false, err
		}
		if err := q.c.Healthy(); err != nil {
			return pipeline.Entry{}, false, err
		}
		if err == nil {
			if failed := doneError(msg); failed != nil {
				return pipeline.Entry{}, false, failed
			}
		}
		if e, ok := q.results.Get(key); ok {
			return e, true, nil
		}
		if held, err := q.locks.held(lease); err != nil || !held {
			return pipeline.Entry{}, false, err
		}
		if mine && !q.queued(key) {
			if _, ok := q.results.Get(key); !ok { // not stored and acknowledged meanwhile
				q.c.log.Warn("cluster: a job left the queue without a result; publishing it again", "key", key[:16])
				q.locks.release(lease)
				return pipeline.Entry{}, false, nil
			}
		}
	}
}

// queued reports whether key's job is still in the stream (waiting or running); a worker
// removes it only after storing the result or announcing a failure. Unknown counts as queued.
func (q *Queue) queued(key string) bool {
	err := q.c.call(context.Background(), func(ctx context.Context) error {
		_, err := q.stream.GetLastMsgForSubject(ctx, jobsSubject+"."+key)
		return err
	})
	return !errors.Is(err, jetstream.ErrMsgNotFound)
}

// doneError is the failure a done message reports, nil for a success.
func doneError(msg *nats.Msg) error {
	status, _ := strconv.Atoi(msg.Header.Get(hdrStatus))
	if status == 0 {
		return nil
	}
	return &plugin.Error{Status: status, Msg: "worker: " + msg.Header.Get(hdrError)}
}

// announce tells the requesters waiting on key that its job ended (err nil: the result is
// stored).
func announce(c *Conn, key string, err error) {
	msg := nats.NewMsg(doneSubject + key)
	if err != nil {
		status, public := plugin.Status(err)
		if status == http.StatusServiceUnavailable || status < http.StatusInternalServerError {
			public = err.Error()
		}
		msg.Header.Set(hdrStatus, strconv.Itoa(status))
		msg.Header.Set(hdrError, public)
	}
	if perr := c.nc.PublishMsg(msg); perr != nil {
		c.log.Warn("cluster: cannot announce a finished job; its requesters find the result by polling", "key", key, "error", perr.Error())
	}
}

// jobFromMsg reads a job message back (the input comes from InputsBucket).
func jobFromMsg(msg jetstream.Msg) (pipeline.StageJob, error) {
	h := msg.Headers()
	q, err := url.ParseQuery(string(msg.Data()))
	job := pipeline.StageJob{Key: h.Get(hdrKey), Path: h.Get(hdrPath), Filter: h.Get(hdrFilter), StageKey: h.Get(hdrStageKey), Query: q}
	if err == nil && (len(job.Key) != 64 || job.Filter == "") {
		err = errors.New("missing key or filter")
	}
	if err != nil {
		return job, fmt.Errorf("cluster: malformed job message: %w", err)
	}
	return job, nil
}

// QueueStats is the queue as the metrics show it.
type QueueStats struct {
	Waiting int // jobs no worker has taken
	Running int // jobs taken and not yet acknowledged
	Workers int // workers announcing themselves
}

// Stats reads the queue's state from JetStream.
func (q *Queue) Stats(ctx context.Context) (QueueStats, error) {
	var st QueueStats
	err := q.c.call(ctx, func(ctx context.Context) error {
		ci, err := q.stream.Consumer(ctx, WorkersConsumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			info, err := q.stream.Info(ctx)
			if err != nil {
				return err
			}
			st.Waiting = int(info.State.Msgs)
			return nil
		}
		if err != nil {
			return err
		}
		info := ci.CachedInfo()
		if fresh, err := ci.Info(ctx); err == nil {
			info = fresh
		}
		st.Waiting, st.Running = int(info.NumPending), info.NumAckPending
		kv, err := workersBucket(ctx, q.c)
		if err != nil {
			return err
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			return err
		}
		for range keys.Keys() {
			st.Workers++
		}
		return nil
	})
	return st, err
}
