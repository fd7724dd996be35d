// libFuzzer target over the model frontend's parsers: the first byte picks
// an .npy file (npu_npy_parse) or an ONNX model (npu_onnx_load, through a
// memfd: protobuf, shapes, folding, rewrites and lowering).  Each must load
// or fail with a message; a crash, hang or leak is a finding.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "npu/npy.h"
#include "npu/onnx.h"

// Loading builds graphs only; compiling and running are the device's, which
// fuzz_job covers.  Those entry points of libnpu are not linked here.
extern "C" int npu_model_compile(npu_device *, const npu_graph *, const npu_compile_options *, npu_model **) { return -ENOSYS; }
extern "C" int npu_model_run_inputs(npu_model *, const float *const *, unsigned, npu_run_stats *) { return -ENOSYS; }
extern "C" int npu_model_output(npu_model *, unsigned, float *, size_t) { return -ENOSYS; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        char why[512] = "";
        if (data[0] % 2 == 0) {
                npu_npy a{};
                if (npu_npy_parse(data + 1, size - 1, &a, why, sizeof why) == 0) {
                        uint64_t n = 1;
                        for (uint32_t i = 0; i < a.rank; i++)
                                n *= uint64_t(a.dims[i]);
                        if (n != a.elements)
                                __builtin_trap();
                        npu_npy_free(&a);
                } else if (!why[0]) {
                        __builtin_trap();  // every refusal says why
                }
                return 0;
        }
        int fd = memfd_create("fuzz.onnx", MFD_CLOEXEC);
        if (fd < 0)
                return 0;
        if (write(fd, data + 1, size - 1) != ssize_t(size - 1)) {
                close(fd);
                return 0;
        }
        std::string path = "/proc/self/fd/" + std::to_string(fd);
        npu_onnx *m = nullptr;
        npu_onnx_options o{};
        o.size = sizeof o;
        o.input_shapes = "x=1x3x8x8";
        if (npu_onnx_load(path.c_str(), &o, &m, why, sizeof why) == 0) {
                if (!npu_onnx_graph(m) || !npu_onnx_placement(m))
                        __builtin_trap();
                npu_onnx_free(m);
        } else if (!why[0]) {
                __builtin_trap();
        }
        close(fd);
        return 0;
}
