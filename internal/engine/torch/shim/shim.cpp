// The only C++ in imet: thin extern "C" wrappers over ATen and autograd.
// Every entry point catches every exception and returns its text, so a shape
// mismatch becomes a Go error instead of killing the process.
#include "shim.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/cuda.h>
#include <torch/version.h>
// Device names need the CUDA runtime's headers, which scripts/build-shim.sh
// passes (IMET_WITH_CUDA) only when the libtorch has CUDA and they are found.
#if defined(IMET_WITH_CUDA) && __has_include(<ATen/cuda/CUDAContext.h>) && __has_include(<cuda_runtime_api.h>)
#include <ATen/cuda/CUDAContext.h>
#define IMET_DEVICE_NAMES 1
#endif
// c10d: Gloo needs its own headers (Debian: libgloo-dev), NCCL a CUDA
// libtorch with nccl.h; a shim built without them reports the backend as
// unavailable instead of failing to build.
#if __has_include(<torch/csrc/distributed/c10d/TCPStore.hpp>) && __has_include(<gloo/context.h>)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#define IMET_DIST_GLOO 1
#if defined(IMET_WITH_NCCL) && __has_include(<nccl.h>)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define IMET_DIST_NCCL 1
#endif
#endif
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

terr dup(const char *s) {
  size_t n = std::strlen(s);
  char *p = static_cast<char *>(std::malloc(n + 1));
  std::memcpy(p, s, n + 1);
  return p;
}

#define TRY(...)                                                   \
  try {                                                            \
    __VA_ARGS__;                                                   \
    return nullptr;                                                \
  } catch (const c10::Error &e) {                                  \
    return dup(e.what_without_backtrace());                        \
  } catch (const std::exception &e) {                              \
    return dup(e.what());                                          \
  } catch (...) {                                                  \
    return dup("unknown C++ exception");                           \
  }

inline at::Tensor &T(tt t) { return *static_cast<at::Tensor *>(t); }
inline tt H(at::Tensor t) { return new at::Tensor(std::move(t)); }
inline c10::optional<at::Tensor> Opt(tt t) {
  if (t == nullptr) return c10::nullopt;
  return T(t);
}

at::ScalarType dtype(int d) {
  switch (d) {
  case TT_DTYPE_FLOAT32: return at::kFloat;
  case TT_DTYPE_BFLOAT16: return at::kBFloat16;
  case TT_DTYPE_INT64: return at::kLong;
  case TT_DTYPE_FLOAT64: return at::kDouble;
  case TT_DTYPE_UINT8: return at::kByte;
  case TT_DTYPE_BOOL: return at::kBool;
  case TT_DTYPE_FLOAT16: return at::kHalf;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(d));
}

int dtypeCode(at::ScalarType s) {
  switch (s) {
  case at::kFloat: return TT_DTYPE_FLOAT32;
  case at::kBFloat16: return TT_DTYPE_BFLOAT16;
  case at::kLong: return TT_DTYPE_INT64;
  case at::kDouble: return TT_DTYPE_FLOAT64;
  case at::kByte: return TT_DTYPE_UINT8;
  case at::kBool: return TT_DTYPE_BOOL;
  case at::kHalf: return TT_DTYPE_FLOAT16;
  default: return -100 - static_cast<int>(s);
  }
}

at::Device device(int d) {
  if (d == TT_DEVICE_CPU) return at::Device(at::kCPU);
  if (d < 0) throw std::invalid_argument("unknown device code " + std::to_string(d));
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(d));
}

at::TensorOptions opts(int dt, int dev) { return at::TensorOptions().dtype(dtype(dt)).device(device(dev)); }

at::IntArrayRef ints(const int64_t *p, int n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }

} // namespace

