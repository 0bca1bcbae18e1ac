package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/styleproxy/styleproxy/imaging"
)

// processing is the state the steps of one flight share.
type processing struct {
	p      *Pipeline
	r      *request
	ctx    context.Context // detached from the requests; WorkTimeout once the work holds a slot
	cancel context.CancelFunc
	j      *job // the heavy job, nil for light work

	releaseLight func()    // gives back the light slot, if the work holds one
	started      time.Time // when the work got its worker or slot

	lim  imaging.Limits
	data []byte
	info imaging.Info
	img  *imaging.Image
	// intermediate is the stage's result, for the first filter's Finish (outputs), and
	// stage what to compute (stages).
	intermediate *imaging.Image
	stage        stageInput
	// cacheable is false when the source changed since prepare versioned it: the result is
	// right for this request but not for its key.
	cacheable bool
	out       Entry
	// key is the flight's cache key; stageInput the stage's input for an Offloader, and remote
	// whether out came from one (which stored it in the shared tier already).
	key        string
	stageInput []byte
	remote     bool
}

// stageInput is the source scaled for a staged filter's heavy part: to w x h with fit (and
// gravity, for a cover crop). A smart crop first crops to the output's own aspect ratio, aw:ah,
// so that the stylized region is the output's whatever the attention measure finds at the
// bucket's slightly different aspect.
type stageInput struct {
	w, h    int
	fit     imaging.Fit
	gravity imaging.Gravity
	aw, ah  int
	alpha   bool // the source is transparent: its background colour is part of the input
}

// key is the canonical text of the input's geometry for the stage key; options at their
// defaults add nothing, so the stage keys of URLs without them are unchanged.
func (in stageInput) key(o ImageOptions) string {
	k := fmt.Sprintf("%dx%d %s", in.w, in.h, in.fit)
	if in.gravity != imaging.GravityCenter {
		k += " gravity=" + in.gravity.String()
	}
	if in.gravity == imaging.GravitySmart {
		g := gcd(in.aw, in.ah)
		k += fmt.Sprintf(" aspect=%d:%d", in.aw/g, in.ah/g)
	}
	if o.Rotate != 0 {
		k += fmt.Sprintf(" rotate=%d", o.Rotate)
	}
	if in.alpha && o.HasBackground {
		k += " bg=" + o.Background.Hex()
	}
	return k
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return max(a, 1)
}

// step is one stage of a computation; the steps run in order, each on what the previous left.
type step func(s *processing) error

// outputSteps make an /img response from the source's bytes; stageSteps make a staged filter's
// intermediate, which outputs share.
var (
	outputSteps = []step{fetchSource, probeSource, awaitStage, holdSlot, decodeSource, rotateImage, resizeImage, applyFilters, finishImage, encodeImage}
	stageSteps  = []step{holdSlot, decodeSource, rotateImage, resizeForStage, runStage, encodeStage}
)

func (p *Pipeline) outputFlight(r *request) *flight {
	return &flight{key: r.key, path: r.path, id: r.id, heavy: r.heavy, parent: r.parent, steps: outputSteps, s: p.newProcessing(r)}
}

func (p *Pipeline) newProcessing(r *request) *processing {
	return &processing{p: p, r: r, lim: imaging.Limits{
		MaxBytes: p.cfg.MaxSourceBytes, MaxPixels: p.cfg.MaxSourcePixels, MaxSide: p.cfg.MaxSourceSide, MaxAspect: p.cfg.MaxSourceAspect,
	}}
}

func (s *processing) run(steps []step) error {
	for _, st := range steps {
		if err := st(s); err != nil {
			return err
		}
	}
	return nil
}

