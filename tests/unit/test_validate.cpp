// The job validator (DESIGN §5.4): each kind of bad job fails with its
// named error, naming the layer or tensor, before anything is touched.
#include <cerrno>
#include <cmath>

#include "common/job_error.h"
#include "driver/npuref/job.h"
#include "test_util.h"

using namespace npuref;

namespace {

// A valid job (test_util.h): results in BO 0, tensors in BO 1, parameters
// in BO 2 (each 64 KiB).
test::RawJob good_job() { return test::conv1x1_job(); }

struct Outcome {
        int r;
        JobError err;
};

Outcome validate(const test::RawJob &j, size_t nbos = 3, bool page = false, long size_delta = 0)
{
        static test::Buffers bufs(3, 65536);
        std::vector<BufferView> views;
        for (size_t i = 0; i < nbos && i < 3; i++)
                views.push_back({bufs.data[i], 65536});
        auto b = j.bytes();
        Job job;
        JobError err;
        int r = validate_job(b.data(), size_t(long(b.size()) + size_delta), views.data(), views.size(), page, &job, &err);
        return {r, err};
}

void expect(const Outcome &o, int err, uint32_t code, uint32_t index)
{
        if (o.r != err || o.err.code != code || o.err.index != index)
                print_error("got r=%d code=%u (%s) index=%u, want r=%d code=%u (%s) index=%u\n", o.r, o.err.code,
                            bwq::job_error_name(o.err.code), o.err.index, err, code, bwq::job_error_name(code), index);
        assert_int_equal(o.r, err);
        assert_int_equal(o.err.code, code);
        assert_int_equal(o.err.index, index);
}

} // namespace

static void good_job_passes(void **)
{
        expect(validate(good_job()), 0, DRM_NPU_JOB_OK, 0);
}

static void bad_header(void **)
{
        auto j = good_job();
        j.h.magic ^= 1;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_HEADER, 0);
        j = good_job();
        j.h.header_size += 8;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_HEADER, 0);
        j = good_job();
        j.h.layer_size = 64;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_HEADER, 0);
        // The buffer is one byte short of, or one byte over, what the header says.
        expect(validate(good_job(), 3, false, -1), -EINVAL, DRM_NPU_JOB_ERR_BAD_HEADER, 0);
        expect(validate(good_job(), 3, false, +1), -EINVAL, DRM_NPU_JOB_ERR_BAD_HEADER, 0);
        // Shorter than a header at all.
        test::RawJob empty;
        expect(validate(empty, 3, false, -long(sizeof(npu_job_header)) + 3), -EINVAL, DRM_NPU_JOB_ERR_BAD_HEADER, 0);
}

static void reserved_fields(void **)
{
        auto j = good_job();
        j.h.reserved[1] = 1;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_RESERVED, 0);
        j = good_job();
        j.h.flags = 0x80;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_RESERVED, 0);
        j = good_job();
        j.t[1].pad0[2] = 1;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_RESERVED, 1);
        j = good_job();
        j.l[0].reserved[0] = 1;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_RESERVED, 0);
        // Both pads of npu_layer_desc, the second once an implicit hole.
        j = good_job();
        j.l[0].flags = 4;  // an unknown layer flag
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_RESERVED, 0);
        j = good_job();
        j.l[0].pad1 = 0x100;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_RESERVED, 0);
        // A bias per input depth: on a convolution only, and all four rows in the BO.
        j = good_job();
        j.l[0].flags = NPU_LAYER_BIAS_PER_DEPTH;
        expect(validate(j), 0, DRM_NPU_JOB_OK, 0);
        j.l[0].bias_offset = 65536 - 64;  // room for 16 floats: one row, not four
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_OUT_OF_BOUNDS, 0);
        j.l[0].flags = 0;
        expect(validate(j), 0, DRM_NPU_JOB_OK, 0);
        j = good_job();
        j.l[0].op = NPU_OP_ADD;
        j.l[0].flags = NPU_LAYER_BIAS_PER_DEPTH;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_RESERVED, 0);
        // A job of the format before the hole was made a field.
        j = good_job();
        j.h.version = 1;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_HEADER, 0);
        j = good_job();
        j.l[0].inputs[2] = 0;  // unused input slots must be NONE
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_RESERVED, 0);
}

static void out_of_bounds(void **)
{
        auto j = good_job();
        j.t[1].offset = 65536 - 100;  // 256 bytes needed at 16 bits
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_OUT_OF_BOUNDS, 1);
        j = good_job();
        j.t[0].offset = UINT64_MAX - 10;  // offset + capacity wraps
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_OUT_OF_BOUNDS, 0);
        j = good_job();
        j.l[0].bias_offset = 65536 - 32;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_OUT_OF_BOUNDS, 0);
        j = good_job();
        j.h.result_offset = 65536 - 16;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_OUT_OF_BOUNDS, 0);
}

