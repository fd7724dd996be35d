// Writes valid jobs as seeds for fuzz_job: <dir>/seed-N.
#include <cstdio>
#include <cstring>
#include <string>

#include "../unit/test_util.h"

static void write_seed(const std::string &dir, int n, uint8_t page_bits, const test::RawJob &j)
{
        auto b = j.bytes();
        uint8_t setup[8] = {2, 4, 1, page_bits, 2, 0, 0, 0};  // 3 BOs of 16 KiB, a page, best ISA
        std::string path = dir + "/seed-" + std::to_string(n);
        FILE *f = fopen(path.c_str(), "wb");
        if (!f) {
                perror(path.c_str());
                return;
        }
        fwrite(setup, 1, sizeof setup, f);
        fwrite(b.data(), 1, b.size(), f);
        fclose(f);
}

static npu_layer_desc &conv(test::RawJob &j, uint32_t in, uint32_t out, uint32_t k, uint32_t groups, uint64_t wsize)
{
        auto &L = j.layer(NPU_OP_CONV2D, in, out, 8);
        L.kernel_h = L.kernel_w = uint16_t(k);
        L.stride_h = L.stride_w = L.dilation_h = L.dilation_w = 1;
        L.pad_top = L.pad_left = L.pad_bottom = L.pad_right = uint16_t(k / 2);
        L.groups = groups;
        L.param_bo_index = 2;
        L.weight_size = wsize;
        L.scale_offset = 8192;
        L.bias_offset = 12288;
        return L;
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: make_seeds DIR\n");
                return 2;
        }
        std::string dir = argv[1];
        int n = 0;
        {
                // conv 3x3 -> depthwise 3x3 (DYNAMIC) -> add -> maxpool -> gap -> fc
                test::RawJob j;
                j.h.result_offset = 0;
                uint32_t x = j.tensor(1, 0, 1, 6, 6, 8, 8);
                uint32_t a = j.tensor(1, 1024, 1, 6, 6, 8);
                uint32_t b = j.tensor(1, 2048, 1, 6, 6, 8);
                uint32_t c = j.tensor(1, 3072, 1, 6, 6, 8);
                uint32_t d = j.tensor(1, 4096, 1, 3, 3, 8);
                uint32_t e = j.tensor(1, 5120, 1, 1, 1, 8);
                uint32_t f = j.tensor(1, 6144, 1, 1, 1, 16);
                conv(j, x, a, 3, 1, 72 * 16);
                auto &dw = conv(j, a, b, 3, 8, 72);
                dw.policy = NPU_POLICY_DYNAMIC;
                dw.bits = 0;
                dw.min_bits = 4;
                dw.max_bits = 16;
                auto &add = j.layer(NPU_OP_ADD, a, c, 6);
                add.input_count = 2;
                add.inputs[1] = b;
                auto &mp = j.layer(NPU_OP_MAXPOOL, c, d, 4);
                mp.kernel_h = mp.kernel_w = 2;
                mp.stride_h = mp.stride_w = 2;
                mp.dilation_h = mp.dilation_w = 1;
                j.layer(NPU_OP_GLOBAL_AVGPOOL, d, e, 16);
                auto &fc = j.layer(NPU_OP_FULLY_CONNECTED, e, f, 8);
                fc.groups = 1;
                fc.param_bo_index = 2;
                fc.weight_size = 8 * 16;
                fc.scale_offset = 8192;
                fc.bias_offset = 12288;
                for (uint8_t bits : {4, 6, 8, 16})
                        write_seed(dir, n++, bits, j);
        }
        {
                // mul broadcast, concat, avgpool
                test::RawJob j;
                j.h.result_offset = 0;
                uint32_t x = j.tensor(1, 0, 1, 4, 4, 6, 4);
                uint32_t s = j.tensor(1, 512, 1, 1, 1, 6, 16);
                uint32_t m = j.tensor(1, 1024, 1, 4, 4, 6);
                uint32_t c = j.tensor(1, 2048, 1, 4, 4, 12);
                uint32_t p = j.tensor(1, 4096, 1, 4, 4, 12);
                auto &mul = j.layer(NPU_OP_MUL, x, m, 8);
                mul.input_count = 2;
                mul.inputs[1] = s;
                auto &cat = j.layer(NPU_OP_CONCAT, x, c, 6);
                cat.input_count = 2;
                cat.inputs[1] = m;
                auto &ap = j.layer(NPU_OP_AVGPOOL, c, p, 16);
                ap.kernel_h = ap.kernel_w = 3;
                ap.stride_h = ap.stride_w = 1;
                ap.dilation_h = ap.dilation_w = 1;
                ap.pad_top = ap.pad_left = ap.pad_bottom = ap.pad_right = 1;
                write_seed(dir, n++, 8, j);
        }
        {
                // Outputs at 6 and 4 bits whose last packing group is partial,
                // ending exactly at the end of their buffer object.
                test::RawJob j;
                j.h.result_offset = 0;
                uint32_t x = j.tensor(1, 0, 1, 2, 2, 61, 8);
                uint32_t y = j.tensor(1, 16384 - 46, 1, 1, 1, 61);  // ceil(61 * 6 / 8) = 46
                j.t[y].capacity = 46;
                j.layer(NPU_OP_GLOBAL_AVGPOOL, x, y, 6);
                uint32_t z = j.tensor(2, 16384 - 31, 1, 1, 1, 61);  // ceil(61 * 4 / 8) = 31
                j.t[z].capacity = 31;
                j.layer(NPU_OP_MAXPOOL, y, z, 4).kernel_h = 1;
                auto &mp = j.l.back();
                mp.kernel_w = mp.stride_h = mp.stride_w = mp.dilation_h = mp.dilation_w = 1;
                write_seed(dir, n++, 8, j);
        }
        {
                // resize nearest 2x3, bilinear x2, depth-to-space 2x2
                test::RawJob j;
                j.h.result_offset = 0;
                uint32_t x = j.tensor(1, 0, 1, 3, 4, 8, 8);
                uint32_t a = j.tensor(1, 1024, 1, 6, 12, 8);
                uint32_t b = j.tensor(1, 4096, 1, 12, 24, 8);
                uint32_t c = j.tensor(1, 8704, 1, 24, 48, 2);
                auto &nn = j.layer(NPU_OP_RESIZE, x, a, 6);
                nn.kernel_h = nn.kernel_w = 1;
                nn.stride_h = 2, nn.stride_w = 3;
                auto &bl = j.layer(NPU_OP_RESIZE, a, b, 8);
                bl.kernel_h = bl.kernel_w = 2;
                bl.stride_h = bl.stride_w = 2;
                auto &ds = j.layer(NPU_OP_DEPTH_TO_SPACE, b, c, 4);
                ds.stride_h = ds.stride_w = 2;
                write_seed(dir, n++, 8, j);
        }
        printf("make_seeds: %d seeds in %s\n", n, dir.c_str());
        return 0;
}
