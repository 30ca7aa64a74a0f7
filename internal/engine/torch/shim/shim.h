/* The C boundary over libtorch. Every function returns NULL on success or a
 * malloc'd error message (the C++ exception's text) that the caller frees.
 * Tensors cross as opaque handles (heap-allocated at::Tensor). */
#ifndef IMET_TORCH_SHIM_H
#define IMET_TORCH_SHIM_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef void *tt;
typedef char *terr;

/* Codes shared with Go by name (Go reads these enums through cgo), so a
 * code that one side lacks is a build error, never a silent mismatch. */
/* element types; Go's torch.DType values are these */
typedef enum {
  TT_DTYPE_FLOAT32 = 0,
  TT_DTYPE_BFLOAT16 = 1,
  TT_DTYPE_INT64 = 2,
  TT_DTYPE_FLOAT64 = 3,
  TT_DTYPE_UINT8 = 4,
  TT_DTYPE_BOOL = 5,
  TT_DTYPE_FLOAT16 = 6
} tt_dtype;

/* tt_unary */
typedef enum {
  TT_UNARY_RELU = 0,
  TT_UNARY_RELU6 = 1,
  TT_UNARY_SIGMOID = 2,
  TT_UNARY_SILU = 3,
  TT_UNARY_TANH = 4,
  TT_UNARY_NEG = 5,
  TT_UNARY_EXP = 6,
  TT_UNARY_LOG = 7,
  TT_UNARY_SQRT = 8,
  TT_UNARY_ABS = 9,
  TT_UNARY_LOG_SIGMOID = 10,
  TT_UNARY_RELU_INPLACE = 11
} tt_unary_op;

/* tt_binary (broadcasting) */
typedef enum {
  TT_BINARY_ADD = 0,
  TT_BINARY_SUB = 1,
  TT_BINARY_MUL = 2,
  TT_BINARY_DIV = 3,
  TT_BINARY_MATMUL = 4,
  TT_BINARY_MAXIMUM = 5,
  TT_BINARY_MINIMUM = 6,
  TT_BINARY_EQ = 7,
  TT_BINARY_GT = 8,
  TT_BINARY_LT = 9,
  TT_BINARY_ADD_INPLACE = 10
} tt_binary_op;

/* tt_scalar: tensor op number */
typedef enum {
  TT_SCALAR_ADD = 0,
  TT_SCALAR_MUL = 1,
  TT_SCALAR_POW = 2,
  TT_SCALAR_DIV = 3,
  TT_SCALAR_RSUB = 4,
  TT_SCALAR_GT = 5,
  TT_SCALAR_LT = 6
} tt_scalar_op;

/* tt_reduce */
typedef enum {
  TT_REDUCE_SUM = 0,
  TT_REDUCE_MEAN = 1,
  TT_REDUCE_MAX = 2,
  TT_REDUCE_MIN = 3
} tt_reduce_op;

/* loss reductions, as at::Reduction */
typedef enum {
  TT_REDUCTION_NONE = 0,
  TT_REDUCTION_MEAN = 1,
  TT_REDUCTION_SUM = 2
} tt_reduction;

/* device codes: TT_DEVICE_CPU, or a GPU's index (0, 1, ...) */
typedef enum {
  TT_DEVICE_CPU = -1
} tt_device;

void tt_free(tt t);
void tt_free_err(terr e);

terr tt_from_data(const void *data, const int64_t *shape, int ndim, int dtype, tt *out);
terr tt_copy_out(tt t, void *dst, int64_t nbytes);
terr tt_info(tt t, int *ndim, int64_t *shape /* 16 */, int *dtype, int *device, int *requires_grad);
terr tt_item(tt t, double *out);
terr tt_full(const int64_t *shape, int ndim, double value, int dtype, int device, tt *out);
terr tt_randn(const int64_t *shape, int ndim, int dtype, int device, tt *out);
terr tt_rand(const int64_t *shape, int ndim, int dtype, int device, tt *out);
terr tt_arange(int64_t n, int dtype, int device, tt *out);

/* autograd */
terr tt_set_requires_grad(tt t, int on);
terr tt_grad(tt t, tt *out); /* *out NULL when undefined */
terr tt_backward(tt t);
terr tt_zero_grad(tt t);
terr tt_detach(tt t, tt *out);
terr tt_clone(tt t, tt *out);

/* conversion */
terr tt_to(tt t, int dtype, int device, tt *out);
/* t on device, dtype kept; non_blocking: asynchronous when t is in pinned
 * host memory and device is a GPU (libtorch keeps the pinned block alive
 * until the copy is done, so t may be freed right after) */
terr tt_to_device(tt t, int device, int non_blocking, tt *out);
/* a copy of data in page-locked host memory; needs a CUDA libtorch */
terr tt_from_data_pinned(const void *data, const int64_t *shape, int ndim, int dtype, tt *out);
terr tt_is_pinned(tt t, int *out);
terr tt_contiguous(tt t, int channels_last, tt *out);
terr tt_is_channels_last(tt t, int *out);

/* ops */
terr tt_unary(int op, tt a, tt *out);
terr tt_binary(int op, tt a, tt b, tt *out);
terr tt_scalar(int op, tt a, double s, tt *out);
terr tt_reduce(int op, tt a, const int64_t *dims, int ndims, int keepdim, tt *out);
terr tt_conv2d(tt x, tt w, tt b, const int64_t *stride, const int64_t *pad, const int64_t *dil,
               int64_t groups, tt *out);
