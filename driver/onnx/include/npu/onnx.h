/* SPDX-License-Identifier: MIT */
/*
 * libnpu-onnx: trained float models from ONNX files onto libnpu.  See
 * npu-onnx(3).
 *
 * npu_onnx_load() reads the file with the ONNX protobuf classes, resolves
 * static shapes, folds constants, rewrites the graph (BatchNormalization
 * into Conv, activations into layers, layout ops as views) and builds an
 * npu_graph.  Tensors at this API are float32 in the model's own layout
 * and order (NCHW for an NCHW model); the conversion to the device's NHWC
 * happens once, here, at the boundary.
 *
 * Functions return 0 (or a count) on success and a negative errno on
 * failure; npu_onnx_load() also writes a message naming what was wrong.
 */
#ifndef NPU_ONNX_H
#define NPU_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "npu/npu.h"
#include "npu/npy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct npu_onnx npu_onnx;

struct npu_onnx_options {
	uint32_t size;             /* sizeof(struct npu_onnx_options): room to grow */
	uint32_t flags;            /* NPU_ONNX_*; unknown bits are refused */
	/* Values of the inputs' dynamic dimensions, "name=1x3x224x224" per
	 * input, ';'-separated; NULL when every dimension is static. */
	const char *input_shapes;
	uint64_t reserved[6];      /* must be zero */
};

/* Read the file only: its inputs' declared shapes (a dynamic dimension is
 * -1), to learn what to give input_shapes, and its nodes as written (the
 * node queries below).  Such a model does not compile. */
#define NPU_ONNX_INPUTS_ONLY (1u << 0)
/* A node the device cannot run is an error, instead of a host node. */
#define NPU_ONNX_NO_HOST (1u << 1)

#define NPU_ONNX_MAX_RANK 8

struct npu_onnx_tensor_info {
	const char *name;          /* the model's name; valid while the model is */
	uint32_t rank;
	uint32_t pad;
	int64_t dims[NPU_ONNX_MAX_RANK];
	uint64_t elements;
};

/* `opts` may be NULL.  On failure *ret is untouched and why[why_size]
 * holds the reason (when why is not NULL). */
int npu_onnx_load(const char *path, const struct npu_onnx_options *opts, npu_onnx **ret, char *why, size_t why_size);
void npu_onnx_free(npu_onnx *m);

unsigned npu_onnx_input_count(const npu_onnx *m);
unsigned npu_onnx_output_count(const npu_onnx *m);
int npu_onnx_input_info(const npu_onnx *m, unsigned index, struct npu_onnx_tensor_info *ret);
int npu_onnx_output_info(const npu_onnx *m, unsigned index, struct npu_onnx_tensor_info *ret);

/* The graph the model became (owned by m). */
const npu_graph *npu_onnx_graph(const npu_onnx *m);
/* What runs where: one line per device layer (the ONNX node and the ops
 * fused into it) and the rewrites done.  Owned by m. */
const char *npu_onnx_placement(const npu_onnx *m);
/* The ONNX node behind device layer `layer`, or NULL. */
const char *npu_onnx_layer_name(const npu_onnx *m, unsigned layer);
/* The model's own activation depth limits (metadata key
 * bwq.activation_bits), 4 and 16 when it has none; give them to
 * npu_model_set_mode.  Per-layer limits (bwq.layer_bits.NODE) are in the
 * graph already. */
int npu_onnx_bits_range(const npu_onnx *m, unsigned *ret_min, unsigned *ret_max);

/* ---- The file as written (a model loaded with NPU_ONNX_INPUTS_ONLY; after
 * a full load the queries see the rewritten graph) ---- */
unsigned npu_onnx_node_count(const npu_onnx *m);
const char *npu_onnx_node_op(const npu_onnx *m, unsigned node);
enum npu_onnx_attr_kind {
	NPU_ONNX_ATTR_INT = 1,
	NPU_ONNX_ATTR_FLOAT = 2,
	NPU_ONNX_ATTR_STRING = 3,
	NPU_ONNX_ATTR_INTS = 4,
	NPU_ONNX_ATTR_FLOATS = 5,
	NPU_ONNX_ATTR_TENSOR = 6,
};
struct npu_onnx_attr {
	uint32_t kind;             /* enum npu_onnx_attr_kind */
	uint32_t count;            /* elements of ints or floats */
	int64_t i;
	float f;
	uint32_t pad;
	const char *s;             /* NUL-terminated; valid while the model is */
	const int64_t *ints;
	const float *floats;
};
/* Attribute `name` of node `node`: 0, or -ENOENT when the node has none of
 * that name. */
int npu_onnx_node_attr(const npu_onnx *m, unsigned node, const char *name, struct npu_onnx_attr *ret);

/* An ONNX TensorProto file (the backend tests' .pb format) as floats:
 * *ret_type is its TensorProto data type (1 float, 2 uint8, 3 int8, 6
 * int32, 7 int64, 9 bool, 11 double); free with npu_npy_free. */
int npu_onnx_read_tensor(const char *path, struct npu_npy *ret, uint32_t *ret_type, char *why, size_t why_size);

/* Compiles for `dev`: `calibration` holds one sample per input (model
 * layout).  `opts` as for npu_model_compile (its calibration_input is
 * ignored). */
