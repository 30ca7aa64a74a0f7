// Writes internal/zoo/models/testdata/nsfwjs_expected.json (MobileNetV2) or,
// with MODEL=InceptionV3, nsfwjs_inception_expected.json: what the nsfwjs
// model (npm nsfwjs@4.4.0, TensorFlow.js CPU backend) predicts for a few
// real emoji images from emoji-datasource-google, through nsfwjs's own
// infer() (pixels /255, bilinear resize to 224 (299 for InceptionV3) with
// align_corners, NHWC). The Go tests map the same weights onto the zoo's
// mobilenet_v2 / inception_v3 and must reproduce these numbers. Run once,
// from the repository root:
//
//   [MODEL=InceptionV3] node scripts/golden/nsfwjs_expected.mjs [assets dir] [out file]
//
// The assets dir defaults to $IMET_ASSETS or .cache/npm/node_modules.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const assets = process.argv[2] || process.env.IMET_ASSETS || path.resolve(".cache/npm/node_modules");
const modelName = process.env.MODEL || "MobileNetV2";
const out = process.argv[3] ||
  (modelName === "InceptionV3" ? "internal/zoo/models/testdata/nsfwjs_inception_expected.json" : "internal/zoo/models/testdata/nsfwjs_expected.json");
const require = createRequire(path.join(assets, "nsfwjs", "package.json"));
const tf = require("@tensorflow/tfjs");
const nsfwjs = require("nsfwjs");
const { MobileNetV2Model } = require("nsfwjs/models/mobilenet_v2");
const { InceptionV3Model } = require("nsfwjs/models/inception_v3");

// Minimal PNG decoder: 8-bit RGB/RGBA, non-interlaced (what the emoji
// set uses). Returns RGB bytes, alpha dropped as tf.browser.fromPixels does.
function decodePNG(file) {
  const buf = fs.readFileSync(file);
  let pos = 8, width = 0, height = 0, ctype = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString("ascii", pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error(`${file}: only 8-bit non-interlaced PNGs`);
      ctype = data[9];
    } else if (type === "IDAT") idat.push(data);
    pos += 12 + len;
  }
  const bpp = { 2: 3, 6: 4 }[ctype];
  if (!bpp) throw new Error(`${file}: colour type ${ctype} unsupported`);
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[y * stride + x - bpp] : 0;
      const b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp] : 0;
      let v = line[x];
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      px[y * stride + x] = v & 255;
    }
  }
  const rgb = new Int32Array(width * height * 3);
  for (let i = 0; i < width * height; i++) for (let k = 0; k < 3; k++) rgb[3 * i + k] = px[bpp * i + k];
  return { width, height, rgb };
}

await tf.setBackend("cpu");
const model = await nsfwjs.load(modelName, { modelDefinitions: [MobileNetV2Model, InceptionV3Model] });
const images = ["1f600.png", "1f3a8.png", "1f34e.png", "1f308.png"];
const result = {
  generator: "scripts/golden/nsfwjs_expected.mjs",
  model: modelName,
  nsfwjs: JSON.parse(fs.readFileSync(path.join(assets, "nsfwjs", "package.json"), "utf8")).version,
  tfjs: tf.version.tfjs,
  backend: tf.getBackend(),
  classes: ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"],
  feature_stride: 20,
  images: [],
};
for (const name of images) {
  const file = path.join(assets, "emoji-datasource-google", "img", "google", "64", name);
  const { width, height, rgb } = decodePNG(file);
  const img = tf.tensor3d(rgb, [height, width, 3], "int32");
  const probs = Array.from(await model.infer(img).data());
  // The pooled 1280-d backbone output, sampled, pins the backbone apart
  // from the small head.
  const feat = Array.from(await model.infer(img, "flatten_1").data());
  result.images.push({
    file: "emoji-datasource-google/img/google/64/" + name,
    probabilities: probs,
    features_sampled: feat.filter((_, i) => i % result.feature_stride === 0),
    features_mean: feat.reduce((a, b) => a + b, 0) / feat.length,
  });
  img.dispose();
}
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify(result, null, 1) + "\n");
console.log("wrote", out);
for (const r of result.images) console.log(r.file, r.probabilities.map((p) => p.toFixed(4)).join(" "));