extern "C" {

void tt_free(tt t) { delete static_cast<at::Tensor *>(t); }
void tt_free_err(terr e) { std::free(e); }

terr tt_from_data(const void *data, const int64_t *shape, int ndim, int dt, tt *out) {
  TRY(*out = H(at::from_blob(const_cast<void *>(data), ints(shape, ndim), at::TensorOptions().dtype(dtype(dt))).clone()))
}

terr tt_copy_out(tt t, void *dst, int64_t nbytes) {
  TRY({
    at::Tensor c = T(t).detach().to(at::kCPU).contiguous();
    int64_t have = static_cast<int64_t>(c.nbytes());
    if (have != nbytes)
      throw std::invalid_argument("copy_out: tensor has " + std::to_string(have) + " bytes, buffer " +
                                  std::to_string(nbytes));
    std::memcpy(dst, c.data_ptr(), static_cast<size_t>(nbytes));
  })
}

terr tt_info(tt t, int *ndim, int64_t *shape, int *dt, int *dev, int *rg) {
  TRY({
    at::Tensor &x = T(t);
    if (!x.defined()) throw std::invalid_argument("undefined tensor");
    int n = static_cast<int>(x.dim());
    if (n > 16) throw std::invalid_argument("more than 16 dimensions");
    *ndim = n;
    for (int i = 0; i < n; i++) shape[i] = x.size(i);
    *dt = dtypeCode(x.scalar_type());
    *dev = x.is_cuda() ? x.device().index() : TT_DEVICE_CPU;
    *rg = x.requires_grad() ? 1 : 0;
  })
}

terr tt_item(tt t, double *out) { TRY(*out = T(t).item<double>()) }

terr tt_full(const int64_t *shape, int ndim, double v, int dt, int dev, tt *out) {
  TRY(*out = H(at::full(ints(shape, ndim), v, opts(dt, dev))))
}
terr tt_randn(const int64_t *shape, int ndim, int dt, int dev, tt *out) {
  TRY(*out = H(at::randn(ints(shape, ndim), opts(dt, dev))))
}
terr tt_rand(const int64_t *shape, int ndim, int dt, int dev, tt *out) {
  TRY(*out = H(at::rand(ints(shape, ndim), opts(dt, dev))))
}
terr tt_arange(int64_t n, int dt, int dev, tt *out) { TRY(*out = H(at::arange(n, opts(dt, dev)))) }

terr tt_set_requires_grad(tt t, int on) { TRY(T(t).set_requires_grad(on != 0)) }
terr tt_grad(tt t, tt *out) {
  TRY({
    const at::Tensor &g = T(t).grad();
    *out = g.defined() ? new at::Tensor(g) : nullptr;
  })
}
terr tt_backward(tt t) { TRY(T(t).backward()) }
terr tt_zero_grad(tt t) { TRY(T(t).mutable_grad().reset()) }
terr tt_detach(tt t, tt *out) { TRY(*out = H(T(t).detach())) }
terr tt_clone(tt t, tt *out) { TRY(*out = H(T(t).clone())) }

terr tt_to(tt t, int dt, int dev, tt *out) { TRY(*out = H(T(t).to(device(dev), dtype(dt)))) }
terr tt_to_device(tt t, int dev, int nb, tt *out) {
  TRY(*out = H(T(t).to(device(dev), T(t).scalar_type(), nb != 0)))
}
terr tt_from_data_pinned(const void *data, const int64_t *shape, int ndim, int dt, tt *out) {
  TRY({
    at::Tensor t = at::empty(ints(shape, ndim), at::TensorOptions().dtype(dtype(dt)).pinned_memory(true));
    if (t.nbytes() > 0) std::memcpy(t.data_ptr(), data, t.nbytes());
    *out = H(std::move(t));
  })
}
terr tt_is_pinned(tt t, int *out) { TRY(*out = T(t).is_pinned() ? 1 : 0) }
terr tt_contiguous(tt t, int cl, tt *out) {
  TRY(*out = H(T(t).contiguous(cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous)))
}
terr tt_is_channels_last(tt t, int *out) {
  TRY(*out = T(t).is_contiguous(at::MemoryFormat::ChannelsLast) && T(t).dim() == 4 ? 1 : 0)
}

terr tt_unary(int op, tt a, tt *out) {
  TRY({
    at::Tensor &x = T(a);
    switch (op) {
    case TT_UNARY_RELU: *out = H(at::relu(x)); break;
    case TT_UNARY_RELU6: *out = H(at::hardtanh(x, 0.0, 6.0)); break;
    case TT_UNARY_SIGMOID: *out = H(at::sigmoid(x)); break;
    case TT_UNARY_SILU: *out = H(at::silu(x)); break;
    case TT_UNARY_TANH: *out = H(at::tanh(x)); break;
    case TT_UNARY_NEG: *out = H(at::neg(x)); break;
    case TT_UNARY_EXP: *out = H(at::exp(x)); break;
    case TT_UNARY_LOG: *out = H(at::log(x)); break;
    case TT_UNARY_SQRT: *out = H(at::sqrt(x)); break;
    case TT_UNARY_ABS: *out = H(at::abs(x)); break;
    case TT_UNARY_LOG_SIGMOID: *out = H(at::log_sigmoid(x)); break;
    case TT_UNARY_RELU_INPLACE: *out = H(at::relu_(x)); break; // in place, returns an alias
    default: throw std::invalid_argument("unknown unary op " + std::to_string(op));
    }
  })
}

terr tt_binary(int op, tt a, tt b, tt *out) {
  TRY({
    at::Tensor &x = T(a), &y = T(b);
    switch (op) {
    case TT_BINARY_ADD: *out = H(at::add(x, y)); break;
    case TT_BINARY_SUB: *out = H(at::sub(x, y)); break;
    case TT_BINARY_MUL: *out = H(at::mul(x, y)); break;
    case TT_BINARY_DIV: *out = H(at::div(x, y)); break;
    case TT_BINARY_MATMUL: *out = H(at::matmul(x, y)); break;
    case TT_BINARY_MAXIMUM: *out = H(at::maximum(x, y)); break;
    case TT_BINARY_MINIMUM: *out = H(at::minimum(x, y)); break;
    case TT_BINARY_EQ: *out = H(at::eq(x, y)); break;
    case TT_BINARY_GT: *out = H(at::gt(x, y)); break;
    case TT_BINARY_LT: *out = H(at::lt(x, y)); break;
    case TT_BINARY_ADD_INPLACE: *out = H(x.add_(y)); break; // in place, returns an alias
    default: throw std::invalid_argument("unknown binary op " + std::to_string(op));
    }
  })
}

terr tt_scalar(int op, tt a, double s, tt *out) {
  TRY({
    at::Tensor &x = T(a);
    switch (op) {
    case TT_SCALAR_ADD: *out = H(at::add(x, s)); break;
    case TT_SCALAR_MUL: *out = H(at::mul(x, s)); break;
    case TT_SCALAR_POW: *out = H(at::pow(x, s)); break;
    case TT_SCALAR_DIV: *out = H(at::div(x, s)); break;
    case TT_SCALAR_RSUB: *out = H(at::rsub(x, s)); break;
    case TT_SCALAR_GT: *out = H(at::gt(x, s)); break;
    case TT_SCALAR_LT: *out = H(at::lt(x, s)); break;
    default: throw std::invalid_argument("unknown scalar op " + std::to_string(op));
    }
  })
}

terr tt_reduce(int op, tt a, const int64_t *dims, int nd, int keep, tt *out) {
  TRY({
    at::Tensor &x = T(a);
    bool all = nd == 0;
    switch (op) {
    case TT_REDUCE_SUM: *out = H(all ? at::sum(x) : at::sum(x, ints(dims, nd), keep != 0)); break;
    case TT_REDUCE_MEAN: *out = H(all ? at::mean(x) : at::mean(x, ints(dims, nd), keep != 0)); break;
    case TT_REDUCE_MAX: *out = H(all ? at::max(x) : at::amax(x, ints(dims, nd), keep != 0)); break;
    case TT_REDUCE_MIN: *out = H(all ? at::min(x) : at::amin(x, ints(dims, nd), keep != 0)); break;
    default: throw std::invalid_argument("unknown reduction " + std::to_string(op));
    }
  })
}

terr tt_conv2d(tt x, tt w, tt b, const int64_t *s, const int64_t *p, const int64_t *d, int64_t g, tt *out) {
  TRY(*out = H(at::conv2d(T(x), T(w), Opt(b), ints(s, 2), ints(p, 2), ints(d, 2), g)))
}

terr tt_batch_norm(tt x, tt w, tt b, tt rm, tt rv, int training, double momentum, double eps, tt *out) {
  TRY(*out = H(at::batch_norm(T(x), Opt(w), Opt(b), Opt(rm), Opt(rv), training != 0, momentum, eps, true)))
}

terr tt_max_pool2d(tt x, const int64_t *k, const int64_t *s, const int64_t *p, int ceil, tt *out) {
  TRY(*out = H(at::max_pool2d(T(x), ints(k, 2), ints(s, 2), ints(p, 2), at::IntArrayRef({1, 1}), ceil != 0)))
}

terr tt_avg_pool2d(tt x, const int64_t *k, const int64_t *s, const int64_t *p, int ceil, int cip, tt *out) {
  TRY(*out = H(at::avg_pool2d(T(x), ints(k, 2), ints(s, 2), ints(p, 2), ceil != 0, cip != 0)))
}

terr tt_adaptive_pool2d(tt x, int max, int64_t oh, int64_t ow, tt *out) {
  TRY({
    if (max)
      *out = H(std::get<0>(at::adaptive_max_pool2d(T(x), {oh, ow})));
    else
      *out = H(at::adaptive_avg_pool2d(T(x), {oh, ow}));
  })
}

terr tt_linear(tt x, tt w, tt b, tt *out) { TRY(*out = H(at::linear(T(x), T(w), Opt(b)))) }

terr tt_cat(tt *ts, int n, int64_t dim, tt *out) {
  TRY({
    std::vector<at::Tensor> v;
    v.reserve(n);
    for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
    *out = H(at::cat(v, dim));
  })
}

terr tt_flatten(tt x, int64_t s, int64_t e, tt *out) { TRY(*out = H(at::flatten(T(x), s, e))) }
terr tt_reshape(tt x, const int64_t *shape, int nd, tt *out) { TRY(*out = H(at::reshape(T(x), ints(shape, nd)))) }
terr tt_permute(tt x, const int64_t *dims, int nd, tt *out) { TRY(*out = H(T(x).permute(ints(dims, nd)))) }
terr tt_narrow(tt x, int64_t dim, int64_t start, int64_t len, tt *out) {
  TRY(*out = H(at::narrow(T(x), dim, start, len)))
}
terr tt_index_select(tt x, int64_t dim, tt idx, tt *out) { TRY(*out = H(at::index_select(T(x), dim, T(idx)))) }
terr tt_dropout(tt x, double p, int train, tt *out) { TRY(*out = H(at::dropout(T(x), p, train != 0))) }
terr tt_softmax(tt x, int64_t dim, int log, tt *out) {
  TRY(*out = H(log ? at::log_softmax(T(x), dim) : at::softmax(T(x), dim)))
}
terr tt_clamp(tt x, double lo, double hi, tt *out) { TRY(*out = H(at::clamp(T(x), lo, hi))) }

static_assert(int(TT_REDUCTION_NONE) == int(at::Reduction::None) &&
                  int(TT_REDUCTION_MEAN) == int(at::Reduction::Mean) &&
                  int(TT_REDUCTION_SUM) == int(at::Reduction::Sum),
              "tt_reduction must match at::Reduction: the code is passed through");
terr tt_bce_logits(tt x, tt y, tt w, tt pw, int reduction, tt *out) {
  TRY(*out = H(at::binary_cross_entropy_with_logits(T(x), T(y), Opt(w), Opt(pw), reduction)))
}
terr tt_argmax(tt x, int64_t dim, tt *out) { TRY(*out = H(at::argmax(T(x), dim))) }
terr tt_topk(tt x, int64_t k, int64_t dim, tt *values, tt *indices) {
  TRY(auto r = at::topk(T(x), k, dim, true, true); *values = H(std::get<0>(r)); *indices = H(std::get<1>(r)))
}

terr tt_copy_(tt dst, tt src) { TRY(T(dst).copy_(T(src))) }
terr tt_fill_(tt t, double v) { TRY(T(t).fill_(v)) }
terr tt_uniform_(tt t, double lo, double hi) { TRY(T(t).uniform_(lo, hi)) }
terr tt_normal_(tt t, double mean, double std) { TRY(T(t).normal_(mean, std)) }

// Mirrors torch.optim.AdamW (1.13, single-tensor path, amsgrad off) so that
// results match torch.optim to rounding.
terr tt_adamw_step(tt p, tt g, tt m, tt v, double lr, double b1, double b2, double eps, double wd, int64_t step) {
  TRY({
    at::NoGradGuard ng;
    at::Tensor &param = T(p), &grad = T(g), &ea = T(m), &eas = T(v);
    param.mul_(1 - lr * wd);
    ea.mul_(b1).add_(grad, 1 - b1);
    eas.mul_(b2).addcmul_(grad, grad, 1 - b2);
    double bc1 = 1 - std::pow(b1, static_cast<double>(step));
    double bc2 = 1 - std::pow(b2, static_cast<double>(step));
    double stepSize = lr / bc1;
    at::Tensor denom = (eas.sqrt() / std::sqrt(bc2)).add_(eps);
    param.addcdiv_(ea, denom, -stepSize);
  })
}

// Mirrors torch.optim.SGD (1.13, single-tensor path, maximize off).
terr tt_sgd_step(tt p, tt g, tt buf, double lr, double momentum, double dampening, double wd, int nesterov,
                 int first) {
  TRY({
    at::NoGradGuard ng;
    at::Tensor &param = T(p);
    at::Tensor dp = T(g);
    if (wd != 0) dp = dp.add(param, wd);
    if (momentum != 0) {
      at::Tensor &b = T(buf);
      if (first)
        b.copy_(dp);
      else
        b.mul_(momentum).add_(dp, 1 - dampening);
      if (nesterov)
        dp = dp.add(b, momentum);
      else
        dp = b;
    }
    param.add_(dp, -lr);
  })
}

namespace {
std::vector<at::Tensor> tensors(tt *ts, int n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}
at::Tensor vectorNorm(const at::Tensor &t) {
  std::vector<int64_t> all(static_cast<size_t>(t.dim()));
  for (size_t i = 0; i < all.size(); i++) all[i] = static_cast<int64_t>(i);
  return at::norm(t, at::Scalar(2.0), all, false);
}
} // namespace

// Mirrors torch.nn.utils.clip_grad_norm_ (1.13, norm_type 2): torch.norm
// over all dims of each gradient, the norm of their stack, and
// max_norm / (total + 1e-6) (Python's float / Tensor is reciprocal, then
// multiply) clamped at 1 multiplied into every gradient.
terr tt_clip_grad_norm_(tt *grads, int n, double max_norm, double *total) {
  TRY({
    at::NoGradGuard ng;
    *total = 0;
    if (n > 0) {
      std::vector<at::Tensor> gs = tensors(grads, n);
      std::vector<at::Tensor> norms;
      norms.reserve(gs.size());
      for (auto &g : gs) norms.push_back(vectorNorm(g).to(gs[0].device()));
      at::Tensor tot = vectorNorm(at::stack(norms));
      at::Tensor coef = at::clamp_max(at::mul(at::reciprocal(at::add(tot, 1e-6)), max_norm), 1.0);
      for (auto &g : gs) g.mul_(coef.to(g.device()));
      *total = tot.item<double>();
    }
  })
}

// GradScaler.unscale_ (torch/cuda/amp/grad_scaler.py): gradients grouped
// by dtype go through at::_amp_foreach_non_finite_check_and_unscale_ on
// CUDA. libtorch 1.13 has no CPU kernel for it, so on the CPU the same
// element rule (flag a non-finite value, then multiply by inv_scale unless
// it is 1) runs through ordinary ops. One host sync reads the flag, as
// GradScaler.step does before deciding to step.
terr tt_amp_unscale_(tt *grads, int n, double inv_scale, int *found_inf) {
  TRY({
    at::NoGradGuard ng;
    *found_inf = 0;
    if (n > 0) {
      std::vector<at::Tensor> gs = tensors(grads, n);
      at::Device dev = gs[0].device();
      for (auto &g : gs)
        if (g.device() != dev)
          throw std::invalid_argument("amp_unscale_: gradients on " + dev.str() + " and " + g.device().str());
      at::TensorOptions fo = at::TensorOptions().dtype(at::kFloat).device(dev);
      at::Tensor found = at::zeros({1}, fo);
      at::Tensor inv = at::full({1}, inv_scale, fo); // float32, as GradScaler's reciprocal().float()
      if (dev.is_cuda()) {
        std::vector<at::ScalarType> order;
        std::vector<std::vector<at::Tensor>> byType;
        for (auto &g : gs) {
          size_t k = 0;
          while (k < order.size() && order[k] != g.scalar_type()) k++;
          if (k == order.size()) {
            order.push_back(g.scalar_type());
            byType.emplace_back();
          }
          byType[k].push_back(g);
        }
        for (auto &list : byType) at::_amp_foreach_non_finite_check_and_unscale_(list, found, inv);
        *found_inf = found.item<float>() != 0 ? 1 : 0;
      } else {
        bool one = inv.item<float>() == 1.0f;
        for (auto &g : gs) {
          if (!at::isfinite(g).all().item<bool>()) *found_inf = 1;
          if (!one) g.mul_(inv);
        }
      }
    }
  })
}

terr tt_set_num_threads(int n) { TRY(at::set_num_threads(n)) }
int tt_get_num_threads(void) { return at::get_num_threads(); }
// at::manual_seed seeds the CPU generator and, where GPUs are present,
// each of theirs (dropout on a GPU draws from its own generator).
terr tt_manual_seed(uint64_t seed) { TRY(at::manual_seed(seed)) }
int tt_grad_enabled(void) { return c10::GradMode::is_enabled() ? 1 : 0; }
void tt_set_grad_enabled(int on) { c10::GradMode::set_enabled(on != 0); }

// compat:begin -- every call whose spelling differs between libtorch 1.13
// and 2.x lives here, behind a version test (docs/engine.md lists them;
// compat_test.go checks that none appears elsewhere).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define IMET_AUTOCAST_DEVICE_API 1
#endif

// autocastSet switches autocast of one device type (CPU or CUDA) and sets
// the type it casts to.
static void autocastSet(at::DeviceType dev, bool on, at::ScalarType dt) {
#ifdef IMET_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_dtype(dev, dt);
  at::autocast::set_autocast_enabled(dev, on);
#else
  if (dev == at::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(dt);
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_autocast_cpu_dtype(dt);
    at::autocast::set_cpu_enabled(on);
  }
#endif
}

// The cuDNN version libtorch loaded; the hooks behind it are reached
// through Context, whose static accessor exists in 1.13 and 2.x alike.
static long cudnnVersion() { return at::globalContext().hasCuDNN() ? at::globalContext().versionCuDNN() : 0; }

#ifdef IMET_DIST_GLOO
// A process group's collectives: in 1.13 ProcessGroupGloo and
// ProcessGroupNCCL derive from ProcessGroup, in 2.x from Backend (the
// ProcessGroup there dispatches to backends). Both spell broadcast,
// allreduce and barrier alike and return a Work to wait on.
#if TORCH_VERSION_MAJOR >= 2
using DistBackend = c10d::Backend;
#else
using DistBackend = c10d::ProcessGroup;
#endif
#endif
// compat:end

static void autocastEnable(bool on, bool cuda) {
  autocastSet(at::kCPU, on, at::kBFloat16);
  if (cuda) autocastSet(at::kCUDA, on, at::kBFloat16);
}

// Autocast to bfloat16 on CPU, and on CUDA where a device is present.
terr tt_autocast(int enter) {
  TRY({
    bool cuda = torch::cuda::is_available();
    if (enter) {
      autocastEnable(true, cuda);
      at::autocast::increment_nesting();
    } else {
      if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
      autocastEnable(false, cuda);
    }
  })
}

// Autocast of the device type the model runs on, to dt: bfloat16 on the
// CPU, float16 or bfloat16 on CUDA (torch.autocast(device_type, dtype)).
terr tt_autocast_on(int enter, int device, int dt) {
  TRY({
    at::DeviceType dev = device == TT_DEVICE_CPU ? at::kCPU : at::kCUDA;
    at::ScalarType type = dtype(dt);
    if (enter) {
      autocastSet(dev, true, type);
      at::autocast::increment_nesting();
    } else {
      if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
      autocastSet(dev, false, type);
    }
  })
}

terr tt_inference_mode(int enter, void **guard) {
  TRY({
    if (enter)
      *guard = new c10::InferenceMode(true);
    else
      delete static_cast<c10::InferenceMode *>(*guard);
  })
}

int tt_cuda_device_count(void) {
  try {
    return static_cast<int>(torch::cuda::device_count());
  } catch (...) {
    return 0;
  }
}

// cuDNN's autotuner (torch.backends.cudnn.benchmark); a flag only on a
// CPU-only libtorch.
terr tt_set_cudnn_benchmark(int on) { TRY(at::globalContext().setBenchmarkCuDNN(on != 0)) }
int tt_get_cudnn_benchmark(void) { return at::globalContext().benchmarkCuDNN() ? 1 : 0; }

const char *tt_version(void) { return TORCH_VERSION; }

terr tt_runtime_info(char **out) {
  TRY({
    bool cuda = torch::cuda::is_available();
    int n = cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
    long cudnn = cuda ? cudnnVersion() : 0;
    std::string s = std::string("{\"torch\":\"") + TORCH_VERSION + "\"";
    s += std::string(",\"cuda\":") + (cuda ? "true" : "false");
    s += ",\"cuda_devices\":" + std::to_string(n);
    s += ",\"cudnn\":" + std::to_string(cudnn);
    s += ",\"cxx11_abi\":" + std::to_string(_GLIBCXX_USE_CXX11_ABI);
    s += ",\"device_names\":[";
#ifdef IMET_DEVICE_NAMES
    for (int i = 0; i < n; i++) {
      std::string name = at::cuda::getDeviceProperties(i)->name;
      for (char &c : name)
        if (c == '"' || c == '\\') c = ' ';
      s += (i ? ",\"" : "\"") + name + "\"";
    }
#endif
    s += "]}";
    *out = dup(s.c_str());
  })
}

// ---- distributed (c10d) ----

} // extern "C"

