package judge

import (
	"math"
	"sort"
)

// alternative is the hypothesis a test looks for evidence of.
type alternative int

const (
	greater  alternative = iota // y tends to be larger than x
	less                        // y tends to be smaller than x
	twoSided                    // y differs from x either way
)

// uTest is the outcome of a Mann-Whitney U test of y against x.
type uTest struct {
	// U counts the pairs (x_i, y_j) with y_j > x_i, ties counting half
	// (R's W statistic for wilcox.test(y, x)).
	U float64
	// Z is the normal score of U; Sigma its tie-corrected standard
	// deviation, 0 when every sample is equal.
	Z, Sigma float64
	// P is the p-value under the normal approximation.
	P float64
}

// mannWhitney runs the U test with the normal approximation: mean
// n1·n2/2, variance n1·n2/12·((N+1) − Σ(t³−t)/(N(N−1))) over tie groups
// of size t, and, with continuity, U moved 0.5 towards the mean. The
// approximation is sound from about 8 samples a side; MinSamples keeps
// smaller tests from deciding anything.
func mannWhitney(x, y []float64, alt alternative, continuity bool) uTest {
	n1, n2 := float64(len(x)), float64(len(y))
	type obs struct {
		v     float64
		fromY bool
	}
	all := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		all = append(all, obs{v, false})
	}
	for _, v := range y {
		all = append(all, obs{v, true})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })

	// Average ranks over ties; collect Σ(t³−t) for the variance.
	var rankSumY, tieTerm float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // mean of the 1-based ranks i+1..j
		for k := i; k < j; k++ {
			if all[k].fromY {
				rankSumY += rank
			}
		}
		t := float64(j - i)
		tieTerm += t*t*t - t
		i = j
	}
	u := rankSumY - n2*(n2+1)/2
	n := n1 + n2
	mean := n1 * n2 / 2
	variance := n1 * n2 / 12 * ((n + 1) - tieTerm/(n*(n-1)))
	if variance <= 0 || n1 == 0 || n2 == 0 {
		return uTest{U: u, P: 1}
	}
	sigma := math.Sqrt(variance)
	d := u - mean
	if continuity {
		switch alt {
		case greater:
			d -= 0.5
		case less:
			d += 0.5
		default: // towards the mean, never past it
			d = math.Copysign(math.Max(math.Abs(d)-0.5, 0), d)
		}
	}
	z := d / sigma
	var p float64
	switch alt {
	case greater:
		p = 1 - normalCDF(z)
	case less:
		p = normalCDF(z)
	default:
		p = math.Min(1, 2*(1-normalCDF(math.Abs(z))))
	}
	return uTest{U: u, Z: z, Sigma: sigma, P: p}
}

func normalCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

func median(s []float64) float64 {
	c := append([]float64(nil), s...)
	sort.Float64s(c)
	m := len(c) / 2
	if len(c)%2 == 1 {
		return c[m]
	}
	return (c[m-1] + c[m]) / 2
}

func mean(s []float64) float64 {
	var sum float64
	for _, v := range s {
		sum += v
	}
	return sum / float64(len(s))
}
