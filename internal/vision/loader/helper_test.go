package loader

import (
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
)

// writeTestImages writes n images of varied sizes and aspect ratios,
// alternately JPEG and PNG, with one-hot targets over 3 labels.
func writeTestImages(dir string, n int) []Item {
	var its []Item
	for i := range n {
		w, h := 40+9*i, 30+5*(i%4)
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				m.Set(x, y, color.RGBA{uint8(17 * i), uint8(x * 255 / w), uint8((x + y) * 3), 255})
			}
		}
		var path string
		if i%2 == 0 {
			path = filepath.Join(dir, fmt.Sprintf("%02d.jpg", i))
			f, _ := os.Create(path)
			jpeg.Encode(f, m, &jpeg.Options{Quality: 90})
			f.Close()
		} else {
			path = filepath.Join(dir, fmt.Sprintf("%02d.png", i))
			f, _ := os.Create(path)
			png.Encode(f, m)
			f.Close()
		}
		t := make([]float32, 3)
		t[i%3] = 1
		its = append(its, Item{Path: path, Target: t})
	}
	return its
}