#ifdef IMET_DIST_GLOO
namespace {
struct DistGroup {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<DistBackend> pg;
  int world = 1;
};
DistGroup &G(tt_pg p) { return *static_cast<DistGroup *>(p); }

void waitAll(std::vector<c10::intrusive_ptr<c10d::Work>> &works) {
  for (auto &w : works) w->wait();
}

// collective runs op on each tensor in place, all in flight at once, or on
// one flat tensor per (dtype, device) whose values are copied back after.
template <typename Op> void collective(tt *ts, int n, bool coalesce, Op op) {
  at::NoGradGuard ng;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  if (!coalesce) {
    for (int i = 0; i < n; i++) {
      std::vector<at::Tensor> one{T(ts[i]).detach()};
      works.push_back(op(one));
    }
    waitAll(works);
    return;
  }
  std::vector<std::vector<at::Tensor>> groups;
  for (int i = 0; i < n; i++) {
    at::Tensor t = T(ts[i]).detach();
    size_t k = 0;
    while (k < groups.size() &&
           (groups[k][0].scalar_type() != t.scalar_type() || groups[k][0].device() != t.device()))
      k++;
    if (k == groups.size()) groups.emplace_back();
    groups[k].push_back(t);
  }
  std::vector<at::Tensor> flats;
  for (auto &g : groups) {
    std::vector<at::Tensor> parts;
    for (auto &t : g) parts.push_back(t.reshape({-1}));
    std::vector<at::Tensor> one{at::cat(parts)};
    works.push_back(op(one));
    flats.push_back(one[0]);
  }
  waitAll(works);
  for (size_t k = 0; k < groups.size(); k++) {
    int64_t off = 0;
    for (auto &t : groups[k]) {
      t.copy_(flats[k].narrow(0, off, t.numel()).view(t.sizes()));
      off += t.numel();
    }
  }
}
} // namespace
#endif

