// libFuzzer target over the job validator: any job it accepts must then
// execute without touching memory outside its buffers (ASan watches).
//
// Input: 8 bytes of setup (BO count, BO size, decision page, page depth),
// then the command buffer.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "uapi/bwq_page.h"
#include "driver/npuref/job.h"
#include "driver/npuref/kernels.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 8)
                return 0;
        const size_t nbos = 1 + data[0] % 3;
        const size_t bo_size = size_t(1024) << (data[1] % 5);  // 1 KiB .. 16 KiB
        const bool have_page = data[2] & 1;
        static std::vector<uint8_t> mem[3];
        npuref::BufferView views[3];
        for (size_t i = 0; i < nbos; i++) {
                // Exactly sized heap blocks, so ASan sees any overrun.
                mem[i].assign(bo_size, uint8_t(i * 37));
                mem[i].shrink_to_fit();
                views[i] = {mem[i].data(), bo_size};
        }
        npuref::Job job;
        npuref::JobError err;
        if (npuref::validate_job(data + 8, size - 8, views, nbos, have_page, &job, &err) != 0) {
                if (err.code == DRM_NPU_JOB_OK || err.code >= DRM_NPU_JOB_ERR_MAX)
                        __builtin_trap();  // a refusal always names its reason
                return 0;
        }
        bwq_page page{};
        page.magic = BWQ_PAGE_MAGIC;
        page.version = BWQ_PAGE_VERSION;
        page.act_bits = data[3];
        const npuref::Kernels &k = npuref::kernels_for(npuref::Isa(data[4] % 3 < 3 && npuref::isa_supported(npuref::Isa(data[4] % 3))
                                                                           ? data[4] % 3
                                                                           : 0));
        if (npuref::execute_job(job, views, have_page ? &page : nullptr, k, nullptr) != 0)
                __builtin_trap();
        return 0;
}
