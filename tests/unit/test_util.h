// Helpers shared by the unit tests: raw jobs at the uapi level, random data.
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include <cmocka.h>
}

#include <vector>

#include "uapi/bwq_page.h"
#include "uapi/npu_accel.h"

namespace test {

struct Rng {
        uint64_t s;
        uint64_t next();
        float uniform(float lo, float hi);
        uint32_t below(uint32_t n) { return uint32_t(next() % n); }
};

// A job built field by field, as a command buffer.
struct RawJob {
        npu_job_header h{};
        std::vector<npu_tensor_desc> t;
        std::vector<npu_layer_desc> l;

        RawJob();
        std::vector<uint8_t> bytes() const;
        // A tensor of `bo` at `off`, room for 16 bits, range [-1, 1]; `bits`
        // nonzero makes it a job input.
        uint32_t tensor(uint32_t bo, uint64_t off, uint32_t n, uint32_t h, uint32_t w, uint32_t c, unsigned bits = 0);
        // A layer with one input, FIXED at `bits`.
        npu_layer_desc &layer(uint16_t op, uint32_t in, uint32_t out, unsigned bits = 8);
};

// A valid one-layer job: 1x1 conv [1,4,4,8] -> [1,4,4,16] at 8 bits; the
// results in BO 0, tensors in BO 1 (input at 0, output at 4096),
// parameters in BO 2 (weights at 0, scales at 256, bias at 512).
RawJob conv1x1_job();

// Memory of a raw job's BOs for validate_job(): `count` buffers of `size`.
struct Buffers {
        std::vector<std::vector<uint8_t>> mem;
        std::vector<uint8_t *> data;
        Buffers(size_t count, size_t size);
};

// A decision page in a memfd, sealed as bwqd's is and writable by the
// test through the mapping made before the seal.  Its heartbeat says now,
// with an interval of an hour: it is never frozen unless a test makes it so
// (set_published).
struct Page {
        int fd = -1;
        bwq_page *p = nullptr;
        explicit Page(bool seal = true);
        ~Page();
        void set_bits(unsigned bits);
        void set_published(uint64_t published_ns, uint64_t interval_ns);
};

} // namespace test