extern "C" {

int tt_dist_available(int backend) {
#ifdef IMET_DIST_GLOO
  if (backend == TT_DIST_GLOO) return 1;
#ifdef IMET_DIST_NCCL
  if (backend == TT_DIST_NCCL) return 1;
#endif
#endif
  (void)backend;
  return 0;
}

terr tt_dist_init(int backend, const char *host, int port, int host_store, const char *prefix, int rank,
                  int world, int64_t timeout_ms, const char *iface, tt_pg *out) {
  TRY({
#ifndef IMET_DIST_GLOO
    (void)backend, (void)host, (void)port, (void)host_store, (void)prefix, (void)rank, (void)world,
        (void)timeout_ms, (void)iface, (void)out;
    throw std::runtime_error("this shim was built without c10d's Gloo headers (Debian: libgloo-dev; "
                             "then rebuild it with scripts/build-shim.sh)");
#else
    if (world < 1 || rank < 0 || rank >= world)
      throw std::invalid_argument("rank " + std::to_string(rank) + " of world size " + std::to_string(world));
    std::chrono::milliseconds timeout(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = host_store != 0;
    so.numWorkers = static_cast<std::size_t>(world);
    so.waitWorkers = true; // clients count themselves in; the server waits for all
    so.timeout = timeout;
    auto d = std::make_unique<DistGroup>();
    d->world = world;
    d->store = c10::make_intrusive<c10d::TCPStore>(std::string(host), so);
    if (prefix != nullptr && prefix[0] != 0)
      d->store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), d->store);
    if (backend == TT_DIST_GLOO) {
      auto o = c10d::ProcessGroupGloo::Options::create(timeout);
      if (iface != nullptr && iface[0] != 0)
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(std::string(iface)));
      else
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      o->threads = 2;
      d->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(d->store, rank, world, o);
    } else if (backend == TT_DIST_NCCL) {
#ifdef IMET_DIST_NCCL
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      d->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(d->store, rank, world, o);
#else
      throw std::runtime_error("this shim has no NCCL (a CUDA libtorch and nccl.h are needed at build time)");
#endif
    } else {
      throw std::invalid_argument("unknown backend " + std::to_string(backend));
    }
    *out = d.release();
#endif
  })
}

