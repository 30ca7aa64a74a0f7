package synth

import "math"

// A motif is a shape in a unit box: inside reports whether the point
// (x, y), both in [-1, 1] with y pointing down, is part of it. Shapes are
// chosen to stay distinct at 64 px and under small rotations.
type motif struct {
	name   string
	inside func(x, y float64) bool
}

func disc(x, y, cx, cy, r float64) bool { return (x-cx)*(x-cx)+(y-cy)*(y-cy) < r*r }

func abs(v float64) float64 { return math.Abs(v) }

// motifs is the fixed list of tag motifs, most frequent first (tag
// frequencies fall off along this list).
var motifs = []motif{
	{"disc", func(x, y float64) bool { return disc(x, y, 0, 0, 0.95) }},
	{"square", func(x, y float64) bool { return abs(x) < 0.8 && abs(y) < 0.8 }},
	{"triangle", func(x, y float64) bool { return y > -0.9 && y < 0.85 && abs(x) < (y+0.9)*0.55 }},
	{"ring", func(x, y float64) bool { r := math.Hypot(x, y); return r > 0.55 && r < 0.95 }},
	{"cross", func(x, y float64) bool {
		return (abs(x) < 0.28 && abs(y) < 0.95) || (abs(y) < 0.28 && abs(x) < 0.95)
	}},
	{"star", func(x, y float64) bool {
		r, t := math.Hypot(x, y), math.Atan2(y, x)+math.Pi/2
		return r < 0.38+0.6*math.Pow(abs(math.Cos(2.5*t)), 4)
	}},
	{"diamond", func(x, y float64) bool { return abs(x)*0.8+abs(y) < 0.95 }},
	{"stripes", func(x, y float64) bool { return abs(x) < 0.9 && abs(y) < 0.9 && int((y+0.9)/0.36)%2 == 0 }},
	{"checkerboard", func(x, y float64) bool {
		return abs(x) < 0.9 && abs(y) < 0.9 && (int((x+0.9)/0.45)+int((y+0.9)/0.45))%2 == 0
	}},
	{"crescent", func(x, y float64) bool { return disc(x, y, 0, 0, 0.95) && !disc(x, y, 0.42, -0.15, 0.8) }},
	{"heart", func(x, y float64) bool {
		X, Y := x*1.25, -y*1.25+0.25
		a := X*X + Y*Y - 1
		return a*a*a-X*X*Y*Y*Y < 0
	}},
	{"house", func(x, y float64) bool {
		return (abs(x) < 0.65 && y > -0.1 && y < 0.9) || (y > -0.95 && y <= -0.1 && abs(x) < (y+0.95)*1.05)
	}},
	{"tree", func(x, y float64) bool {
		return (abs(x) < 0.15 && y > 0.3 && y < 0.95) || (y > -0.95 && y < 0.45 && abs(x) < (y+0.95)*0.6)
	}},
	{"hexagon", func(x, y float64) bool { return math.Max(abs(x)*0.866+abs(y)*0.5, abs(y)) < 0.85 }},
	{"arrow", func(x, y float64) bool {
		return (abs(y) < 0.22 && x > -0.95 && x < 0.2) || (x >= 0.1 && x < 0.95 && abs(y) < (0.95-x)*0.95)
	}},
	{"target", func(x, y float64) bool { r := math.Hypot(x, y); return r < 0.95 && int(r/0.24)%2 == 0 }},
	{"dots", func(x, y float64) bool {
		gx, gy := math.Round(x/0.62)*0.62, math.Round(y/0.62)*0.62
		return abs(gx) <= 0.7 && abs(gy) <= 0.7 && disc(x, y, gx, gy, 0.22)
	}},
	{"saltire", func(x, y float64) bool {
		u, w := (x+y)/math.Sqrt2, (x-y)/math.Sqrt2
		return (abs(u) < 0.22 && abs(w) < 0.95) || (abs(w) < 0.22 && abs(u) < 0.95)
	}},
	{"wave", func(x, y float64) bool { return abs(x) < 0.95 && abs(y-0.45*math.Sin(4*x)) < 0.2 }},
	{"zigzag", func(x, y float64) bool {
		z := abs(math.Mod(x+10.2, 0.8)-0.4)*2 - 0.4
		return abs(x) < 0.95 && abs(y-z) < 0.2
	}},
	{"fish", func(x, y float64) bool {
		body := (x+0.2)*(x+0.2)/0.42+y*y/0.16 < 1
		tail := x > 0.35 && x < 0.95 && abs(y) < (x-0.35)*0.9
		return (body || tail) && !disc(x, y, -0.5, -0.08, 0.09)
	}},
	{"keyhole", func(x, y float64) bool {
		return disc(x, y, 0, -0.4, 0.45) || (y > -0.3 && y < 0.9 && abs(x) < 0.12+0.3*(y+0.3))
	}},
	{"hourglass", func(x, y float64) bool { return abs(y) < 0.9 && abs(x) < abs(y)*0.9+0.08 }},
	{"arch", func(x, y float64) bool {
		r := math.Hypot(x, y)
		return (y < 0 && r > 0.5 && r < 0.95) || (y >= 0 && y < 0.9 && abs(x) > 0.5 && abs(x) < 0.95)
	}},
	{"bars", func(x, y float64) bool { return abs(x) < 0.9 && abs(y) < 0.9 && int((x+0.9)/0.36)%2 == 0 }},
	{"half-moon", func(x, y float64) bool {
		return disc(x, y+0.4, 0, 0, 0.95) && y+0.4 < 0 || (abs(x) < 0.95 && y > -0.4 && y < -0.3)
	}},
	{"frame", func(x, y float64) bool { m := math.Max(abs(x), abs(y)); return m > 0.55 && m < 0.9 }},
	{"ell", func(x, y float64) bool {
		return (x > -0.8 && x < -0.3 && abs(y) < 0.9) || (abs(x) < 0.8 && y > 0.4 && y < 0.9)
	}},
	{"tee", func(x, y float64) bool {
		return (abs(x) < 0.9 && y > -0.9 && y < -0.45) || (abs(x) < 0.24 && abs(y) < 0.9)
	}},
	{"rosette", func(x, y float64) bool {
		for i := 0; i < 8; i++ {
			a := float64(i) * math.Pi / 4
			if disc(x, y, 0.68*math.Cos(a), 0.68*math.Sin(a), 0.22) {
				return true
			}
		}
		return false
	}},
	{"bolt", func(x, y float64) bool {
		// A lightning bolt: two offset slanted bars.
		return (y > -0.95 && y < 0.05 && abs(x-0.25+(y+0.95)*0.45) < 0.2) ||
			(y > -0.1 && y < 0.95 && abs(x+0.15+(y+0.1)*0.45) < 0.2) ||
			(abs(y+0.05) < 0.12 && x > -0.3 && x < 0.25)
	}},
	{"ellipse", func(x, y float64) bool { return x*x+y*y/0.25 < 0.95 }},
}

// MaxTags is the most tag motifs a data set can have.
var MaxTags = len(motifs)
