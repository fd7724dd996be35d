#include "node_data.h"

#include <unistd.h>

#include <algorithm>

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
}

namespace conformance {

const char *kRoot = "/usr/share/libonnx-testdata/data/node/";



// A .pb tensor through the frontend's reader (npu_onnx_read_tensor).
OTensor load_tensor(const std::string &path)
{
        npu_npy a{};
        uint32_t type = 0;
        char why[512];
        if (npu_onnx_read_tensor(path.c_str(), &a, &type, why, sizeof why) < 0)
                fail_msg("%s", why);
        OTensor o;
        o.type = int(type);
        if (o.type != kFloat && o.type != kUint8 && o.type != kInt8 && o.type != kInt32)
                fail_msg("%s: tensor type %d not read here", path.c_str(), o.type);
        o.dims.assign(a.dims, a.dims + a.rank);
        o.v.assign(a.data, a.data + a.elements);
        npu_npy_free(&a);
        return o;
}

bool ONode::get(const std::string &k, npu_onnx_attr *a) const { return npu_onnx_node_attr(m.get(), 0, k.c_str(), a) == 0; }

std::vector<int64_t> ONode::ints(const std::string &k, std::vector<int64_t> dflt) const
{
        npu_onnx_attr a;
        if (!get(k, &a) || a.kind != NPU_ONNX_ATTR_INTS)
                return dflt;
        return {a.ints, a.ints + a.count};
}

int64_t ONode::i(const std::string &k, int64_t dflt) const
{
        npu_onnx_attr a;
        return get(k, &a) && a.kind == NPU_ONNX_ATTR_INT ? a.i : dflt;
}

float ONode::f(const std::string &k, float dflt) const
{
        npu_onnx_attr a;
        return get(k, &a) && a.kind == NPU_ONNX_ATTR_FLOAT ? a.f : dflt;
}

std::string ONode::s(const std::string &k, const std::string &dflt) const
{
        npu_onnx_attr a;
        return get(k, &a) && a.kind == NPU_ONNX_ATTR_STRING ? std::string(a.s) : dflt;
}

// A one-node model's op and attributes, through the frontend (the file as
// written: NPU_ONNX_INPUTS_ONLY).
ONode load_node(const std::string &name)
{
        npu_onnx_options o{};
        o.size = sizeof o;
        o.flags = NPU_ONNX_INPUTS_ONLY;
        npu_onnx *m;
        char why[512];
        std::string path = kRoot + name + "/model.onnx";
        if (npu_onnx_load(path.c_str(), &o, &m, why, sizeof why) < 0)
                fail_msg("%s", why);
        ONode n;
        n.m.reset(m, npu_onnx_free);
        if (npu_onnx_node_count(m) != 1)
                fail_msg("%s: not one node", path.c_str());
        n.op = npu_onnx_node_op(m, 0);
        return n;
}

OTensor input(const std::string &name, int i)
{
        return load_tensor(kRoot + name + "/test_data_set_0/input_" + std::to_string(i) + ".pb");
}

OTensor output(const std::string &name, int i)
{
        return load_tensor(kRoot + name + "/test_data_set_0/output_" + std::to_string(i) + ".pb");
}

bool have(const std::string &name) { return access((kRoot + name + "/model.onnx").c_str(), R_OK) == 0; }

test::Tensor to_nhwc(const OTensor &t)
{
        test::Tensor o{};
        if (t.dims.size() == 4)
                o = {uint32_t(t.dims[0]), uint32_t(t.dims[2]), uint32_t(t.dims[3]), uint32_t(t.dims[1]), {}};
        else if (t.dims.size() == 3)
                o = {uint32_t(t.dims[0]), 1, uint32_t(t.dims[2]), uint32_t(t.dims[1]), {}};
        else if (t.dims.size() == 2)
                o = {uint32_t(t.dims[0]), 1, 1, uint32_t(t.dims[1]), {}};
        else if (t.dims.size() == 1)
                o = {1, 1, 1, uint32_t(t.dims[0]), {}};
        else
                fail_msg("rank %zu not converted", t.dims.size());
        o.v.resize(o.size());
        for (size_t b = 0; b < o.n; b++)
                for (size_t c = 0; c < o.c; c++)
                        for (size_t y = 0; y < o.h; y++)
                                for (size_t x = 0; x < o.w; x++)
                                        o.v[((b * o.h + y) * o.w + x) * o.c + c] = float(t.v[((b * o.c + c) * o.h + y) * o.w + x]);
        return o;
}

void auto_pads(const std::string &mode, uint32_t in, uint32_t k, uint32_t s, uint32_t d, uint32_t *p0, uint32_t *p1)
{
        if (mode != "SAME_UPPER" && mode != "SAME_LOWER")
                return;
        uint32_t out = (in + s - 1) / s;
        int64_t total = std::max<int64_t>(0, int64_t(out - 1) * s + int64_t(d) * (k - 1) + 1 - in);
        *p0 = uint32_t(mode == "SAME_UPPER" ? total / 2 : total - total / 2);
        *p1 = uint32_t(total - *p0);
}

} // namespace conformance
