// npu_wait_many: one io_uring poll per model's fence, until every job has
// ended or the absolute deadline passes.
#include <errno.h>
#include <poll.h>

#include <algorithm>
#include <liburing.h>

#include "common/clock.h"
#include "model.h"

extern "C" int npu_wait_many(npu_model *const *models, unsigned count, int64_t deadline_ns)
{
        if (!models || count == 0 || count > 4096)
                return -EINVAL;
        io_uring ring;
        int r = io_uring_queue_init(std::min(count, 256u) * 2, &ring, 0);
        if (r < 0)
                return r;
        unsigned pending = 0, queued = 0;
        auto queue_polls = [&]() {
                // Queue as many polls as the ring holds; the rest follow as slots free.
                for (; queued < count; queued++) {
                        npu_model *m = models[queued];
                        if (!m || !m->job_id || !m->fence)
                                continue;
                        io_uring_sqe *sqe = io_uring_get_sqe(&ring);
                        if (!sqe)
                                break;
                        io_uring_prep_poll_add(sqe, m->fence.get(), POLLIN);
                        io_uring_sqe_set_data64(sqe, queued);
                        pending++;
                }
                return io_uring_submit(&ring);
        };
        r = queue_polls();
        while (r >= 0 && pending > 0) {
                int64_t left = deadline_ns - int64_t(bwq::monotonic_ns());
                if (left <= 0) {
                        r = -ETIME;
                        break;
                }
                __kernel_timespec ts{left / 1000000000ll, left % 1000000000ll};
                io_uring_cqe *cqe;
                r = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
                if (r == -EINTR) {
                        r = 0;
                        continue;
                }
                if (r < 0)
                        break;
                unsigned head, seen = 0;
                io_uring_for_each_cqe(&ring, head, cqe)
                {
                        seen++;
                        pending--;
                }
                io_uring_cq_advance(&ring, seen);
                if (queued < count)
                        r = queue_polls();
        }
        io_uring_queue_exit(&ring);
        if (r < 0)
                return r == -ETIME ? -ETIME : r;
        for (unsigned i = 0; i < count; i++)
                if (models[i] && models[i]->job_id && (r = npu::model_finish(models[i], 0)) < 0)
                        return r;
        return 0;
}
