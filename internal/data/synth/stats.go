package synth

import "slices"

// Stats are the label statistics of a plan: what the generator drew and
// how much noise reached the train labels.
type Stats struct {
	TagsPerImage   float64 // true tags per image, all images
	MinTags        int     // fewest true tags on an image
	MaxTags        int     // most true tags on an image
	CultureCount   []int   // images per true culture
	TagCount       []int   // images per true tag
	MissedTags     float64 // fraction of true train tags absent from train.csv
	SpuriousImages float64 // fraction of train images with a tag not in the image
	WrongCulture   float64 // fraction of train images whose culture is wrong
	Extreme        float64 // fraction of images with aspect ratio 2.5 or more
}

// Stats computes the plan's statistics.
func (p *Plan) Stats() Stats {
	s := Stats{MinTags: 1 << 30, CultureCount: make([]int, p.Config.Cultures), TagCount: make([]int, p.Config.Tags)}
	var tags, trueTrain, missed, train, spurious, wrong, extreme int
	for i := range p.Images {
		im := &p.Images[i]
		tags += len(im.Tags)
		s.MinTags = min(s.MinTags, len(im.Tags))
		s.MaxTags = max(s.MaxTags, len(im.Tags))
		s.CultureCount[im.Culture]++
		for _, t := range im.Tags {
			s.TagCount[t]++
		}
		if a, b := max(im.W, im.H), min(im.W, im.H); float64(a) >= 2.5*float64(b) {
			extreme++
		}
		if im.Test {
			continue
		}
		train++
		trueTrain += len(im.Tags)
		for _, t := range im.Tags {
			if !slices.Contains(im.NoisyTags, t) {
				missed++
			}
		}
		for _, t := range im.NoisyTags {
			if !slices.Contains(im.Tags, t) {
				spurious++
				break
			}
		}
		if im.NoisyCulture != im.Culture {
			wrong++
		}
	}
	n := len(p.Images)
	s.TagsPerImage = float64(tags) / float64(n)
	s.Extreme = float64(extreme) / float64(n)
	if train > 0 {
		s.MissedTags = float64(missed) / float64(max(trueTrain, 1))
		s.SpuriousImages = float64(spurious) / float64(train)
		s.WrongCulture = float64(wrong) / float64(train)
	}
	return s
}