terr tt_batch_norm(tt x, tt w, tt b, tt rm, tt rv, int training, double momentum, double eps, tt *out);
terr tt_max_pool2d(tt x, const int64_t *k, const int64_t *s, const int64_t *p, int ceil, tt *out);
terr tt_avg_pool2d(tt x, const int64_t *k, const int64_t *s, const int64_t *p, int ceil,
                   int count_include_pad, tt *out);
terr tt_adaptive_pool2d(tt x, int max, int64_t oh, int64_t ow, tt *out);
terr tt_linear(tt x, tt w, tt b, tt *out);
terr tt_cat(tt *ts, int n, int64_t dim, tt *out);
terr tt_flatten(tt x, int64_t start, int64_t end, tt *out);
terr tt_reshape(tt x, const int64_t *shape, int ndim, tt *out);
terr tt_permute(tt x, const int64_t *dims, int ndim, tt *out);
terr tt_narrow(tt x, int64_t dim, int64_t start, int64_t len, tt *out);
terr tt_index_select(tt x, int64_t dim, tt idx, tt *out);
terr tt_dropout(tt x, double p, int train, tt *out);
terr tt_softmax(tt x, int64_t dim, int log, tt *out);
terr tt_clamp(tt x, double lo, double hi, tt *out);
terr tt_bce_logits(tt x, tt y, tt weight, tt pos_weight, int reduction, tt *out);
terr tt_argmax(tt x, int64_t dim, tt *out);
/* the k largest along dim, sorted descending: values and their int64 indices */
terr tt_topk(tt x, int64_t k, int64_t dim, tt *values, tt *indices);

/* in place, for initialisation and optimisers (call under no-grad) */
terr tt_copy_(tt dst, tt src);
terr tt_fill_(tt t, double v);
terr tt_uniform_(tt t, double lo, double hi);
terr tt_normal_(tt t, double mean, double std);
terr tt_adamw_step(tt p, tt g, tt m, tt v, double lr, double b1, double b2, double eps,
                   double wd, int64_t step);
terr tt_sgd_step(tt p, tt g, tt buf, double lr, double momentum, double dampening, double wd,
                 int nesterov, int first);
/* torch.nn.utils.clip_grad_norm_ (2-norm): scales the gradients in place
 * when their total norm exceeds max_norm; *total is that norm */
terr tt_clip_grad_norm_(tt *grads, int n, double max_norm, double *total);
/* GradScaler's unscale: multiplies every gradient by inv_scale (a float32
 * value) in place and sets *found_inf when any held an inf or NaN; all
 * gradients on one device */
terr tt_amp_unscale_(tt *grads, int n, double inv_scale, int *found_inf);

/* thread-local and global state */
terr tt_set_num_threads(int n);
int tt_get_num_threads(void);
terr tt_manual_seed(uint64_t seed); /* the CPU generator and every GPU's */
int tt_grad_enabled(void);
void tt_set_grad_enabled(int on);
terr tt_autocast(int enter);
/* autocast of one device's type (the CPU, or CUDA for a GPU's code) to dtype */
terr tt_autocast_on(int enter, int device, int dtype);
terr tt_inference_mode(int enter, void **guard);
int tt_cuda_device_count(void);
terr tt_set_cudnn_benchmark(int on);
int tt_get_cudnn_benchmark(void);
const char *tt_version(void);
/* A malloc'd JSON object describing the libtorch in use: version, whether
 * CUDA is available, device count and names, cuDNN version, C++ ABI. */
terr tt_runtime_info(char **out);

/* ---- distributed data parallelism (c10d) ----
 * A process group joins the processes of one training run: a TCPStore
 * rendezvous, then Gloo (CPU tensors) or NCCL (CUDA builds). Collectives
 * are issued in the same order on every rank and wait for completion. */
typedef void *tt_pg;

/* backends */
typedef enum {
  TT_DIST_GLOO = 0,
  TT_DIST_NCCL = 1
} tt_dist_backend;

/* reductions */
typedef enum {
  TT_DIST_SUM = 0,
  TT_DIST_MAX = 1
} tt_dist_op;

/* 1 when this shim was built with the backend (its headers were found) */
int tt_dist_available(int backend);
/* Joins a group of world processes as rank through the TCPStore at
 * host:port, which this process hosts when host_store is set (rank 0 of a
 * plain launch; not under an agent that hosts it). Keys are prefixed by
 * prefix (may be ""). iface names the network interface Gloo binds (NULL or
 * "": the one this machine's hostname resolves to, else loopback).
 * timeout_ms bounds the rendezvous and every collective. */
terr tt_dist_init(int backend, const char *host, int port, int host_store, const char *prefix, int rank,
                  int world, int64_t timeout_ms, const char *iface, tt_pg *out);
void tt_dist_free(tt_pg pg);
/* in place; each tensor its own collective, all in flight at once, or,
 * with coalesce, the tensors of each dtype and device flattened into one
 * (many small tensors: one message instead of many) */
terr tt_dist_allreduce(tt_pg pg, tt *ts, int n, int op, int coalesce);
terr tt_dist_broadcast(tt_pg pg, tt *ts, int n, int root, int coalesce);
terr tt_dist_barrier(tt_pg pg);
/* Averages the gradients of params over the group as PyTorch's
 * DistributedDataParallel does (each multiplied by 1/world, then summed):
 * flattened into buckets of at most bucket_bytes (in reverse order, the
 * order backward produces them), each bucket all-reduced asynchronously
 * while the next is packed, then copied back. An undefined gradient counts
 * as zeros (and is set), so every rank sends the same layout. The nextra
 * values in extra travel in the last bucket and come back summed (not
 * scaled). */
terr tt_dist_average_grads(tt_pg pg, tt *params, int n, int64_t bucket_bytes, double *extra, int nextra);

#ifdef __cplusplus
}
#endif
#endif