void tt_dist_free(tt_pg pg) {
#ifdef IMET_DIST_GLOO
  delete static_cast<DistGroup *>(pg);
#else
  (void)pg;
#endif
}

terr tt_dist_allreduce(tt_pg pg, tt *ts, int n, int op, int coalesce) {
  TRY({
#ifndef IMET_DIST_GLOO
    (void)pg, (void)ts, (void)n, (void)op, (void)coalesce;
    throw std::runtime_error("no c10d in this shim");
#else
    c10d::AllreduceOptions o;
    if (op == TT_DIST_MAX)
      o.reduceOp = c10d::ReduceOp::MAX;
    else if (op != TT_DIST_SUM)
      throw std::invalid_argument("unknown reduction " + std::to_string(op));
    DistGroup &d = G(pg);
    collective(ts, n, coalesce != 0,
               [&](std::vector<at::Tensor> &one) { return d.pg->allreduce(one, o); });
#endif
  })
}

terr tt_dist_broadcast(tt_pg pg, tt *ts, int n, int root, int coalesce) {
  TRY({
#ifndef IMET_DIST_GLOO
    (void)pg, (void)ts, (void)n, (void)root, (void)coalesce;
    throw std::runtime_error("no c10d in this shim");
#else
    c10d::BroadcastOptions o;
    o.rootRank = root;
    DistGroup &d = G(pg);
    collective(ts, n, coalesce != 0,
               [&](std::vector<at::Tensor> &one) { return d.pg->broadcast(one, o); });
#endif
  })
}

