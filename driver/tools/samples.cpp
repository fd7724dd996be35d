// The samples of an .npy file against an ONNX model input's shape.
#include "samples.h"

namespace tools {

bool read_samples(const char *path, unsigned want_rank, const int64_t *want_dims,
                  Samples *s, std::string *why)
{
        char msg[512];
        if (npu_npy_read(path, &s->a, msg, sizeof msg) < 0) {
                *why = msg;
                return false;
        }
        const npu_npy &a = s->a;
        if (a.rank == want_rank + 1) {
                s->extra_axis = true;
                s->count = uint64_t(a.dims[0]);
                s->shape.assign(a.dims + 1, a.dims + a.rank);
        } else if (a.rank == want_rank && want_rank > 0) {
                s->count = uint64_t(a.dims[0]);
                s->shape.assign(a.dims, a.dims + a.rank);
                s->shape[0] = 1;
                if (want_dims[0] > 1) {  // the model takes a batch of its own
                        s->count = a.dims[0] % want_dims[0] ? 0 : uint64_t(a.dims[0] / want_dims[0]);
                        s->shape[0] = want_dims[0];
                }
        } else {
                *why = std::string(path) + ": rank " + std::to_string(a.rank) + " does not fit the model input's rank " +
                       std::to_string(want_rank) + " (or one more for the samples)";
                return false;
        }
        if (!s->count) {
                *why = std::string(path) + ": no samples";
                return false;
        }
        for (size_t i = 0; i < s->shape.size(); i++)
                if (want_dims[i] > 0 && want_dims[i] != s->shape[i]) {
                        *why = std::string(path) + ": dimension " + std::to_string(i) + " of a sample is " + std::to_string(s->shape[i]) +
                               ", the model's is " + std::to_string(want_dims[i]);
                        return false;
                }
        s->per = a.elements / s->count;
        return true;
}


} // namespace tools
