/* SPDX-License-Identifier: MIT */
/*
 * npu_accel.h: the ioctl line between libnpu and an NPU (npuref, the software
 * NPU, or a real /dev/accel node).  DRM accel conventions: __u64 for
 * pointers, natural alignment, explicit padding that must be zero, unknown
 * flags rejected with EINVAL, ioctl numbers append-only, structs grow only at
 * their end.  See libnpu(3) and DESIGN §5.
 */
#ifndef NPU_ACCEL_H
#define NPU_ACCEL_H

#include "drm.h"

#if defined(__cplusplus)
extern "C" {
#endif

#define DRM_NPU_GET_PARAM 0x00
#define DRM_NPU_BO_CREATE 0x01
#define DRM_NPU_BO_INFO   0x02
#define DRM_NPU_SUBMIT    0x03
#define DRM_NPU_WAIT      0x04

#define DRM_IOCTL_NPU_GET_PARAM DRM_IOWR(DRM_COMMAND_BASE + DRM_NPU_GET_PARAM, struct drm_npu_param)
#define DRM_IOCTL_NPU_BO_CREATE DRM_IOWR(DRM_COMMAND_BASE + DRM_NPU_BO_CREATE, struct drm_npu_bo_create)
#define DRM_IOCTL_NPU_BO_INFO   DRM_IOWR(DRM_COMMAND_BASE + DRM_NPU_BO_INFO, struct drm_npu_bo_info)
#define DRM_IOCTL_NPU_SUBMIT    DRM_IOWR(DRM_COMMAND_BASE + DRM_NPU_SUBMIT, struct drm_npu_submit)
#define DRM_IOCTL_NPU_WAIT      DRM_IOWR(DRM_COMMAND_BASE + DRM_NPU_WAIT, struct drm_npu_wait)
/* Buffer objects are freed with the generic DRM_IOCTL_GEM_CLOSE. */

/* ---- GET_PARAM ---------------------------------------------------------- */
enum drm_npu_param_id {
	DRM_NPU_PARAM_API_VERSION = 0,  /* NPU_ACCEL_API_VERSION */
	DRM_NPU_PARAM_THREADS = 1,      /* compute threads of the device */
	DRM_NPU_PARAM_MAX_LAYERS = 2,   /* layers per job */
	DRM_NPU_PARAM_MAX_TENSORS = 3,  /* tensors per job */
	DRM_NPU_PARAM_MAX_BOS = 4,      /* live buffer objects per device */
	DRM_NPU_PARAM_MAX_BO_SIZE = 5,  /* bytes */
	DRM_NPU_PARAM_BIT_DEPTHS = 6,   /* bit mask: bit n set = n-bit activations */
	DRM_NPU_PARAM_ISA = 7,          /* enum drm_npu_isa of the compute kernels */
	DRM_NPU_PARAM_MAX_JOBS = 8,     /* jobs in flight per device */
};

enum drm_npu_isa {
	DRM_NPU_ISA_PORTABLE = 0,
	DRM_NPU_ISA_AVX2 = 1,
	DRM_NPU_ISA_AVX512_VNNI = 2,
};

#define NPU_ACCEL_API_VERSION 1

struct drm_npu_param {
	__u32 param;    /* in: enum drm_npu_param_id */
	__u32 pad;      /* must be zero */
	__u64 value;    /* out */
};

/* ---- BO_CREATE / BO_INFO ------------------------------------------------ */
/* Import a sealed bwq decision page (uapi/bwq_page.h) given in `fd`: a
 * regular file of at least BWQ_PAGE_SIZE sealed against shrinking
 * (F_SEAL_SHRINK, as bwqd's memfd is), else EPERM.  The BO is read-only for
 * the device and is named by SUBMIT as the page that DYNAMIC layers read
 * their bit depth from.  BO_CREATE of other BOs fails with ENOMEM past the
 * device's total for all of them. */
#define DRM_NPU_BO_IMPORT_DECISION_PAGE (1u << 0)
#define DRM_NPU_BO_CREATE_FLAGS DRM_NPU_BO_IMPORT_DECISION_PAGE

struct drm_npu_bo_create {
	__u64 size;         /* in: bytes (> 0); ignored for imports */
	__u32 flags;        /* in: DRM_NPU_BO_* */
	__s32 fd;           /* in: fd to import, with DRM_NPU_BO_IMPORT_*; else -1 */
	__u32 handle;       /* out: nonzero */
	__u32 pad;          /* must be zero */
	__u64 mmap_offset;  /* out: offset to pass to mmap() of the device */
};

struct drm_npu_bo_info {
	__u32 handle;       /* in */
	__u32 pad;          /* must be zero */
	__u64 size;         /* out */
	__u64 mmap_offset;  /* out */
	__u32 flags;        /* out: creation flags */
	__u32 pad2;         /* must be zero */
};

/* ---- SUBMIT ------------------------------------------------------------- */
/* Return an eventfd in out_fence_fd that becomes readable when the job ends
 * (the caller owns and closes it). */
#define DRM_NPU_SUBMIT_FENCE_FD (1u << 0)
/* The submitter waits for the job next, with WAIT and no deadline: the
 * device need not start the job before that WAIT, which may then run it in
 * the caller's own context (npuref does, instead of waking its runner).  A
 * WAIT with a deadline, or a later SUBMIT without this flag, starts it as
 * any other job. */
#define DRM_NPU_SUBMIT_WAITED   (1u << 1)
#define DRM_NPU_SUBMIT_FLAGS (DRM_NPU_SUBMIT_FENCE_FD | DRM_NPU_SUBMIT_WAITED)

/* Job validation errors, reported in drm_npu_submit.error (SUBMIT then fails
 * with EINVAL, ENOENT or E2BIG) and in the job result. */
enum drm_npu_job_error {
	DRM_NPU_JOB_OK = 0,
	DRM_NPU_JOB_ERR_BAD_HEADER = 1,     /* magic, version or sizes of the header */
	DRM_NPU_JOB_ERR_RESERVED = 2,       /* a reserved or padding field is nonzero */
	DRM_NPU_JOB_ERR_BAD_HANDLE = 3,     /* BO handle unknown or freed */
	DRM_NPU_JOB_ERR_BAD_BO_INDEX = 4,   /* index past the submitted BO list */
	DRM_NPU_JOB_ERR_OUT_OF_BOUNDS = 5,  /* offset + size past the end of its BO */
	DRM_NPU_JOB_ERR_BAD_OP = 6,         /* unknown op or fused activation */
	DRM_NPU_JOB_ERR_BAD_SHAPE = 7,      /* shapes of inputs, output, weights disagree */
	DRM_NPU_JOB_ERR_BAD_BITS = 8,       /* bit depth or policy not supported */
	DRM_NPU_JOB_ERR_TOO_MANY = 9,       /* layers, tensors or BOs over the limit */
	DRM_NPU_JOB_ERR_BAD_TENSOR = 10,    /* tensor index, or a tensor read before written */
	DRM_NPU_JOB_ERR_BAD_SIZE = 11,      /* capacity too small for the tensor at max bits */
	DRM_NPU_JOB_ERR_OVERLAP = 12,       /* output overlaps an input or the job itself */
	DRM_NPU_JOB_ERR_BAD_PAGE = 13,      /* DYNAMIC without a decision page, or not a page */
	DRM_NPU_JOB_ERR_BAD_RANGE = 14,     /* quantization range not finite or lo > 0 or hi < 0 */
	DRM_NPU_JOB_ERR_MAX = 15,
};

struct drm_npu_submit {
	__u64 bo_handles;      /* in: user pointer to __u32[bo_handle_count] */
	__u32 bo_handle_count; /* in */
	__u32 cmd_bo_index;    /* in: index in bo_handles of the command buffer */
	__u64 cmd_offset;      /* in: byte offset of the job in that BO */
	__u64 cmd_size;        /* in: bytes of the job */
	__u32 page_handle;     /* in: decision page BO, 0 for none */
	__u32 flags;           /* in: DRM_NPU_SUBMIT_* */
	__u32 job_id;          /* out: nonzero */
	__s32 out_fence_fd;    /* out: with DRM_NPU_SUBMIT_FENCE_FD, else -1 */
	__u32 error;           /* out: enum drm_npu_job_error when SUBMIT fails */
	__u32 error_index;     /* out: layer (or tensor) the error is about */
};

/* ---- WAIT --------------------------------------------------------------- */
struct drm_npu_wait {
	__u32 job_id;       /* in */
	__u32 flags;        /* in: must be zero */
	__s64 timeout_ns;   /* in: absolute CLOCK_MONOTONIC deadline; 0 = poll */
	__s32 job_status;   /* out: 0 or a negative errno of the job */
	__u32 pad;          /* must be zero */
};

/* ---- The job: a command buffer --------------------------------------------
 *
 *   struct npu_job_header
 *   struct npu_tensor_desc   tensors[tensor_count]
 *   struct npu_layer_desc    layers[layer_count]
 *
 * Layers run in order.  A tensor is either a job input (written by the host,
 * `bits` set) or the output of exactly one earlier layer (its depth is the
 * one that layer's policy resolves to).  The job writes a struct
 * npu_job_result followed by layer_count struct npu_layer_result at
 * result_bo_index/result_offset.
 */
#define NPU_JOB_MAGIC 0x4a55504eu /* "NPUJ" */
#define NPU_JOB_VERSION 2 /* 2: npu_layer_desc.pad1 made the hole before weight_offset explicit */

struct npu_job_header {
	__u32 magic;
	__u16 version;
	__u16 header_size;     /* sizeof(struct npu_job_header) */
	__u32 tensor_count;
	__u32 tensor_size;     /* sizeof(struct npu_tensor_desc) */
	__u32 layer_count;
	__u32 layer_size;      /* sizeof(struct npu_layer_desc) */
	__u32 result_bo_index; /* index in the submitted BO list */
	__u32 flags;           /* must be zero */
	__u64 result_offset;
	__u64 reserved[2];     /* must be zero */
};

/* Activation depths; the index of a depth in tensor ranges. */
enum npu_bits_index { NPU_BITS_4 = 0, NPU_BITS_6 = 1, NPU_BITS_8 = 2, NPU_BITS_16 = 3, NPU_BITS_COUNT = 4 };

#define NPU_TENSOR_NONE 0xffffffffu

/* An activation tensor, NHWC, unsigned affine, packed (DESIGN §5.3). */
struct npu_tensor_desc {
	__u32 bo_index;
	__u8 bits;             /* job inputs: 4, 6, 8 or 16; layer outputs: 0 */
	__u8 pad0[3];
	__u64 offset;
	__u64 capacity;        /* bytes reserved; must hold the tensor at its largest depth */
	__u32 n, h, w, c;
	/* Clipping range [lo, hi] (lo <= 0 <= hi) per depth, IEEE-754 binary32,
	 * indexed by enum npu_bits_index: scale and zero point follow from it. */
	float lo[NPU_BITS_COUNT];
	float hi[NPU_BITS_COUNT];
	__u64 reserved;
};

enum npu_op {
	NPU_OP_CONV2D = 1,
	NPU_OP_FULLY_CONNECTED = 2,
	NPU_OP_ADD = 3,
	NPU_OP_MUL = 4,            /* second input may be [n,1,1,c]: broadcast */
	NPU_OP_MAXPOOL = 5,
	NPU_OP_AVGPOOL = 6,        /* padding is excluded from the count */
	NPU_OP_GLOBAL_AVGPOOL = 7,
	NPU_OP_CONCAT = 8,         /* on channels, 2..4 inputs */
	/* Upsampling by the integer factors stride_h x stride_w (1..16):
	 * kernel_h = kernel_w = 1 nearest (each pixel repeated), 2 bilinear
	 * with half-pixel centres and clamped edges (ONNX Resize linear,
	 * half_pixel).  Dilations and pads zero. */
	NPU_OP_RESIZE = 9,
	/* Blocks of stride_h x stride_w pixels from channels (1..16 each):
	 * output (y, x, c) is input (y / stride_h, x / stride_w,
	 * ((y % stride_h) * stride_w + x % stride_w) * C + c), C the output's
	 * channels.  A transposed convolution whose kernel is its stride is a
	 * 1x1 convolution to stride_h * stride_w * C channels and this. */
	NPU_OP_DEPTH_TO_SPACE = 10,
};

enum npu_act {
	NPU_ACT_NONE = 0,
	NPU_ACT_RELU = 1,
	NPU_ACT_RELU6 = 2,
	NPU_ACT_HARDSWISH = 3,
	NPU_ACT_HARDSIGMOID = 4,   /* max(0, min(1, x/6 + 1/2)) */
	NPU_ACT_SIGMOID = 5,
};

enum npu_bits_policy {
	NPU_POLICY_FIXED = 0,      /* output at `bits` */
	NPU_POLICY_DYNAMIC = 1,    /* from the decision page, clamped to [min_bits, max_bits] */
};

#define NPU_MAX_INPUTS 4

/*
 * Weights (CONV2D, FULLY_CONNECTED) are int8, symmetric per output channel,
 * in the device's blocked layout (see libnpu(3)):
 *   depthwise (groups == C_in == C_out): int8 [kh][kw][c]
 *   otherwise, per group g: int8 [N16/16][K4/4][16][4], where
 *     K = kh*kw*(C_in/groups) in (ky, kx, ci) order, K4 = K rounded up to 4,
 *     N16 = C_out/groups rounded up to 16, zero-filled.
 * FULLY_CONNECTED treats its input as [n, h*w*c] and its output is [n,1,1,c].
 * scale: float[C_out] (s_w), bias: float[C_out]; with NPU_LAYER_BIAS_PER_DEPTH
 * bias: float[NPU_BITS_COUNT][C_out], and the row of the depth input 0 was
 * stored at is added (a bias correction per input depth).
 */
#define NPU_LAYER_BIAS_PER_DEPTH (1u << 0)
/*
 * NPU_LAYER_RESIDUAL: a CONV2D that is not depthwise, with input_count 2.
 * inputs[1] is a residual r with the output's n, h and w and 1..C_out
 * channels; its value is added to the convolution's before the
 * activation, channel by channel, zero past r's channels (a residual Add,
 * and the zero channels a block that widens pads its shortcut with):
 *   y[c] = act(conv(x)[c] + (c < r.c ? r[c] : 0))
 * The sum is not stored in between, so this is one layer's quantization
 * where a CONV2D and an ADD would be two.
 */
#define NPU_LAYER_RESIDUAL (1u << 1)
struct npu_layer_desc {
	__u16 op;              /* enum npu_op */
	__u8 act;              /* enum npu_act */
	__u8 policy;           /* enum npu_bits_policy */
	__u8 bits;             /* FIXED: 4, 6, 8 or 16 */
	__u8 min_bits;         /* DYNAMIC: clamp */
	__u8 max_bits;
	__u8 input_count;
	__u32 inputs[NPU_MAX_INPUTS]; /* tensor indices; unused = NPU_TENSOR_NONE */
	__u32 output;
	__u16 kernel_h, kernel_w;
	__u16 stride_h, stride_w;
	__u16 dilation_h, dilation_w;
	__u16 pad_top, pad_left, pad_bottom, pad_right;
	__u32 groups;
	__u32 param_bo_index;  /* BO holding weights, scales and bias */
	__u32 flags;           /* NPU_LAYER_* (CONV2D, FULLY_CONNECTED); others zero */
	__u32 pad1;            /* must be zero */
	__u64 weight_offset;
	__u64 weight_size;
	__u64 scale_offset;
	__u64 bias_offset;
	__u64 reserved[2];
};

/* Written by the device when the job ends. */
#define NPU_RESULT_MAGIC 0x5255504eu /* "NPUR" */

struct npu_layer_result {
	__u8 bits;             /* depth the output was written at */
	__u8 pad0[3];
	__u32 pad1;
	__u64 act_bytes_read;  /* packed input activations */
	__u64 param_bytes_read;/* weights, scales, bias */
	__u64 bytes_written;   /* packed output */
	__u64 ns;              /* CLOCK_MONOTONIC time of the layer */
	__u64 start_ns;        /* CLOCK_MONOTONIC when the layer started (and read its depth) */
};

struct npu_job_result {
	__u32 magic;
	__s32 status;          /* 0 or negative errno */
	__u32 error;           /* enum drm_npu_job_error */
	__u32 error_index;
	__u32 layer_count;
	__u32 pad;
	__u64 ns;              /* whole job */
	/* struct npu_layer_result layers[layer_count] follows */
};

/* The layout is the ABI: sizes and key offsets, checked at compile time on
 * every side that includes this header. */
#if defined(__cplusplus)
#define NPU_ACCEL_ASSERT(c) static_assert(c, #c)
#else
#define NPU_ACCEL_ASSERT(c) _Static_assert(c, #c)
#endif
NPU_ACCEL_ASSERT(sizeof(struct drm_npu_param) == 16);
NPU_ACCEL_ASSERT(sizeof(struct drm_npu_bo_create) == 32 && __builtin_offsetof(struct drm_npu_bo_create, mmap_offset) == 24);
NPU_ACCEL_ASSERT(sizeof(struct drm_npu_bo_info) == 32 && __builtin_offsetof(struct drm_npu_bo_info, flags) == 24);
NPU_ACCEL_ASSERT(sizeof(struct drm_npu_submit) == 56 && __builtin_offsetof(struct drm_npu_submit, page_handle) == 32 &&
		 __builtin_offsetof(struct drm_npu_submit, error_index) == 52);
NPU_ACCEL_ASSERT(sizeof(struct drm_npu_wait) == 24 && __builtin_offsetof(struct drm_npu_wait, job_status) == 16);
NPU_ACCEL_ASSERT(sizeof(struct npu_job_header) == 56 && __builtin_offsetof(struct npu_job_header, result_offset) == 32);
NPU_ACCEL_ASSERT(sizeof(struct npu_tensor_desc) == 80 && __builtin_offsetof(struct npu_tensor_desc, n) == 24 &&
		 __builtin_offsetof(struct npu_tensor_desc, lo) == 40 && __builtin_offsetof(struct npu_tensor_desc, reserved) == 72);
NPU_ACCEL_ASSERT(sizeof(struct npu_layer_desc) == 112 && __builtin_offsetof(struct npu_layer_desc, groups) == 48 &&
		 __builtin_offsetof(struct npu_layer_desc, pad1) == 60 &&
		 __builtin_offsetof(struct npu_layer_desc, weight_offset) == 64 &&
		 __builtin_offsetof(struct npu_layer_desc, reserved) == 96);
NPU_ACCEL_ASSERT(sizeof(struct npu_layer_result) == 48 && __builtin_offsetof(struct npu_layer_result, start_ns) == 40);
NPU_ACCEL_ASSERT(sizeof(struct npu_job_result) == 32 && __builtin_offsetof(struct npu_job_result, ns) == 24);
#undef NPU_ACCEL_ASSERT

#if defined(__cplusplus)
}
#endif

#endif /* NPU_ACCEL_H */