// release gives back what the steps held.
func (s *processing) release() {
	for _, im := range []*imaging.Image{s.img, s.intermediate} {
		if im != nil {
			im.Close()
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.releaseLight != nil {
		s.releaseLight()
	}
}

// fetchSource reads the source's bytes, unless prepare had to read them to version them.
func fetchSource(s *processing) error {
	s.data, s.cacheable = s.r.data, true
	if s.data != nil {
		return nil
	}
	data, version, err := s.p.cfg.Source.Fetch(s.ctx, s.r.path, s.p.cfg.MaxSourceBytes)
	if err != nil {
		return err
	}
	s.data, s.cacheable = data, version == s.r.version
	return nil
}

// probeSource reads the header: a refusal (too large, not an image) comes before any pixel is
// decoded, and before heavy work waits for a worker.
func probeSource(s *processing) (err error) {
	s.info, err = imaging.Probe(s.data, s.lim)
	return err
}

// awaitStage gets the intermediate of a staged first filter: from the cache, or from the one
// stage flight for its key, which queues for a worker. The output's own work waits for it
// without holding a slot.
func awaitStage(s *processing) error {
	r := s.r
	if r.staged == nil {
		return nil
	}
	ow, oh := rotatedSize(s.info.Width, s.info.Height, r.image.Rotate)
	if w, h, fit, ok := targetBox(ow, oh, r.image, s.p.cfg.MaxOutputPx); ok {
		ow, oh = imaging.FitSize(ow, oh, w, h, fit)
	}
	in := stageInput{fit: imaging.FitFill, aw: ow, ah: oh, alpha: s.info.Alpha} // FitFill: an exact resize to the output's aspect ratio
	if r.image.Width > 0 && r.image.Height > 0 && r.image.Fit == imaging.FitCover {
		in.fit, in.gravity = imaging.FitCover, r.image.Gravity
	}
	var err error
	if in.w, in.h, err = r.staged.StageSize(ow, oh); err != nil {
		return fmt.Errorf("filter %s: %w", r.filters[0].f.Name(), err)
	}
	key := s.p.stageKey(r, in)
	e, ok := s.p.lookup(key)
	if !ok {
		st := s.p.newProcessing(r)
		st.data, st.info, st.stage, st.cacheable, st.key = s.data, s.info, in, s.cacheable, key
		f := &flight{key: key, path: r.path, id: r.id, heavy: true, parent: r.parent, steps: stageSteps, s: st}
		if s.p.cfg.Offload != nil {
			f.heavy, f.steps = false, remoteStageSteps
		}
		if e, err = s.p.join(s.ctx, f); err != nil {
			return err
		}
	}
	s.intermediate, err = imaging.Decode(e.Body, imaging.Limits{})
	return err
}

// holdSlot waits for a worker (heavy work) or a light slot. It comes before decoding, so queued
// work holds compressed bytes, not decoded pixels.
func holdSlot(s *processing) error { return s.p.hold(s) }

func decodeSource(s *processing) (err error) {
	s.img, err = imaging.DecodeOn(s.data, s.lim, s.r.image.background())
	return err
}

// rotateImage turns the upright image as rotate says, before anything is sized.
func rotateImage(s *processing) error { return s.img.Rotate(s.r.image.Rotate) }

func resizeImage(s *processing) error {
	sw, sh := s.img.Size()
	if w, h, fit, ok := targetBox(sw, sh, s.r.image, s.p.cfg.MaxOutputPx); ok {
		return s.img.ResizeAt(w, h, fit, s.r.image.Gravity)
	}
	return nil
}

// finishImage sharpens and pads the filtered image: after the filters, so that neither costs
// the optimisation anything nor changes its key.
func finishImage(s *processing) error {
	o := s.r.image
	if o.Sharpen > 0 {
		if err := s.img.Sharpen(o.Sharpen); err != nil {
			return err
		}
	}
	if o.Pad {
		return s.img.Extend(o.Width, o.Height, o.background())
	}
	return nil
}

func applyFilters(s *processing) error {
	for i, a := range s.r.filters {
		var out *imaging.Image
		var err error
		if i == 0 && s.intermediate != nil {
			out, err = s.r.staged.Finish(s.ctx, s.img, s.intermediate)
		} else {
			out, err = a.o.Apply(s.ctx, s.img, s.j.progress)
		}
		if err != nil {
			return fmt.Errorf("filter %s: %w", a.f.Name(), err)
		}
		if out == nil {
			return fmt.Errorf("filter %s returned no image", a.f.Name())
		}
		if out != s.img {
			s.img.Close()
			s.img = out
		}
	}
	return s.ctx.Err()
}

// encodeImage encodes in the requested format, else the source's if it can be encoded, else
// JPEG.
func encodeImage(s *processing) error {
	format := s.r.image.Format
	if format == 0 {
		format = imaging.JPEG
		if s.info.Format != 0 && imaging.CanEncode(s.info.Format) {
			format = s.info.Format
		}
	}
	body, err := s.img.Encode(format, s.r.image.Quality)
	if err != nil {
		return err
	}
	s.out = Entry{ContentType: format.MIMEType(), Body: body}
	return nil
}

// resizeForStage scales the source straight to the stage's input size, so that every output
// size with the same stage size shares the same input pixels.
func resizeForStage(s *processing) error {
	in := s.stage
	if in.gravity == imaging.GravitySmart {
		if err := s.img.CropAspect(in.aw, in.ah, in.gravity); err != nil {
			return err
		}
		return s.img.ResizeExact(in.w, in.h)
	}
	return s.img.ResizeAt(in.w, in.h, in.fit, in.gravity)
}

func runStage(s *processing) error {
	out, err := s.r.staged.Stage(s.ctx, s.img, s.j.progress)
	if err != nil {
		return fmt.Errorf("filter %s: %w", s.r.filters[0].f.Name(), err)
	}
	if out != s.img {
		s.img.Close()
		s.img = out
	}
	return s.ctx.Err()
}

// encodeStage stores the intermediate losslessly.
func encodeStage(s *processing) (err error) {
	s.out, err = stageEntry(s.img)
	return err
}

// stageEntry is how a stage's result is stored, here or on a worker: PNG, lossless.
func stageEntry(img *imaging.Image) (Entry, error) {
	body, err := img.Encode(imaging.PNG, 0)
	if err != nil {
		return Entry{}, err
	}
	return Entry{ContentType: imaging.PNG.MIMEType(), Body: body}, nil
}