int npu_onnx_compile(npu_onnx *m, npu_device *dev, const float *const *calibration, const struct npu_compile_options *opts,
		     npu_model **ret);
/* One run: inputs[i] and outputs[j] in the model's layout, sized as
 * npu_onnx_input_info/npu_onnx_output_info say. */
int npu_onnx_run(npu_onnx *m, npu_model *model, const float *const *inputs, float *const *outputs,
		 struct npu_run_stats *ret_stats);
/* libnpu's float reference of the rewritten graph, same layouts; flags
 * NPU_REFERENCE_* of npu.h (NPU_REFERENCE_INT8_WEIGHTS: the device's
 * weights). */
int npu_onnx_reference(npu_onnx *m, const float *const *inputs, float *const *outputs, uint32_t flags);

/* The name device tensor `tensor` has in the bwq.ranges and bwq.layer_bits
 * keys: an input's name, a layer's ONNX node, "NODE#k" for the k-th layer
 * of one node; NULL for none. */
const char *npu_onnx_tensor_key(const npu_onnx *m, int tensor);
/* 1 when the file carries ranges for every tensor (bwq.ranges, written by
 * npu-calibrate): npu_onnx_compile then takes calibration NULL and uses
 * them. */
int npu_onnx_calibrated(const npu_onnx *m);

/* ---- Calibration (npu-calibrate(1)) ------------------------------------------
 * For every tensor and depth 4, 6, 8 a clipping range (min-max, the 99.99th
 * and 99.9th percentiles, or the range of least squared error), chosen by
 * the model's output SQNR against the float reference with the whole model
 * at that depth, tensor after tensor.  A tensor's sensitivity: the output
 * SQNR when it alone runs at 4 (6) bits, the others at 8.  Then per-tensor
 * minimum depths (after a bias correction per input depth for each conv
 * and fully connected layer, kept per depth where it raises the SQNR): all
 * at 4, the tensor whose
 * noise falls most per byte raised until the output SQNR keeps the budget.
 * Every figure is measured on the device. */
enum npu_onnx_range_method {
	NPU_ONNX_RANGE_AUTO = 0,        /* each tensor and depth: the candidate of best output SQNR */
	NPU_ONNX_RANGE_MINMAX = 1,      /* every range min-max */
	NPU_ONNX_RANGE_PERCENTILE = 2,  /* the 99.99th percentile at 8 bits, the 99.9th at 4 and 6 */
	NPU_ONNX_RANGE_MSE = 3,         /* least squared error in the tensor itself */
};
struct npu_onnx_calibrate_options {
	uint32_t size;             /* sizeof(struct npu_onnx_calibrate_options) */
	uint32_t flags;            /* NPU_ONNX_BUDGET_* */
	double budget_db;          /* output SQNR the minimums keep under a 4-bit decision; 0: 20 */
	uint64_t eval_samples;     /* samples the output error is measured on; 0: min(count, 32) */
	uint32_t method;           /* enum npu_onnx_range_method */
	uint32_t pad;
	/* Called as the work goes on (may be NULL). */
	void (*progress)(void *user, const char *stage, unsigned done, unsigned total);
	void *user;
	uint64_t reserved[4];      /* must be zero */
};
/* budget_db is dB below the output SQNR of uniform 8 bits (which the
 * device's 8-bit weights bound), not an absolute SQNR. */
#define NPU_ONNX_BUDGET_BELOW_A8 (1u << 0)
/* No bias correction (see npu-calibrate(1)). */
#define NPU_ONNX_NO_BIAS_CORRECTION (1u << 1)
typedef struct npu_onnx_calibration npu_onnx_calibration;
/* `samples[i]`: `count` samples of input i, model layout, one after
 * another (finite values).  The model is the one loaded (its own bwq.ranges
 * are not used). */
int npu_onnx_calibrate(npu_onnx *m, npu_device *dev, const float *const *samples, uint64_t count,
		       const struct npu_onnx_calibrate_options *opts, npu_onnx_calibration **ret, char *why, size_t why_size);
void npu_onnx_calibration_free(npu_onnx_calibration *c);
/* The report, as text or (json != 0) JSON; owned by c. */
const char *npu_onnx_calibration_report(const npu_onnx_calibration *c, int json);
struct npu_onnx_calibration_entry {
	const char *name;          /* npu_onnx_tensor_key */
	int tensor, layer;         /* layer -1: an input */
	uint64_t elements;
	uint32_t min_bits;         /* the per-layer minimum chosen */
	uint32_t pad;
	const char *method[4];     /* per depth 4, 6, 8, 16: "minmax", "p99.99", "p99.9", "mse" */
	float lo[4], hi[4];
	double sqnr_db[4];         /* output SQNR, this tensor alone at the depth (16: 0) */
};
unsigned npu_onnx_calibration_count(const npu_onnx_calibration *c);
int npu_onnx_calibration_tensor(const npu_onnx_calibration *c, unsigned index, struct npu_onnx_calibration_entry *ret);
/* The model file written to `path` with the result in its metadata_props
 * (bwq.ranges.*, bwq.layer_bits.* replaced, bwq.calibration), through a
 * temporary file renamed into place. */
int npu_onnx_calibration_save(const npu_onnx_calibration *c, const char *path, char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif /* NPU_ONNX_H */
