package pipeline

import (
	"context"
	"fmt"

	"github.com/styleproxy/styleproxy/imaging"
)

// processing is the state the steps of one computation share.
type processing struct {
	p    *Pipeline
	r    *request
	j    *job // the heavy job, nil for light work
	lim  imaging.Limits
	data []byte
	info imaging.Info
	img  *imaging.Image
	// cacheable is false when the source changed since prepare versioned it: the result is
	// right for this request but not for its key.
	cacheable bool
	out       Entry
}

// step is one stage of a computation; the steps run in order, each on what the previous left.
type step func(ctx context.Context, s *processing) error

// steps is the pipeline: from the source's bytes to the encoded response.
var steps = []step{fetchSource, probeSource, awaitWorker, decodeSource, resizeImage, applyFilters, encodeImage}

// compute runs the steps for r.
func (p *Pipeline) compute(ctx context.Context, r *request, j *job) (_ Entry, cacheable bool, err error) {
	s := &processing{p: p, r: r, j: j, lim: imaging.Limits{
		MaxBytes: p.cfg.MaxSourceBytes, MaxPixels: p.cfg.MaxSourcePixels, MaxSide: p.cfg.MaxSourceSide, MaxAspect: p.cfg.MaxSourceAspect,
	}}
	defer func() {
		if s.img != nil {
			s.img.Close()
		}
	}()
	for _, st := range steps {
		if err := st(ctx, s); err != nil {
			return Entry{}, false, err
		}
	}
	return s.out, s.cacheable, nil
}

// fetchSource reads the source's bytes, unless prepare had to read them to version them.
func fetchSource(ctx context.Context, s *processing) error {
	s.data, s.cacheable = s.r.data, true
	if s.data != nil {
		return nil
	}
	data, version, err := s.p.cfg.Source.Fetch(ctx, s.r.path, s.p.cfg.MaxSourceBytes)
	if err != nil {
		return err
	}
	s.data, s.cacheable = data, version == s.r.version
	return nil
}

// probeSource reads the header: a refusal (too large, not an image) comes before any pixel is
// decoded, and before heavy work waits for a worker.
func probeSource(_ context.Context, s *processing) (err error) {
	s.info, err = imaging.Probe(s.data, s.lim)
	return err
}

// awaitWorker holds heavy work until a worker is free. It comes before decoding, so queued
// work holds compressed bytes, not decoded pixels.
func awaitWorker(ctx context.Context, s *processing) error {
	if s.j == nil {
		return nil
	}
	return s.p.work(ctx, s.j)
}

func decodeSource(_ context.Context, s *processing) (err error) {
	s.img, err = imaging.Decode(s.data, s.lim)
	return err
}

func resizeImage(_ context.Context, s *processing) error {
	sw, sh := s.img.Size()
	if w, h, fit, ok := targetBox(sw, sh, s.r.image, s.p.cfg.MaxOutputPx); ok {
		return s.img.Resize(w, h, fit)
	}
	return nil
}

func applyFilters(ctx context.Context, s *processing) error {
	for _, a := range s.r.filters {
		out, err := a.o.Apply(ctx, s.img, s.j.progress)
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
	return ctx.Err()
}

// encodeImage encodes in the requested format, else the source's if it can be encoded, else
// JPEG.
func encodeImage(_ context.Context, s *processing) error {
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
