/* SPDX-License-Identifier: MIT */
/*
 * libnpu: the userspace driver of bwq.  See libnpu(3).
 *
 * Every function that can fail returns 0 (or a non-negative id) on success
 * and a negative errno value on failure; output parameters come last and
 * are set only on success.  The library does not log.
 */
#ifndef NPU_NPU_H
#define NPU_NPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct npu_device npu_device;
typedef struct npu_bo npu_bo;
typedef struct npu_graph npu_graph;
typedef struct npu_model npu_model;

/* ---- Device ---------------------------------------------------------------
 * `name` NULL means $NPU_DEVICE, else "soft".  "soft" (optionally
 * "soft:threads=N,isa=portable|avx2|avx512vnni") is the in-process software
 * NPU; a path such as /dev/accel/accel0 opens a DRM accel node whose driver
 * name is "npu" and drives it with drmIoctl. */
int npu_device_open(const char *name, npu_device **ret);
void npu_device_close(npu_device *dev);
/* DRM_NPU_PARAM_* of uapi/npu_accel.h. */
int npu_device_get_param(npu_device *dev, uint32_t param, uint64_t *ret);
/* Generic ioctl line: DRM_IOCTL_NPU_* requests (and DRM_IOCTL_GEM_CLOSE). */
int npu_ioctl(npu_device *dev, unsigned long request, void *arg);

/* ---- Buffer objects -------------------------------------------------------- */
int npu_bo_create(npu_device *dev, uint64_t size, npu_bo **ret);
void npu_bo_free(npu_bo *bo);
void *npu_bo_map(npu_bo *bo);          /* mapped read-write at creation */
uint64_t npu_bo_size(const npu_bo *bo);
uint32_t npu_bo_handle(const npu_bo *bo);

/* ---- Graph builder ----------------------------------------------------------
 * Tensors are NHWC float32 at the API.  Each builder call adds one layer and
 * returns the id (>= 0) of its output tensor, or a negative errno. */
enum npu_activation {
	NPU_ACTIVATION_NONE = 0,
	NPU_ACTIVATION_RELU = 1,
	NPU_ACTIVATION_RELU6 = 2,
	NPU_ACTIVATION_HARDSWISH = 3,
	NPU_ACTIVATION_HARDSIGMOID = 4, /* max(0, min(1, x/6 + 1/2)) */
	NPU_ACTIVATION_SIGMOID = 5,
};

struct npu_conv2d_params {
	uint32_t out_channels;
	uint32_t kernel_h, kernel_w;
	uint32_t stride_h, stride_w;       /* 0 means 1 */
	uint32_t dilation_h, dilation_w;   /* 0 means 1 */
	uint32_t pad_top, pad_left, pad_bottom, pad_right;
	uint32_t groups;                   /* 0 means 1; = channels for depthwise */
	uint32_t activation;               /* enum npu_activation */
	uint32_t reserved[6];              /* must be zero (room to grow) */
};

struct npu_pool_params {
	uint32_t kernel_h, kernel_w;
	uint32_t stride_h, stride_w;       /* 0 means 1 */
	uint32_t pad_top, pad_left, pad_bottom, pad_right;
	uint32_t reserved[4];              /* must be zero (room to grow) */
};

int npu_graph_new(npu_graph **ret);
void npu_graph_free(npu_graph *g);
/* An input tensor; a graph may have several, numbered in the order added. */
int npu_graph_input(npu_graph *g, uint32_t n, uint32_t h, uint32_t w, uint32_t c);
/* weights: float [out_channels][kernel_h][kernel_w][in_channels/groups];
 * bias: float [out_channels] or NULL. */
int npu_graph_conv2d(npu_graph *g, int input, const struct npu_conv2d_params *p, const float *weights,
		     const float *bias);
/* A convolution (not depthwise) whose output adds `residual` before the
 * activation: act(conv(input) + residual), the residual zero past its
 * channels.  residual: the output's n, h and w, 1..out_channels channels
 * (a block's shortcut, padded with zero channels where the block widens).
 * One layer, quantized once: what a convolution and npu_graph_add
 * compute, without storing the convolution's output. */
int npu_graph_conv2d_residual(npu_graph *g, int input, int residual, const struct npu_conv2d_params *p,
			      const float *weights, const float *bias);
/* weights: float [out_channels][h*w*c of the input]; output [n,1,1,out]. */
int npu_graph_fully_connected(npu_graph *g, int input, uint32_t out_channels, const float *weights,
			      const float *bias, uint32_t activation);