terr tt_dist_barrier(tt_pg pg) {
  TRY({
#ifndef IMET_DIST_GLOO
    (void)pg;
    throw std::runtime_error("no c10d in this shim");
#else
    G(pg).pg->barrier()->wait();
#endif
  })
}

// Mirrors the arithmetic of DistributedDataParallel's reducer without a
// communication hook: each gradient is multiplied by 1/world while it is
// copied into its bucket, and the buckets are summed (1.13
// reducer.cpp, mark_variable_ready_dense).
terr tt_dist_average_grads(tt_pg pg, tt *params, int n, int64_t bucket_bytes, double *extra, int nextra) {
  TRY({
#ifndef IMET_DIST_GLOO
    (void)pg, (void)params, (void)n, (void)bucket_bytes, (void)extra, (void)nextra;
    throw std::runtime_error("no c10d in this shim");
#else
    at::NoGradGuard ng;
    DistGroup &d = G(pg);
    std::vector<at::Tensor> grads;
    grads.reserve(n);
    for (int i = n - 1; i >= 0; i--) {
      at::Tensor &p = T(params[i]);
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      grads.push_back(p.grad());
    }
    if (grads.empty() && nextra == 0) return nullptr;
    at::TensorOptions fo = grads.empty() ? at::TensorOptions().dtype(at::kFloat)
                                         : at::TensorOptions().dtype(at::kFloat).device(grads[0].device());
    for (auto &g : grads)
      if (g.scalar_type() != at::kFloat || g.device() != grads[0].device())
        throw std::invalid_argument("average_grads: gradients must all be float32 on one device");
    double scale = 1.0 / d.world;
    // buckets: [first, last) ranges of grads
    std::vector<std::pair<size_t, size_t>> ranges;
    size_t first = 0;
    int64_t bytes = 0;
    for (size_t i = 0; i < grads.size(); i++) {
      int64_t b = grads[i].numel() * 4;
      if (i > first && bytes + b > bucket_bytes) {
        ranges.emplace_back(first, i);
        first = i;
        bytes = 0;
      }
      bytes += b;
    }
    ranges.emplace_back(first, grads.size());
    std::vector<at::Tensor> flats;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (size_t k = 0; k < ranges.size(); k++) {
      bool last = k + 1 == ranges.size();
      int64_t total = last ? nextra : 0;
      for (size_t i = ranges[k].first; i < ranges[k].second; i++) total += grads[i].numel();
      at::Tensor flat = at::empty({total}, fo);
      int64_t off = 0;
      for (size_t i = ranges[k].first; i < ranges[k].second; i++) {
        int64_t m = grads[i].numel();
        flat.narrow(0, off, m).view(grads[i].sizes()).copy_(grads[i]).mul_(scale);
        off += m;
      }
      if (last && nextra > 0) {
        at::Tensor e = at::empty({nextra}, at::TensorOptions().dtype(at::kFloat));
        for (int j = 0; j < nextra; j++) e[j] = extra[j];
        flat.narrow(0, off, nextra).copy_(e);
      }
      std::vector<at::Tensor> one{flat};
      works.push_back(d.pg->allreduce(one));
      flats.push_back(flat);
    }
    for (size_t k = 0; k < ranges.size(); k++) {
      works[k]->wait();
      int64_t off = 0;
      for (size_t i = ranges[k].first; i < ranges[k].second; i++) {
        int64_t m = grads[i].numel();
        grads[i].copy_(flats[k].narrow(0, off, m).view(grads[i].sizes()));
        off += m;
      }
      if (k + 1 == ranges.size() && nextra > 0) {
        at::Tensor e = flats[k].narrow(0, off, nextra).to(at::kCPU).to(at::kDouble);
        for (int j = 0; j < nextra; j++) extra[j] = e[j].item<double>();
      }
    }
#endif
  })
}

} // extern "C"
