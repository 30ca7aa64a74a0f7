// A minimal libtorch user for the bundle test: it runs a convolution on
// deterministic input and reports a checksum, so that a bundled run and an
// unbundled run can be compared exactly.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <cstdio>
#include <string>

extern "C" int torchprog_run(char *buf, int n) {
  try {
    at::manual_seed(7);
    at::set_num_threads(2);  // exercise the bundled OpenMP runtime
    at::Tensor x = at::arange(2 * 3 * 16 * 16, at::kFloat).reshape({2, 3, 16, 16}).sin();
    at::Tensor w = at::arange(8 * 3 * 3 * 3, at::kFloat).reshape({8, 3, 3, 3}).cos() * 0.1;
    at::Tensor y = at::conv2d(x, w, {}, 1, 1).relu();
    at::Tensor m = at::matmul(y.flatten(1), y.flatten(1).t());
    double s = y.sum().item<double>();
    double t = m.abs().sum().item<double>();
    std::snprintf(buf, n, "conv sum %.9g matmul abs sum %.9g threads %d", s, t, at::get_num_threads());
    return 0;
  } catch (const std::exception &e) {
    std::snprintf(buf, n, "%s", e.what());
    return 1;
  }
}