int npu_graph_add(npu_graph *g, int a, int b, uint32_t activation);
/* b may be [n,1,1,c]: broadcast over h and w. */
int npu_graph_mul(npu_graph *g, int a, int b, uint32_t activation);
int npu_graph_maxpool(npu_graph *g, int input, const struct npu_pool_params *p);
int npu_graph_avgpool(npu_graph *g, int input, const struct npu_pool_params *p);
int npu_graph_global_avgpool(npu_graph *g, int input);
int npu_graph_concat(npu_graph *g, const int *inputs, unsigned count);
/* Upsampling by integer factors (1..16): nearest repeats each pixel,
 * bilinear is ONNX Resize linear with half_pixel coordinates. */
enum npu_resize_mode {
	NPU_RESIZE_NEAREST = 0,
	NPU_RESIZE_BILINEAR = 1,
};
int npu_graph_resize(npu_graph *g, int input, uint32_t scale_h, uint32_t scale_w, uint32_t mode);
/* Blocks of block_h x block_w pixels from the input's channels (1..16):
 * output (y, x, c) = input (y / block_h, x / block_w,
 * ((y % block_h) * block_w + x % block_w) * C + c). */
int npu_graph_depth_to_space(npu_graph *g, int input, uint32_t block_h, uint32_t block_w);
/* A host node: what the device cannot run, computed in float on the CPU
 * inside the model's run, between the device segments before and after it.
 * `fn` gets its inputs as float NHWC with their shapes and writes the
 * n*h*w*c floats of its output; it returns 0, or a negative errno that
 * fails the run.  Its output is stored at the run's depth like any
 * activation, so the boundary costs bytes and time, counted in the run's
 * statistics. */
struct npu_host_shape {
	uint32_t n, h, w, c;
};
typedef int (*npu_host_fn)(void *user, const float *const *inputs, const struct npu_host_shape *shapes, unsigned count,
			   float *output);
int npu_graph_host(npu_graph *g, const int *inputs, unsigned count, uint32_t n, uint32_t h, uint32_t w, uint32_t c,
		   npu_host_fn fn, void *user);
/* npu_layer_stats.op of a host node. */
#define NPU_LAYER_HOST 0x100u
/* Per-layer activation depth clamp of the layer that writes `tensor`; on
 * a graph input, the clamp of the depth the input is quantized at. */
int npu_graph_set_bits_range(npu_graph *g, int tensor, unsigned min_bits, unsigned max_bits);
/* A tensor's clipping range at each depth, lo[i] <= 0 <= hi[i] finite, in
 * NPU_BITS_* index order (4, 6, 8, 16 bits): the model uses them instead of
 * calibrating that tensor.  When every tensor has them, npu_model_compile
 * needs no calibration input. */
int npu_graph_set_tensor_ranges(npu_graph *g, int tensor, const float *lo, const float *hi);
/* A bias correction of the conv or fully connected layer that writes
 * `tensor`: delta[d * C_out + c] is added to its bias when its input was
 * stored at the depth of NPU_BITS_* index d (count = 4 * C_out, finite;
 * NULL and 0 drop it).  What a depth's rounding and clipping shift in the
 * mean is given back. */
int npu_graph_set_bias_correction(npu_graph *g, int tensor, const float *delta, size_t count);
/* The linear part of conv or fully connected `layer` (its weights, no bias
 * or activation; NPU_REFERENCE_INT8_WEIGHTS: the device's) on `input`, a
 * whole tensor of the layer's input shape, into `output`, one of its
 * output's: how a shift of the input moves the output. */
int npu_graph_layer_linear(const npu_graph *g, unsigned layer, uint32_t flags, const float *input, float *output);
/* The graph's shape: tensors (inputs and layer outputs) and layers in
 * order; the tensor a layer writes and its inputs; the layer that writes
 * a tensor (-1 for an input). */
int npu_graph_tensor_count(const npu_graph *g);
int npu_graph_layer_count(const npu_graph *g);
int npu_graph_layer_output(const npu_graph *g, unsigned layer);
int npu_graph_layer_input(const npu_graph *g, unsigned layer, unsigned index);
/* A layer's op: enum npu_op, or NPU_LAYER_HOST. */
int npu_graph_layer_op(const npu_graph *g, unsigned layer);
int npu_graph_tensor_producer(const npu_graph *g, int tensor);
/* A tensor's shape, NHWC. */
int npu_graph_tensor_shape(const npu_graph *g, int tensor, struct npu_host_shape *ret);
/* The model's output (default: the last layer's); drops any others. */
int npu_graph_set_output(npu_graph *g, int tensor);
/* One more output: the first call replaces the default, later ones add to
 * it.  Returns the output's index (npu_model_output). */
