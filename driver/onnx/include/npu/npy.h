/* SPDX-License-Identifier: MIT */
/*
 * NumPy .npy files, the tensors npu-run reads and writes.  See npu-onnx(3).
 *
 * Reading takes format versions 1.0, 2.0 and 3.0, C order, and the dtypes
 * float32, float64, float16, int8, uint8, int16, uint16, int32, uint32,
 * int64, uint64 and bool in either byte order; values become float32.
 * Writing makes version 1.0 float32 little-endian.  Functions return 0 or a
 * negative errno and, on failure, put a message naming what was wrong in
 * why[why_size] (when why is not NULL).
 */
#ifndef NPU_NPY_H
#define NPU_NPY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NPU_NPY_MAX_RANK 8
/* Largest array read: 2^30 elements (4 GiB of float32). */
#define NPU_NPY_MAX_ELEMENTS (1ull << 30)

struct npu_npy {
	uint32_t rank;
	uint32_t pad;
	int64_t dims[NPU_NPY_MAX_RANK];
	uint64_t elements;
	float *data;               /* elements values, C order; npu_npy_free() frees */
};

int npu_npy_read(const char *path, struct npu_npy *ret, char *why, size_t why_size);
/* The same from memory (the file's bytes). */
int npu_npy_parse(const void *bytes, size_t size, struct npu_npy *ret, char *why, size_t why_size);
void npu_npy_free(struct npu_npy *a);
/* Writes rank dims and their product of values as float32 <f4, C order;
 * the file is replaced whole (written aside, then renamed). */
int npu_npy_write(const char *path, uint32_t rank, const int64_t *dims, const float *data, char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif /* NPU_NPY_H */
