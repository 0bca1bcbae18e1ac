package style

import (
	"context"
	"fmt"
	"time"

	"github.com/styleproxy/styleproxy/engine"
	"github.com/styleproxy/styleproxy/imaging"
	"github.com/styleproxy/styleproxy/plugin"
)

// The optimisation is the filter's stage (plugin.Staged): its result at the work size is what
// every format, quality, strength and colour option of one picture and style share; Finish
// scales it to the output and applies strength and preserve_color.

// StageKey implements plugin.Staged: what the optimisation's result depends on besides its
// input (the schedule's settings follow from its name, the iterations and the engine's version).
// Strength 0 has no stage.
func (o *Options) StageKey() string {
	if o.strength == 0 {
		return ""
	}
	return fmt.Sprintf("style=%s;iters=%d%s;engine=%s", mixKey(o.parts), o.iters, o.scheduleKey(), engine.Version)
}

// StageSize implements plugin.Staged: the work shape (bucket) of a w×h output, whatever its
// size, so that every output size of one aspect shares the optimisation.
func (o *Options) StageSize(w, h int) (int, int, error) {
	if min(w, h)*o.workPx/max(w, h) < engine.MinSide {
		return 0, 0, &plugin.ParamError{Param: "w", Reason: fmt.Sprintf("the image's aspect ratio leaves under %d px on its short side at the %d px work size", engine.MinSide, o.workPx)}
	}
	b := engine.BucketFor(w, h, o.workPx, o.step)
	return b.W, b.H, nil
}

// Stage implements plugin.Staged: the optimisation, on img at its work shape, once the engine
// has compiled that shape.
func (o *Options) Stage(ctx context.Context, img *imaging.Image, progress plugin.Progress) (*imaging.Image, error) {
	work, err := img.RGB()
	if err != nil {
		return nil, err
	}
	if o.warm != nil {
		if err := o.warm.wait(ctx, engine.Bucket{W: work.Width, H: work.Height}); err != nil {
			return nil, err
		}
	}
	content, err := engine.FromRGB(work.Width, work.Height, work.Pix)
	if err != nil {
		return nil, err
	}
	targets, weights, err := mixTargets(o.parts)
	if err != nil {
		return nil, err
	}
	transfer := o.eng.Transfer
	if o.batch != nil {
		transfer = o.batch.transfer
	}
	start := time.Now()
	out, hist, err := transfer(ctx, content, targets, weights, engine.OptionsFor(o.schedule, o.iters), func(k, n int, _ engine.Losses) {
		if progress != nil {
			progress(k, n)
		}
	})
	if o.onIterations != nil {
		o.onIterations(len(hist), time.Since(start))
	}
	if err != nil {
		return nil, err
	}
	return imaging.FromRGB(&imaging.RGB{Width: out.W, Height: out.H, Pix: out.RGB()})
}

// Finish implements plugin.Staged: the stylized image scaled to img's size, with img's colours
// if preserve_color, blended with img by strength.
func (o *Options) Finish(_ context.Context, img, stylized *imaging.Image) (*imaging.Image, error) {
	orig, err := img.RGB()
	if err != nil {
		return nil, err
	}
	styled, err := stylized.RGB()
	if err != nil {
		return nil, err
	}
	if styled.Width != orig.Width || styled.Height != orig.Height {
		if styled, err = resizeRGB(styled, orig.Width, orig.Height); err != nil {
			return nil, err
		}
	}
	if o.preserveColor {
		keepColor(styled, orig)
	}
	if o.strength < 100 {
		blend(styled, orig, o.strength)
	}
	return imaging.FromRGB(styled)
}

// Apply implements plugin.Options: the stage and the finish in one, for a pipeline that does
// not share stages (the filter is not the first one).
func (o *Options) Apply(ctx context.Context, img *imaging.Image, progress plugin.Progress) (*imaging.Image, error) {
	if o.strength == 0 {
		return img, nil // strength 0 is the resized original
	}
	w, h := img.Size()
	ww, wh, err := o.StageSize(w, h)
	if err != nil {
		return nil, err
	}
	orig, err := img.RGB()
	if err != nil {
		return nil, err
	}
	work := orig
	if ww != w || wh != h {
		if work, err = resizeRGB(orig, ww, wh); err != nil {
			return nil, err
		}
	}
	in, err := imaging.FromRGB(work)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	stylized, err := o.Stage(ctx, in, progress)
	if err != nil {
		return nil, err
	}
	defer stylized.Close()
	return o.Finish(ctx, img, stylized)
}

func resizeRGB(p *imaging.RGB, w, h int) (*imaging.RGB, error) {
	im, err := imaging.FromRGB(p)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	if err := im.ResizeExact(w, h); err != nil {
		return nil, err
	}
	return im.RGB()
}

// blend mixes the stylized pixels with the original: strength 100 is all style, 0 the original.
func blend(styled, orig *imaging.RGB, strength int) {
	s := float32(strength) / 100
	for i, v := range styled.Pix {
		styled.Pix[i] = clampByte(s*float32(v) + (1-s)*float32(orig.Pix[i]))
	}
}

// keepColor keeps the stylized image's luminance and takes the original's chroma (BT.601 YCbCr),
// so the result shows the style's brush strokes in the photo's colours.
func keepColor(styled, orig *imaging.RGB) {
	for i := 0; i+2 < len(styled.Pix); i += 3 {
		y := luma(styled.Pix[i:])
		or, og, ob := float32(orig.Pix[i]), float32(orig.Pix[i+1]), float32(orig.Pix[i+2])
		cb := -0.168736*or - 0.331264*og + 0.5*ob
		cr := 0.5*or - 0.418688*og - 0.081312*ob
		styled.Pix[i] = clampByte(y + 1.402*cr)
		styled.Pix[i+1] = clampByte(y - 0.344136*cb - 0.714136*cr)
		styled.Pix[i+2] = clampByte(y + 1.772*cb)
	}
}

func luma(p []uint8) float32 {
	return 0.299*float32(p[0]) + 0.587*float32(p[1]) + 0.114*float32(p[2])
}

func clampByte(v float32) uint8 {
	return uint8(min(max(v+0.5, 0), 255))
}