int npu_graph_add_output(npu_graph *g, int tensor);
/* Float reference of the whole graph, for checks: output of `tensor`. */
int npu_graph_reference(const npu_graph *g, const float *input, int tensor, float *output, size_t count);
/* The same for a graph of `count` inputs, in the order they were added;
 * flags NPU_REFERENCE_*. */
int npu_graph_reference_inputs(const npu_graph *g, const float *const *inputs, unsigned count, uint32_t flags, int tensor,
			       float *output, size_t output_count);
/* Every tensor's float reference at once: values[t] (tensor t's
 * elements, NULL to skip it) for t < npu_graph_tensor_count. */
int npu_graph_reference_tensors(const npu_graph *g, const float *const *inputs, unsigned count, uint32_t flags,
				float *const *values);
/* With the int8 weights the device computes with (dequantized) instead of
 * the graph's float weights: what the device approximates at 16 bits. */
#define NPU_REFERENCE_INT8_WEIGHTS (1u << 0)
/* Elements of a tensor (n*h*w*c), or a negative errno. */
int64_t npu_graph_tensor_elements(const npu_graph *g, int tensor);

/* ---- Models ------------------------------------------------------------------ */
enum npu_bits_mode {
	NPU_MODE_FIXED = 0,      /* every activation at `bits` */
	NPU_MODE_BWQ_MODEL = 1,  /* one depth per run: the decision when the run starts */
	NPU_MODE_BWQ_LAYER = 2,  /* each layer reads the decision when it starts */
};

struct npu_compile_options {
	/* Calibration input (one input tensor of floats); ranges of every
	 * tensor are measured on it, clipped per depth at 4 and 6 bits. */
	const float *calibration_input;
	/* The model's name for bwqd (RegisterClient); NULL: "npu-model". */
	const char *name;
	/* A graph of several inputs: one calibration tensor per input, in
	 * order (calibration_input is then ignored and may be NULL). */
	const float *const *calibration_inputs;
	/* Samples in each calibration tensor, one after another (0 means 1);
	 * ranges then cover them all. */
	uint64_t calibration_count;
	uint64_t reserved[4];              /* must be zero (room to grow) */
};

int npu_model_compile(npu_device *dev, const npu_graph *g, const struct npu_compile_options *opts,
		      npu_model **ret);
void npu_model_free(npu_model *m);
/* Mode and model-wide clamps; `bits` is the depth of FIXED and the
 * fallback depth of the BWQ modes when no decision is available.  A BWQ
 * mode registers the model with bwqd (on the bus $BWQ_BUS names: system,
 * session, an address, or none; default system) with its [min, max] and
 * takes the depth from bwqd's decision page; the driver reconnects by
 * itself when bwqd starts or restarts. */
int npu_model_set_mode(npu_model *m, uint32_t mode, unsigned bits, unsigned min_bits, unsigned max_bits);
/* FIXED mode: tensor (a layer's output or an input) at its own depth
 * instead of the model's `bits`; 0 returns it to the model's.  A static
 * per-layer mix, and how calibration tries one layer at a time. */
int npu_model_set_tensor_bits(npu_model *m, int tensor, unsigned bits);
/* A tensor's clipping range at one depth, as compiled, and a change of it
 * for the runs that follow (finite, lo <= 0 <= hi). */
int npu_model_set_tensor_range(npu_model *m, int tensor, unsigned bits, float lo, float hi);
int npu_model_tensor_range(const npu_model *m, int tensor, unsigned bits, float *ret_lo, float *ret_hi);
/* npu_graph_set_bias_correction on a compiled model, for the runs that
 * follow. */
int npu_model_set_bias_correction(npu_model *m, int tensor, const float *delta, size_t count);
/* A bwq decision page (uapi/bwq_page.h) to take BWQ depths from instead
 * of bwqd's; -1 drops it (and returns to bwqd's). */
int npu_model_set_decision_page(npu_model *m, int page_fd);

struct npu_run_stats {
	uint32_t layer_count;
	uint32_t flags;            /* NPU_RUN_* */
	uint64_t ns;               /* device time of the job(s), plus the host nodes' time */
	uint64_t activation_bytes; /* packed activations read and written by layers */
	uint64_t weight_bytes;     /* weights, scales and bias read */
	uint8_t model_bits;        /* BWQ_MODEL: the depth of this run; else 0 */
	uint8_t min_layer_bits, max_layer_bits;
	uint8_t pad[5];
	uint64_t available_bps;    /* BWQ modes: the decision's available bandwidth at submit */
	uint32_t section;          /* and its table section (0: none) */
	uint32_t host_layers;      /* host nodes run (their time is in ns, their bytes in activation_bytes) */
};
#define NPU_RUN_FALLBACK (1u << 0) /* BWQ mode without a decision: fallback depth */
/* With NPU_RUN_FALLBACK, why (one of them; npu_model_bwq_status says more): */
#define NPU_RUN_NO_BWQD  (1u << 1) /* no bwqd on the bus, or it stopped */
#define NPU_RUN_PENDING  (1u << 2) /* registration sent, not answered yet */
#define NPU_RUN_REFUSED  (1u << 3) /* bwqd refused the registration; retried */
#define NPU_RUN_STALE    (1u << 4) /* the page is frozen: bwqd stalled or blocked */

