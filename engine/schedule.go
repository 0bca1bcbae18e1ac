package engine

import (
	"fmt"
	"strings"
)

// Schedule is how Transfer spends its iterations.
type Schedule string

const (
	// Reference is the reference's transfer() loop, unchanged: Adam at Options.LR on the full-size
	// image for Options.Iters steps, with its decay and clamping settings.
	Reference Schedule = "reference"
	// Fast reaches the reference's quality in a fraction of its time: Adam at a gentler learning
	// rate, first on the image at half size, whose result, enlarged, starts the full-size run.
	// Options.Iters is a budget in full-size iteration equivalents (see fastStages).
	Fast Schedule = "fast"
)

// Schedules lists the schedules, the default first.
var Schedules = []Schedule{Fast, Reference}

// ParseSchedule reads a schedule's name.
func ParseSchedule(s string) (Schedule, error) {
	for _, k := range Schedules {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown schedule %q (known: %s)", s, strings.Join(ScheduleNames(), ", "))
}

// ScheduleNames are the schedules' names, the default first.
func ScheduleNames() []string {
	out := make([]string, len(Schedules))
	for i, s := range Schedules {
		out[i] = string(s)
	}
	return out
}

// stage is one run of Adam at one size: on the content image shrunk by Div (1 = full size), for
// Iters steps at LR, restarting at DecayLR at step DecayAt (-1 = never), with the image clamped
// before each step below ClampUntil.
type stage struct {
	Div                        int
	Iters, DecayAt, ClampUntil int
	LR, DecayLR                float64
}

// The fast schedule's settings, chosen from loss-versus-work curves beside the reference's
// (bench/schedules.py; the curves are in bench/schedules.csv).
const (
	// fastLR is the learning rate of the first stage. Adam's first steps move every pixel by about
	// the learning rate whatever its gradient, so a high rate (the reference's 3.0) first paints
	// noise that later steps must undo.
	fastLR = 0.3
	// fastRefineLR is the learning rate at full size after a half-size stage, lower because the
	// enlarged result is already close: a higher rate would first scatter that work.
	fastRefineLR = 0.15
	// fastDecay is each stage's learning rate over its last tenth, relative to the stage's rate.
	fastDecay = 0.1
	// fastCoarseShare is the share of the budget spent at half size.
	fastCoarseShare = 0.25
	// fastMinCoarse is the shortest side below which the half-size stage is skipped: the network's
	// deepest style layer would see too few positions for the Gram matrices to mean much.
	fastMinCoarse = 64
)

// fastStages is the fast schedule for a budget of iters full-size iteration equivalents on an
// h×w content image. A half-size step costs about a quarter of a full-size one, so the half-size
// stage takes about 4·fastCoarseShare·iters steps and the full-size stage the rest of the budget;
// a budget too small for both runs at full size only.
func fastStages(iters, h, w int) []stage {
	coarse := 0
	if min(h, w)/2 >= fastMinCoarse {
		coarse = int(4 * fastCoarseShare * float64(iters))
	}
	fine := iters - (coarse+3)/4
	if fine < 1 {
		coarse, fine = 0, iters
	}
	var out []stage
	for _, s := range []struct{ div, n int }{{2, coarse}, {1, fine}} {
		if s.n == 0 {
			continue
		}
		lr := fastLR
		if len(out) > 0 {
			lr = fastRefineLR
		}
		out = append(out, stage{Div: s.div, Iters: s.n, LR: lr, DecayAt: s.n * 9 / 10,
			DecayLR: lr * fastDecay, ClampUntil: s.n})
	}
	return out
}

// stageSizes are the sizes (height, width) at which any schedule's stages run on an h×w content
// image, full size first.
func stageSizes(h, w int) [][2]int {
	sizes := [][2]int{{h, w}}
	for _, s := range fastStages(DefaultIters, h, w) {
		if s.Div > 1 {
			sizes = append(sizes, [2]int{h / s.Div, w / s.Div})
		}
	}
	return sizes
}

// stages are the runs of Adam the options ask for on an h×w content image.
func (o Options) stages(h, w int) []stage {
	if o.Schedule == Fast {
		return fastStages(o.Iters, h, w)
	}
	return []stage{{Div: 1, Iters: o.Iters, LR: o.LR, DecayAt: o.DecayAt, DecayLR: o.DecayLR, ClampUntil: o.ClampUntil}}
}

// totalSteps is the number of Adam steps of all the stages.
func totalSteps(stages []stage) int {
	n := 0
	for _, s := range stages {
		n += s.Iters
	}
	return n
}
