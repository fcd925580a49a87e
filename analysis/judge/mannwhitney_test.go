package judge

import (
	"math"
	"testing"
)

// countPairs is U by definition, counted by hand: the pairs (x_i, y_j)
// with y_j > x_i, ties counting half. It checks the rank-sum shortcut.
func countPairs(x, y []float64) float64 {
	var u float64
	for _, a := range x {
		for _, b := range y {
			switch {
			case b > a:
				u++
			case b == a:
				u += 0.5
			}
		}
	}
	return u
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// Wikipedia, "Mann–Whitney U test", section "Illustration of calculation
// methods": six tortoises and six hares race and finish in the order
// T H H H H H T T T T T H. The article gives U_T = 11 (pairs a tortoise
// wins) and U_H = 25 (pairs a hare wins). As values we use the finishing
// positions 1..12, so "wins" means "has the smaller value".
func TestUWikipediaTortoiseAndHare(t *testing.T) {
	tortoises := []float64{1, 7, 8, 9, 10, 11}
	hares := []float64{2, 3, 4, 5, 6, 12}

	// By hand: tortoise 1 beats all 6 hares, tortoises 7..11 beat only
	// hare 12, so U_T = 6 + 5·1 = 11, and U_H = 6·6 − 11 = 25.
	// U(y over x) counts pairs where y is larger, i.e. y loses the race.
	uT := mannWhitney(tortoises, hares, twoSided, true).U // hares' positions larger = tortoise wins
	uH := mannWhitney(hares, tortoises, twoSided, true).U
	if uT != 11 || uH != 25 {
		t.Fatalf("U_T = %v, U_H = %v; the article gives 11 and 25", uT, uH)
	}
	if c := countPairs(tortoises, hares); c != uT {
		t.Errorf("rank-sum U %v differs from counted pairs %v", uT, c)
	}
	if uT+uH != 36 {
		t.Errorf("U_T + U_H = %v, want n1·n2 = 36", uT+uH)
	}
}

// R's documentation of wilcox.test, two-sample example, from Hollander &
// Wolfe (1973), Nonparametric Statistical Methods, p. 69f: permeability
// constants of the human chorioamnion at term (x) and at 12-26 weeks (y);
// the alternative is "x greater". R reports W = 35 and, for the large
// sample approximation (exact = FALSE, correct = FALSE), p-value = 0.1103.
func TestUHollanderWolfePermeability(t *testing.T) {
	x := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	y := []float64{1.15, 0.88, 0.90, 0.74, 1.21}

	// By hand, y sorted is 0.74 0.88 0.90 1.15 1.21; each x exceeds
	// 1, 1, 5, 3, 5, 5, 5, 5, 0, 5 of them: W = 35.
	got := mannWhitney(y, x, greater, false) // is x greater than y?
	if got.U != 35 || countPairs(y, x) != 35 {
		t.Fatalf("W = %v (counted %v), R gives 35", got.U, countPairs(y, x))
	}
	if !near(got.P, 0.1103, 5e-5) {
		t.Errorf("p = %.5f, R gives 0.1103", got.P)
	}
	// mean 25, sd sqrt(10·5·16/12) = 8.165: z = 10/8.165 = 1.2247.
	if !near(got.Z, 1.2247, 1e-4) {
		t.Errorf("z = %.5f, want 1.2247", got.Z)
	}
	// With the continuity correction z = 9.5/8.165 = 1.1635, p = 0.1223.
	if c := mannWhitney(y, x, greater, true); !near(c.P, 0.1223, 1e-4) {
		t.Errorf("corrected p = %.5f, want 0.1223", c.P)
	}
	// The opposite one-sided test and the two-sided one are consistent.
	if l := mannWhitney(y, x, less, false); !near(l.P, 1-0.1103, 1e-4) {
		t.Errorf("less: p = %.5f, want 0.8897", l.P)
	}
	if b := mannWhitney(y, x, twoSided, false); !near(b.P, 2*0.1103, 2e-4) {
		t.Errorf("two-sided: p = %.5f, want 0.2207", b.P)
	}
}

// Ties get average ranks and shrink the variance: x = {1,2,2,3},
// y = {2,3,3,4}. By hand: y=2 beats 1 and ties both 2s (2), each y=3
// beats 1,2,2 and ties 3 (3.5, twice), y=4 beats all (4): U = 13. Tie groups:
// 2 (three values), 3 (three values): Σ(t³−t) = 24+24 = 48, N = 8, so
// var = 4·4/12·(9 − 48/56) = 10.857, sigma = 3.2950.
func TestUTieCorrection(t *testing.T) {
	x := []float64{1, 2, 2, 3}
	y := []float64{2, 3, 3, 4}
	got := mannWhitney(x, y, greater, false)
	if got.U != 13 || countPairs(x, y) != 13 {
		t.Fatalf("U = %v, counted %v, want 13", got.U, countPairs(x, y))
	}
	if !near(got.Sigma, math.Sqrt(16.0/12*(9-48.0/56)), 1e-9) || !near(got.Sigma, 3.2950, 1e-4) {
		t.Errorf("sigma = %.5f, want 3.2950", got.Sigma)
	}
}

func TestUAllEqual(t *testing.T) {
	got := mannWhitney([]float64{5, 5, 5}, []float64{5, 5, 5, 5}, twoSided, true)
	if got.Sigma != 0 || got.P != 1 || got.U != 6 {
		t.Errorf("all equal: %+v, want sigma 0, p 1, U 6", got)
	}
}
