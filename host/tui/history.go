package tui

import "strings"

// history is an instance's recent CPU (%) and memory (bytes) samples, oldest first, one per
// poll, at most historyLen.
type history struct {
	cpu, mem []float64
}

func (h *history) add(cpu, mem float64) {
	h.cpu = appendCapped(h.cpu, cpu)
	h.mem = appendCapped(h.mem, mem)
}

func appendCapped(xs []float64, x float64) []float64 {
	if len(xs) == historyLen {
		copy(xs, xs[1:])
		xs = xs[:len(xs)-1]
	}
	return append(xs, x)
}

// sparkBlocks are the eight heights of a sparkline bar.
var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last width samples as bars scaled to the largest of them (a flat line
// of the lowest bar when they are all zero), and returns that largest value.
func sparkline(samples []float64, width int) (string, float64) {
	if width <= 0 || len(samples) == 0 {
		return "", 0
	}
	if len(samples) > width {
		samples = samples[len(samples)-width:]
	}
	top := 0.0
	for _, s := range samples {
		top = max(top, s)
	}
	var b strings.Builder
	for _, s := range samples {
		i := 0
		if top > 0 {
			i = int(s / top * float64(len(sparkBlocks)-1))
		}
		b.WriteRune(sparkBlocks[max(0, min(i, len(sparkBlocks)-1))])
	}
	return b.String(), top
}
