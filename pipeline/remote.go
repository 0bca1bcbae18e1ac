package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/plugin"
)

// Offloader computes the heavy stages of staged filters outside this process (a cluster's
// workers), once per key across every process that shares it. The pipeline still decodes and
// scales the source (light work); the Offloader takes the stage's input from there.
type Offloader interface {
	// Stage returns the stage's result for job.Key: from a result another process stored, from
	// a computation another process started, or from one it starts. Errors carry their HTTP
	// status (503 while the cluster is unreachable).
	Stage(ctx context.Context, job StageJob) (Entry, error)
}

// StageJob is one stage's work, as a worker needs it to compute the same bytes this process
// would: the filter's own parameters, parsed again there, and the scaled source.
type StageJob struct {
	Key    string     // the stage's cache key, under which the result is stored
	Path   string     // the source's path, for logs
	Filter string     // the staged filter's Name
	Query  url.Values // the filter's parameters from the request
	// StageKey is the parsed options' StageKey: a worker whose parse gives another (its
	// library has another version of the style) must not store its result under Key.
	StageKey string
	Input    []byte // the stage's input, PNG
}

// remoteStageSteps are stageSteps with the Stage handed to the Offloader: the light slot is
// held while decoding and scaling only.
var remoteStageSteps = []step{holdSlot, decodeSource, rotateImage, resizeForStage, encodeStageInput, offloadStage}

func encodeStageInput(s *processing) error {
	body, err := s.img.Encode(imaging.PNG, 0)
	if err != nil {
		return err
	}
	s.stageInput = body
	if s.releaseLight != nil { // the wait for the cluster holds no slot
		s.releaseLight()
		s.releaseLight = nil
	}
	return nil
}

func offloadStage(s *processing) error {
	r := s.r
	e, err := s.p.cfg.Offload.Stage(s.ctx, StageJob{
		Key: s.key, Path: r.path, Filter: r.filters[0].f.Name(), Query: r.filters[0].q,
		StageKey: r.staged.StageKey(), Input: s.stageInput,
	})
	if err != nil {
		return err
	}
	s.out, s.remote = e, true
	return nil
}

// ErrStaleJob: a worker's filter parsed a job's parameters into other options than the
// requester's (a style replaced in between): its result would not be the key's. 503: a retry
// asks for the current version.
var ErrStaleJob error = &plugin.Error{Status: http.StatusServiceUnavailable, Msg: "the style changed while the image was queued; retry"}

// staleRetry is how long RunStage waits for a worker's library to catch up with the
// requester's before calling a job stale.
const staleRetry = 2 * time.Second

// RunStage computes job on a worker with filters (the same filters, configured alike, as the
// requesters'): it parses the job's parameters with the named filter, runs its Stage on the
// input and encodes the result as the pipeline stores stages.
func RunStage(ctx context.Context, filters []plugin.Filter, job StageJob, progress plugin.Progress) (Entry, error) {
	st, err := stagedOptions(ctx, filters, job)
	if err != nil {
		return Entry{}, err
	}
	img, err := imaging.Decode(job.Input, imaging.Limits{})
	if err != nil {
		return Entry{}, fmt.Errorf("stage input: %w", err)
	}
	defer img.Close()
	out, err := st.Stage(ctx, img, progress)
	if err != nil {
		return Entry{}, fmt.Errorf("filter %s: %w", job.Filter, err)
	}
	if out != img {
		defer out.Close()
	}
	return stageEntry(out)
}

// stagedOptions parses the job's parameters into the options whose StageKey the job names.
func stagedOptions(ctx context.Context, filters []plugin.Filter, job StageJob) (plugin.Staged, error) {
	var f plugin.Filter
	for _, x := range filters {
		if x.Name() == job.Filter {
			f = x
		}
	}
	if f == nil {
		return nil, fmt.Errorf("pipeline: no filter %q here", job.Filter)
	}
	deadline := time.Now().Add(staleRetry)
	for {
		o, err := f.Parse(ctx, job.Query)
		if err == nil {
			st, ok := o.(plugin.Staged)
			if !ok || st.StageKey() == "" {
				return nil, fmt.Errorf("pipeline: filter %s has no stage for %v", job.Filter, job.Query)
			}
			if st.StageKey() == job.StageKey {
				return st, nil
			}
			err = ErrStaleJob
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
