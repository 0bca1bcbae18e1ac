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
	// rate with moments that forget faster (see fastStage). Options.Iters is the number of steps.
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

// stage is one run of Adam on the full-size image: Iters steps at LR, restarting at DecayLR at
// step DecayAt (-1 = never), with the image clamped before each step below ClampUntil, and
// Adam's moment decay rates Beta1 and Beta2.
type stage struct {
	Iters, DecayAt, ClampUntil int
	LR, DecayLR                float64
	Beta1, Beta2               float64
}

// The fast schedule's settings, chosen from loss-versus-time curves beside the reference's
// (bench/schedules.py; the curves are in bench/schedules.csv).
const (
	// fastLR is the learning rate. Adam's first steps move every pixel by about the learning rate
	// whatever its gradient, so a high rate (the reference's 3.0) first paints noise that later
	// steps must undo.
	fastLR = 0.2
	// fastDecay is the learning rate over the last tenth of the run, relative to fastLR.
	fastDecay = 0.1
	// fastBeta1 and fastBeta2 let Adam's moments follow the gradient over the last few steps
	// rather than the last thousand (torch's 0.9 and 0.999): in a run this short the early,
	// large gradients would otherwise keep every later step small.
	fastBeta1 = 0.8
	fastBeta2 = 0.9
)

// fastStage is the fast schedule for iters steps.
func fastStage(iters int) stage {
	return stage{Iters: iters, LR: fastLR, DecayAt: iters * 9 / 10, DecayLR: fastLR * fastDecay,
		ClampUntil: iters, Beta1: fastBeta1, Beta2: fastBeta2}
}

// stage is the run of Adam the options ask for.
func (o Options) stage() stage {
	if o.Schedule == Fast {
		return fastStage(o.Iters)
	}
	return stage{Iters: o.Iters, LR: o.LR, DecayAt: o.DecayAt, DecayLR: o.DecayLR, ClampUntil: o.ClampUntil,
		Beta1: adamBeta1, Beta2: adamBeta2}
}
