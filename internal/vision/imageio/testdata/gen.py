#!/usr/bin/python3
"""Generates the decoder fixtures with PIL, an independent encoder.

Run from this directory with Debian's python3 (python3-pil):
    /usr/bin/python3 gen.py
Each image is 32x16 (stored) with four 8-pixel-aligned colour blocks so that
JPEG's 8x8 blocks do not blur the colours across them:
    left half of the top row red, right half green,
    bottom row: left blue, right white  (quadrants, 16x8 each).
"""
from PIL import Image

W, H = 32, 16
QUAD = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]


def quads(mode="RGB"):
    im = Image.new("RGB", (W, H))
    for y in range(H):
        for x in range(W):
            q = (2 if y >= H // 2 else 0) + (1 if x >= W // 2 else 0)
            im.putpixel((x, y), QUAD[q])
    return im if mode == "RGB" else im.convert(mode)


quads().save("quad.jpg", quality=95, subsampling=0)
quads("L").save("gray.jpg", quality=95)
quads("CMYK").save("cmyk.jpg", quality=95)

# EXIF orientation 6: the viewer rotates 90 degrees clockwise to display.
exif = Image.Exif()
exif[0x0112] = 6
quads().save("exif6.jpg", quality=95, subsampling=0, exif=exif.tobytes())

# RGBA: colour kept where alpha is 0 (PIL's convert("RGB") drops alpha).
rgba = quads().convert("RGBA")
rgba.putalpha(Image.new("L", (W, H), 0))
rgba.save("alpha.png")

# 16-bit grayscale: top half 0x8000 (128 in 8 bits), bottom 0xFFFF.
g16 = Image.new("I;16", (W, H))
for y in range(H):
    for x in range(W):
        g16.putpixel((x, y), 0x8000 if y < H // 2 else 0xFFFF)
g16.save("gray16.png")

# Palette PNG.
quads().convert("P", palette=Image.ADAPTIVE, colors=4).save("palette.png")