static void bad_bo_index(void **)
{
        auto j = good_job();
        j.t[1].bo_index = 3;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_BO_INDEX, 1);
        expect(validate(good_job(), 2), -EINVAL, DRM_NPU_JOB_ERR_BAD_BO_INDEX, 0);  // params in BO 2
}

static void unknown_op(void **)
{
        auto j = good_job();
        j.l[0].op = 99;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_OP, 0);
        j = good_job();
        j.l[0].act = 17;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_OP, 0);
}

static void mismatched_shapes(void **)
{
        auto j = good_job();
        j.t[1].h = 3;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 0);
        j = good_job();
        j.l[0].groups = 3;  // 8 channels do not split in 3
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 0);
        j = good_job();
        j.l[0].stride_h = 0;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 0);
        // ADD of [1,4,4,8] and [1,4,4,16]
        j = good_job();
        uint32_t z = j.tensor(1, 8192, 1, 4, 4, 8);
        auto &A = j.layer(NPU_OP_ADD, 0, z);
        A.input_count = 2;
        A.inputs[1] = 1;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 1);
        // RESIZE of [1,4,4,16] by 2x3 must write [1,8,12,16], nearest or
        // bilinear, no dilations or pads, factors 1 to 16.
        auto resize = [](uint32_t h, uint32_t w, void (*edit)(npu_layer_desc &)) {
                auto r = good_job();
                uint32_t t = r.tensor(1, 16384, 1, h, w, 16);
                auto &R = r.layer(NPU_OP_RESIZE, 1, t);
                R.kernel_h = R.kernel_w = 1;
                R.stride_h = 2, R.stride_w = 3;
                if (edit)
                        edit(R);
                return r;
        };
        expect(validate(resize(8, 12, nullptr)), 0, 0, 0);
        expect(validate(resize(8, 12, [](npu_layer_desc &R) { R.kernel_h = R.kernel_w = 2; })), 0, 0, 0);
        expect(validate(resize(8, 13, nullptr)), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 1);
        expect(validate(resize(8, 12, [](npu_layer_desc &R) { R.kernel_h = R.kernel_w = 3; })), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 1);
        expect(validate(resize(8, 12, [](npu_layer_desc &R) { R.kernel_w = 2; })), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 1);
        expect(validate(resize(8, 12, [](npu_layer_desc &R) { R.pad_top = 1; })), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 1);
        expect(validate(resize(8, 12, [](npu_layer_desc &R) { R.dilation_h = 1; })), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 1);
        expect(validate(resize(8, 12, [](npu_layer_desc &R) { R.stride_w = 0; })), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 1);
        expect(validate(resize(68, 12, [](npu_layer_desc &R) { R.stride_h = 17; })), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 1);
        // DEPTH_TO_SPACE of [1,4,4,16] by 2x2 must write [1,8,8,4].
        auto d2s = [](uint32_t h, uint32_t w, uint32_t c, void (*edit)(npu_layer_desc &)) {
                auto r = good_job();
                uint32_t t = r.tensor(1, 16384, 1, h, w, c);
                auto &R = r.layer(NPU_OP_DEPTH_TO_SPACE, 1, t);
                R.stride_h = R.stride_w = 2;
                if (edit)
                        edit(R);
                return r;
        };
        expect(validate(d2s(8, 8, 4, nullptr)), 0, 0, 0);
        expect(validate(d2s(8, 8, 8, nullptr)), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 1);
        expect(validate(d2s(8, 8, 4, [](npu_layer_desc &R) { R.kernel_h = 1; })), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 1);
        expect(validate(d2s(8, 16, 2, [](npu_layer_desc &R) { R.stride_w = 4; })), 0, 0, 0);
        expect(validate(d2s(8, 8, 4, [](npu_layer_desc &R) { R.pad_left = 1; })), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 1);
}

// NPU_LAYER_RESIDUAL: a second input with the output's pixels and at most
// its channels, on a convolution that is not depthwise.
static void residual(void **)
{
        auto with_residual = [](uint32_t n, uint32_t h, uint32_t w, uint32_t c) {
                auto j = good_job();
                uint32_t r = j.tensor(1, 16384, n, h, w, c, 8);
                j.l[0].flags = NPU_LAYER_RESIDUAL;
                j.l[0].input_count = 2;
                j.l[0].inputs[1] = r;
                return j;
        };
        expect(validate(with_residual(1, 4, 4, 16)), 0, DRM_NPU_JOB_OK, 0);
        expect(validate(with_residual(1, 4, 4, 5)), 0, DRM_NPU_JOB_OK, 0);  // zero past its channels
        expect(validate(with_residual(1, 4, 4, 17)), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 0);
        expect(validate(with_residual(1, 4, 3, 16)), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 0);
        expect(validate(with_residual(2, 4, 4, 16)), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 0);
        // The flag without the second input, or the input without the flag.
        auto j = with_residual(1, 4, 4, 16);
        j.l[0].input_count = 1;
        j.l[0].inputs[1] = NPU_TENSOR_NONE;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 0);
        j = with_residual(1, 4, 4, 16);
        j.l[0].flags = 0;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 0);
        // Not a fully connected layer's, nor an ADD's.
        j = with_residual(1, 4, 4, 16);
        j.l[0].op = NPU_OP_ADD;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_RESERVED, 0);
        j = with_residual(1, 4, 4, 16);
        j.l[0].op = NPU_OP_FULLY_CONNECTED;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_RESERVED, 0);
        // Not depthwise: [1,4,4,8] -> [1,4,4,8] in 8 groups.
        j = with_residual(1, 4, 4, 8);
        j.t[1].c = 8;
        j.l[0].groups = 8;
        j.l[0].weight_size = 8;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, 0);
        // The output may not overlap the residual.
        j = with_residual(1, 4, 4, 16);
        j.t[2].offset = 4096;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_OVERLAP, 0);
}

