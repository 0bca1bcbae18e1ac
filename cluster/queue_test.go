package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/internal/natstest"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/pipeline/cachetest"
	"github.com/styleproxy/styleproxy/plugin"
)

// invert is a staged filter for the queue's tests: its stage inverts the image, counting its
// runs, and waits for release first when hold is set.
type invert struct {
	stages atomic.Int64
	hold   chan struct{}
}

func (f *invert) Name() string     { return "invert" }
func (f *invert) Params() []string { return []string{"invert"} }
func (f *invert) Parse(_ context.Context, q url.Values) (plugin.Options, error) {
	if !q.Has("invert") {
		return nil, nil
	}
	return &invertOptions{f: f, v: q.Get("invert")}, nil
}

type invertOptions struct {
	f *invert
	v string
}

func (o *invertOptions) Key() string      { return "invert=" + o.v }
func (o *invertOptions) StageKey() string { return "invert=" + o.v }
func (o *invertOptions) Heavy() bool      { return true }
func (o *invertOptions) StageSize(w, h int) (int, int, error) {
	return w, h, nil
}
func (o *invertOptions) Apply(context.Context, *imaging.Image, plugin.Progress) (*imaging.Image, error) {
	return nil, errors.New("not used")
}
func (o *invertOptions) Finish(_ context.Context, img, _ *imaging.Image) (*imaging.Image, error) {
	return img, nil
}
func (o *invertOptions) Stage(ctx context.Context, img *imaging.Image, _ plugin.Progress) (*imaging.Image, error) {
	if o.f.hold != nil {
		select {
		case <-o.f.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	o.f.stages.Add(1)
	rgb, err := img.RGB()
	if err != nil {
		return nil, err
	}
	for i := range rgb.Pix {
		rgb.Pix[i] = 255 - rgb.Pix[i]
	}
	return imaging.FromRGB(rgb)
}

func pngImage(t *testing.T, seed int) []byte {
	t.Helper()
	pix := make([]byte, 3*16*16)
	for i := range pix {
		pix[i] = byte(i*seed + seed)
	}
	im, err := imaging.FromRGB(&imaging.RGB{Width: 16, Height: 16, Pix: pix})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	b, err := im.Encode(imaging.PNG, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stageJob(t *testing.T, i int) pipeline.StageJob {
	v := fmt.Sprint(i)
	return pipeline.StageJob{Key: cachetest.Key("job" + v), Path: "p" + v, Filter: "invert",
		Query: url.Values{"invert": {v}}, StageKey: "invert=" + v, Input: pngImage(t, i+1)}
}

func openQueue(t *testing.T, c *Conn) *Queue {
	t.Helper()
	q, err := OpenQueue(context.Background(), c, openResults(t, c))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// startWorker runs a worker on its own connection until the test ends or stop is called.
func startWorker(t *testing.T, srv *natstest.Server, f plugin.Filter, ackWait time.Duration) (c *Conn, stop func()) {
	t.Helper()
	c = connect(t, srv)
	w, err := NewWorker(context.Background(), openQueue(t, c), WorkerConfig{Filters: []plugin.Filter{f}, AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return c, stop
}

// Two replicas asking for ten keys, ten times each at once (five through each replica), get every result from one
// computation per key, and the same bytes.
func TestOneComputationPerKey(t *testing.T) {
	srv := natstest.Start(t)
	f := &invert{}
	startWorker(t, srv, f, DefaultAckWait)
	replicas := []*Queue{openQueue(t, connect(t, srv)), openQueue(t, connect(t, srv))}
	var published atomic.Int64
	for _, q := range replicas {
		q.OnPublish = func() { published.Add(1) }
	}
	results := make([][][]byte, 10)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 10 {
		for n := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e, err := replicas[n%2].Stage(context.Background(), stageJob(t, i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				results[i] = append(results[i], e.Body)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if n := f.stages.Load(); n != 10 {
		t.Errorf("%d computations for 10 keys", n)
	}
	if n := published.Load(); n != 10 {
		t.Errorf("%d jobs published for 10 keys", n)
	}
	for i, bodies := range results {
		for _, b := range bodies[1:] {
			if !bytes.Equal(b, bodies[0]) {
				t.Errorf("key %d: requesters got different bytes", i)
			}
		}
	}
	st, err := replicas[0].Stats(context.Background())
	if err != nil || st.Waiting != 0 || st.Running != 0 || st.Workers != 1 {
		t.Errorf("Stats = %+v, %v; want an empty queue and one worker", st, err)
	}
}

// A worker that vanishes mid-job (its connection gone, its job unacknowledged) has the job
// redelivered after the ack wait, and another worker completes it.
func TestJobOfALostWorkerIsRedelivered(t *testing.T) {
	srv := natstest.Start(t)
	stuck := &invert{hold: make(chan struct{})}
	c1, stop1 := startWorker(t, srv, stuck, time.Second)
	q := openQueue(t, connect(t, srv))
	res := make(chan error, 1)
	go func() { _, err := q.Stage(context.Background(), stageJob(t, 1)); res <- err }()
	waitUntil(t, "the first worker to take the job", func() bool {
		st, _ := q.Stats(context.Background())
		return st.Running == 1
	})
	c1.Close() // as if killed: no ack, no nak
	go stop1()
	good := &invert{}
	startWorker(t, srv, good, time.Second)
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the job was not completed after its worker vanished")
	}
	if good.stages.Load() != 1 || stuck.stages.Load() != 0 {
		t.Errorf("computations: %d by the second worker, %d by the lost one; want 1 and 0", good.stages.Load(), stuck.stages.Load())
	}
	close(stuck.hold)
}

// A failing job's error reaches its requester with its status, and is not retried for ever.
func TestFailedJobReachesTheRequester(t *testing.T) {
	srv := natstest.Start(t)
	startWorker(t, srv, &invert{}, DefaultAckWait)
	q := openQueue(t, connect(t, srv))
	job := stageJob(t, 1)
	job.Input = []byte("not an image")
	_, err := q.Stage(context.Background(), job)
	if status, _ := plugin.Status(err); status != 415 {
		t.Errorf("Stage = %v (status %d), want the worker's 415", err, status)
	}
}

// While NATS is down Stage answers 503 at once.
func TestQueueWhileNATSIsDown(t *testing.T) {
	srv := natstest.Start(t)
	q := openQueue(t, connect(t, srv))
	srv.Stop()
	waitUntil(t, "the client to notice", func() bool { return q.c.Healthy() != nil })
	start := time.Now()
	_, err := q.Stage(context.Background(), stageJob(t, 1))
	if status, _ := plugin.Status(err); status != 503 || time.Since(start) > time.Second {
		t.Errorf("Stage = %v (status %d) after %s; want 503 at once", err, status, time.Since(start))
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}

// A job that leaves the queue without a result (lost: here, purged) is published again by the
// replica that published it, and its requester still gets the result.
func TestLostJobIsPublishedAgain(t *testing.T) {
	srv := natstest.Start(t)
	q := openQueue(t, connect(t, srv))
	res := make(chan error, 1)
	go func() { _, err := q.Stage(context.Background(), stageJob(t, 1)); res <- err }()
	waitUntil(t, "the job to be queued", func() bool {
		st, _ := q.Stats(context.Background())
		return st.Waiting == 1
	})
	if err := q.stream.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &invert{}
	startWorker(t, srv, f, DefaultAckWait)
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the lost job was not published again")
	}
	if n := f.stages.Load(); n != 1 {
		t.Errorf("%d computations, want 1", n)
	}
}
