package pipeline_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/pipeline"
	"github.com/styleproxy/styleproxy/plugin"
)

// fakeStaged is a staged filter for tests, standing in for the style filter: staged=N asks for
// it, mix=M (0-100) is its light finishing option. Its stage turns the image grey at a 64 px
// work shape; Finish mixes the grey stage into the image by M. It counts both.
type fakeStaged struct {
	stages, finishes atomic.Int64
}

func (f *fakeStaged) Name() string     { return "staged" }
func (f *fakeStaged) Params() []string { return []string{"staged", "mix"} }
func (f *fakeStaged) Parse(_ context.Context, q url.Values) (plugin.Options, error) {
	if !q.Has("staged") {
		return nil, nil
	}
	o := &stagedOptions{f: f, v: q.Get("staged"), mix: 100}
	if q.Has("mix") {
		m, err := plugin.Int("mix", q.Get("mix"), 0, 100)
		if err != nil {
			return nil, err
		}
		o.mix = m
	}
	return o, nil
}

type stagedOptions struct {
	f   *fakeStaged
	v   string
	mix int
}

func (o *stagedOptions) Key() string      { return "v=" + o.v + ";mix=" + strconv.Itoa(o.mix) }
func (o *stagedOptions) Heavy() bool      { return true }
func (o *stagedOptions) StageKey() string { return "v=" + o.v }
func (o *stagedOptions) StageSize(w, h int) (int, int, error) {
	return 64, max(1, 64*h/w), nil
}
func (o *stagedOptions) Stage(_ context.Context, img *imaging.Image, _ plugin.Progress) (*imaging.Image, error) {
	o.f.stages.Add(1)
	return img, img.Grayscale()
}
func (o *stagedOptions) Finish(_ context.Context, img, stage *imaging.Image) (*imaging.Image, error) {
	o.f.finishes.Add(1)
	w, h := img.Size()
	if sw, _ := stage.Size(); sw != 64 {
		return nil, fmt.Errorf("the stage is %d px wide, want its 64 px work shape", sw)
	}
	if o.mix == 0 {
		return img, nil
	}
	return img, img.Resize(w, h, imaging.FitFill)
}
func (o *stagedOptions) Apply(ctx context.Context, img *imaging.Image, p plugin.Progress) (*imaging.Image, error) {
	return nil, fmt.Errorf("Apply called on a staged first filter")
}

// TestStagesAreSharedAndKept: every variant of one picture and stage (formats, qualities, the
// finishing option, output sizes of one work shape) costs one stage, which is cached on disk
// with the responses and survives a restart.
func TestStagesAreSharedAndKept(t *testing.T) {
	dir, cacheDir := imageDir(t), t.TempDir()
	staged := &fakeStaged{}
	withStaged := func(c *pipeline.Config) { c.Filters = []plugin.Filter{staged} }
	s := startServer(t, serverOpts{dir: dir, cacheDir: cacheDir, cfg: withStaged})
	var wg sync.WaitGroup
	variants := []string{"format=png", "format=webp", "q=50", "mix=30", "mix=60", "w=300", "w=400&format=png"}
	statuses := make([]int, len(variants))
	for i, v := range variants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := client.Get(s.URL + "/img/kitten.jpg?staged=1&" + v); err == nil {
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}
		}()
	}
	wg.Wait()
	for i, st := range statuses {
		if st != 200 {
			t.Errorf("%s: status %d", variants[i], st)
		}
	}
	if n := staged.stages.Load(); n != 1 {
		t.Errorf("%d variants ran the stage %d times, want 1", len(variants), n)
	}
	if n := staged.finishes.Load(); n != int64(len(variants)) {
		t.Errorf("Finish ran %d times for %d variants", n, len(variants))
	}
	if n := s.Hits.workStarts.Load(); n != int64(len(variants))+1 {
		t.Errorf("%d computations, want one a variant and one stage", n)
	}

	// A restart on the same cache folder: a new variant finds the stage on disk.
	s2 := startServer(t, serverOpts{dir: dir, cacheDir: cacheDir, cfg: withStaged})
	resp, body := get(t, s2.URL+"/img/kitten.jpg?staged=1&format=webp&mix=10")
	wantOK(t, resp, body)
	if n := staged.stages.Load(); n != 1 {
		t.Errorf("after a restart the stage ran again (%d in all), want it from the disk cache", n)
	}
	if s2.Hits.diskHits.Load() != 1 {
		t.Errorf("%d disk hits after the restart, want 1 (the stage)", s2.Hits.diskHits.Load())
	}
	// Another stage key is another stage.
	resp, body = get(t, s2.URL+"/img/kitten.jpg?staged=2")
	wantOK(t, resp, body)
	if n := staged.stages.Load(); n != 2 {
		t.Errorf("a new stage key ran %d stages in all, want 2", n)
	}
}
