package engine

import "fmt"

// BlendPart is one style of a blend: its Gram targets, its own loss weights and its share of
// the mix.
type BlendPart struct {
	Targets StyleTargets
	Weights Weights
	Mix     float64
}

// Blend folds several styles into one target set and one weight set whose loss has exactly the
// gradient of the mix's (the shares are normalised to sum 1): per style layer l,
//
//	Σ_k m_k s_kl ||G_l − A_kl||² = S_l ||G_l − Ā_l||² + const,
//	S_l = Σ_k m_k s_kl,  Ā_l = Σ_k (m_k s_kl / S_l) A_kl,
//
// and the content and TV weights are Σ_k m_k c_k and Σ_k m_k tv_k. So a blend runs on the
// compiled graph of one style. The constant makes the blended style loss lower than the mix of
// the styles' own losses; compare those with each style's own targets. A style with share 0
// contributes exactly nothing: the blend of (A, 1) and (B, 0) is A and its weights, bit for bit.
func Blend(parts []BlendPart) (StyleTargets, Weights, error) {
	var out StyleTargets
	var w Weights
	total := 0.0
	for _, p := range parts {
		if !(p.Mix >= 0) {
			return out, w, fmt.Errorf("engine: blend share %v is not a number >= 0", p.Mix)
		}
		total += p.Mix
	}
	if len(parts) == 0 || !(total > 0) {
		return out, w, fmt.Errorf("engine: a blend needs a positive share")
	}
	for l := range out {
		c := parts[0].Targets[l].C
		sum := make([]float64, c*c)
		for _, p := range parts {
			if p.Targets[l].C != c || len(p.Targets[l].Data) != c*c {
				return out, w, fmt.Errorf("engine: blend: style layer %d targets have different shapes", l)
			}
			w.Style[l] += p.Mix / total * p.Weights.Style[l]
		}
		for _, p := range parts {
			coef := 0.0
			if w.Style[l] > 0 {
				coef = p.Mix / total * p.Weights.Style[l] / w.Style[l]
			}
			for i, v := range p.Targets[l].Data {
				sum[i] += coef * float64(v)
			}
		}
		data := make([]float32, c*c)
		for i, v := range sum {
			data[i] = float32(v)
		}
		out[l] = Gram{C: c, Data: data}
	}
	for _, p := range parts {
		w.Content += p.Mix / total * p.Weights.Content
		w.TV += p.Mix / total * p.Weights.TV
	}
	return out, w, nil
}
