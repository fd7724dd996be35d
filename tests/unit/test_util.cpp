#include "test_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "common/clock.h"
#include "uapi/bwq_page.h"

namespace test {

uint64_t Rng::next()
{
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

float Rng::uniform(float lo, float hi) { return lo + (hi - lo) * float(next() >> 40) / float(1 << 24); }

RawJob conv1x1_job()
{
        RawJob j;
        uint32_t x = j.tensor(1, 0, 1, 4, 4, 8, 8);
        uint32_t y = j.tensor(1, 4096, 1, 4, 4, 16);
        auto &L = j.layer(NPU_OP_CONV2D, x, y, 8);
        L.kernel_h = L.kernel_w = L.stride_h = L.stride_w = L.dilation_h = L.dilation_w = 1;
        L.groups = 1;
        L.param_bo_index = 2;
        L.weight_offset = 0;
        L.weight_size = 8 * 16;
        L.scale_offset = 256;
        L.bias_offset = 512;
        return j;
}

RawJob::RawJob()
{
        h.magic = NPU_JOB_MAGIC;
        h.version = NPU_JOB_VERSION;
        h.header_size = sizeof(npu_job_header);
        h.tensor_size = sizeof(npu_tensor_desc);
        h.layer_size = sizeof(npu_layer_desc);
        h.result_bo_index = 0;
        h.result_offset = 0;
}

std::vector<uint8_t> RawJob::bytes() const
{
        npu_job_header hh = h;
        hh.tensor_count = uint32_t(t.size());
        hh.layer_count = uint32_t(l.size());
        std::vector<uint8_t> b(sizeof hh + t.size() * sizeof(npu_tensor_desc) + l.size() * sizeof(npu_layer_desc));
        std::memcpy(b.data(), &hh, sizeof hh);
        if (!t.empty())
                std::memcpy(b.data() + sizeof hh, t.data(), t.size() * sizeof(npu_tensor_desc));
        if (!l.empty())
                std::memcpy(b.data() + sizeof hh + t.size() * sizeof(npu_tensor_desc), l.data(),
                            l.size() * sizeof(npu_layer_desc));
        return b;
}

uint32_t RawJob::tensor(uint32_t bo, uint64_t off, uint32_t n, uint32_t hh, uint32_t w, uint32_t c, unsigned bits)
{
        npu_tensor_desc d{};
        d.bo_index = bo;
        d.offset = off;
        d.n = n, d.h = hh, d.w = w, d.c = c;
        d.capacity = uint64_t(n) * hh * w * c * 2;
        d.bits = uint8_t(bits);
        for (int i = 0; i < NPU_BITS_COUNT; i++) {
                d.lo[i] = -1.0f;
                d.hi[i] = 1.0f;
        }
        t.push_back(d);
        return uint32_t(t.size() - 1);
}

npu_layer_desc &RawJob::layer(uint16_t op, uint32_t in, uint32_t out, unsigned bits)
{
        npu_layer_desc d{};
        d.op = op;
        d.policy = NPU_POLICY_FIXED;
        d.bits = uint8_t(bits);
        d.input_count = 1;
        d.inputs[0] = in;
        d.inputs[1] = d.inputs[2] = d.inputs[3] = NPU_TENSOR_NONE;
        d.output = out;
        l.push_back(d);
        return l.back();
}

Buffers::Buffers(size_t count, size_t size) : mem(count, std::vector<uint8_t>(size))
{
        for (auto &m : mem)
                data.push_back(m.data());
}

Page::Page(bool seal)
{
        fd = memfd_create("test-page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, BWQ_PAGE_SIZE), 0);
        void *m = mmap(nullptr, BWQ_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        assert_true(m != MAP_FAILED);
        p = static_cast<bwq_page *>(m);
        p->magic = BWQ_PAGE_MAGIC;
        p->version = BWQ_PAGE_VERSION;
        if (seal)
                assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL), 0);
        set_published(bwq::monotonic_ns(), 3600000000000ull);
        set_bits(8);
}

void Page::set_published(uint64_t published_ns, uint64_t interval_ns)
{
        bwq_page_write_begin(p);
        __atomic_store_n(&p->published_ns, published_ns, __ATOMIC_RELAXED);
        __atomic_store_n(&p->interval_ns, interval_ns, __ATOMIC_RELAXED);
        bwq_page_write_end(p);
}

Page::~Page()
{
        munmap(p, BWQ_PAGE_SIZE);
        close(fd);
}

void Page::set_bits(unsigned bits)
{
        bwq_page_write_begin(p);
        __atomic_store_n(&p->act_bits, uint8_t(bits), __ATOMIC_RELAXED);
        bwq_page_write_end(p);
}

} // namespace test