static void too_many_layers(void **)
{
        auto j = good_job();
        for (uint32_t i = 0; i < kMaxLayers; i++)
                j.l.push_back(j.l[0]);
        expect(validate(j), -E2BIG, DRM_NPU_JOB_ERR_TOO_MANY, 0);
}

static void wrong_sizes(void **)
{
        auto j = good_job();
        j.t[1].capacity = 16 * 16 - 1;  // one byte short at 8 bits
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_SIZE, 0);
        j = good_job();
        j.t[1].capacity = 16 * 16 * 2 - 1;  // enough for FIXED 8, not for DYNAMIC up to 16
        expect(validate(j), 0, DRM_NPU_JOB_OK, 0);
        j.l[0].policy = NPU_POLICY_DYNAMIC;
        j.l[0].bits = 0;
        j.l[0].min_bits = 4;
        j.l[0].max_bits = 16;
        expect(validate(j, 3, true), -EINVAL, DRM_NPU_JOB_ERR_BAD_SIZE, 0);
        j = good_job();
        j.l[0].weight_size = 8 * 16 - 1;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_SIZE, 0);
        j = good_job();
        j.t[0].capacity = 127;  // input at 8 bits needs 128
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_SIZE, 0);
}

static void bad_tensor_refs(void **)
{
        auto j = good_job();
        j.t[0].bits = 0;  // nobody writes the input
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_TENSOR, 0);
        j = good_job();
        j.l[0].output = 7;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_TENSOR, 0);
        j = good_job();
        j.l.push_back(j.l[0]);  // a second writer of the same tensor
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_TENSOR, 1);
}

static void bits_and_policy(void **)
{
        auto j = good_job();
        j.l[0].bits = 5;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_BITS, 0);
        j = good_job();
        j.t[0].bits = 12;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_BITS, 0);
        j = good_job();
        j.l[0].policy = NPU_POLICY_DYNAMIC;
        j.l[0].bits = 0;
        j.l[0].min_bits = 4;
        j.l[0].max_bits = 16;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_PAGE, 0);  // no decision page
        expect(validate(j, 3, true), 0, DRM_NPU_JOB_OK, 0);
        j.l[0].min_bits = 16;
        j.l[0].max_bits = 8;
        expect(validate(j, 3, true), -EINVAL, DRM_NPU_JOB_ERR_BAD_BITS, 0);
        j = good_job();
        j.l[0].policy = 9;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_BITS, 0);
}

static void overlap_and_ranges(void **)
{
        auto j = good_job();
        j.t[1].offset = 64;  // output over the input
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_OVERLAP, 0);
        j = good_job();
        j.t[1].bo_index = 2;  // output over the weights
        j.t[1].offset = 0;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_OVERLAP, 0);
        j = good_job();
        j.t[1].bo_index = 0;  // output over the result record
        j.t[1].offset = 0;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_OVERLAP, 0);
        j = good_job();
        j.t[1].lo[2] = NAN;
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_RANGE, 1);
        j = good_job();
        j.t[0].lo[0] = 0.5f;  // the range must hold zero
        expect(validate(j), -EINVAL, DRM_NPU_JOB_ERR_BAD_RANGE, 0);
}

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(good_job_passes), cmocka_unit_test(bad_header),     cmocka_unit_test(reserved_fields),
                cmocka_unit_test(out_of_bounds),   cmocka_unit_test(bad_bo_index),   cmocka_unit_test(unknown_op),
                cmocka_unit_test(mismatched_shapes), cmocka_unit_test(too_many_layers), cmocka_unit_test(wrong_sizes),
                cmocka_unit_test(bad_tensor_refs), cmocka_unit_test(bits_and_policy), cmocka_unit_test(overlap_and_ranges), cmocka_unit_test(residual),
        };
        return cmocka_run_group_tests_name("validate", tests, nullptr, nullptr);
}