/* Where a model stands with bwqd (libnpu(3), BWQD).  A refused registration
 * is retried after 250 ms, then twice as long each time up to 5 s; a page
 * not updated for BWQ_PAGE_FROZEN_INTERVALS (10) sampling intervals, and at
 * least 500 ms, is stale. */
enum npu_bwq_state {
	NPU_BWQ_UNLINKED = 0, /* FIXED mode: bwqd is not asked */
	NPU_BWQ_LIVE,         /* registered, and the page is current */
	NPU_BWQ_NO_BWQD,      /* no bus, no bwqd on it, or bwqd stopped */
	NPU_BWQ_PENDING,      /* registration sent, not answered yet */
	NPU_BWQ_REFUSED,      /* bwqd refused it (reason); retried with backoff */
	NPU_BWQ_STALE,        /* registered, but the page is frozen */
};
struct npu_bwq_status {
	uint32_t state;        /* enum npu_bwq_state */
	uint32_t refusals;     /* registrations refused since the last success */
	uint64_t retry_in_ns;  /* REFUSED: until the next attempt */
	uint64_t page_age_ns;  /* since bwqd last updated the page; 0 without one */
	char reason[192];      /* REFUSED: bwqd's message; else "" */
	uint64_t reserved[4];
};
int npu_model_bwq_status(const npu_model *m, struct npu_bwq_status *ret);
/* "unlinked", "live", "no bwqd", "pending", "refused", "stale"; NULL for
 * another value. */
const char *npu_bwq_state_name(uint32_t state);

struct npu_layer_stats {
	uint32_t bits;
	uint32_t op;               /* enum npu_op */
	uint64_t bytes_read;       /* activations + parameters */
	uint64_t act_bytes_read;
	uint64_t bytes_written;
	uint64_t ns;
	uint64_t start_ns;         /* CLOCK_MONOTONIC when the layer started and read its depth */
};

/* Synchronous run: input and output are float NHWC of the graph's input
 * and output tensors. */
int npu_model_run(npu_model *m, const float *input, float *output, struct npu_run_stats *ret_stats);
/* Asynchronous: submit, then wait for any number of models at once. */
int npu_model_submit(npu_model *m, const float *input);
/* A model of several inputs: `count` must be its number of inputs; the
 * outputs are then read with npu_model_output. */
int npu_model_submit_inputs(npu_model *m, const float *const *inputs, unsigned count);
int npu_model_run_inputs(npu_model *m, const float *const *inputs, unsigned count, struct npu_run_stats *ret_stats);
/* Waits until every model in `models` has finished (io_uring on their
 * completion eventfds), or until the absolute CLOCK_MONOTONIC deadline. */
int npu_wait_many(npu_model *const *models, unsigned count, int64_t deadline_ns);
int npu_model_result(npu_model *m, float *output, struct npu_run_stats *ret_stats);
int npu_model_layer_stats(const npu_model *m, unsigned layer, struct npu_layer_stats *ret);
uint64_t npu_model_output_elements(const npu_model *m);
unsigned npu_model_input_count(const npu_model *m);
unsigned npu_model_output_count(const npu_model *m);
/* Output `index` of the last finished run (npu_model_run or
 * npu_model_result first), float NHWC of `count` elements. */
int npu_model_output(npu_model *m, unsigned index, float *output, size_t count);
/* Any tensor of the last finished run as it was stored (dequantized at
 * the depth it was written at; a host node's output as computed):
 * -ENODATA for one the run did not write. */
int npu_model_tensor(npu_model *m, int tensor, float *output, size_t count);

/* Name of a DRM_NPU_JOB_ERR_* code, and the code and layer of the last
 * SUBMIT this device refused. */
const char *npu_job_error_name(uint32_t code);
int npu_device_last_job_error(const npu_device *dev, uint32_t *ret_code, uint32_t *ret_index);

#ifdef __cplusplus
}
#endif

#endif /* NPU_NPU_H */
