// GEMM kernels: every instruction set against the portable one, bit for bit.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "driver/npuref/kernels.h"
#include "driver/npuref/thread_pool.h"
#include "uapi/npu_accel.h"
#include "test_util.h"

using namespace npuref;

// Activations (any byte) and weights (in [lo, 127]) at random.
static void fill_bytes(test::Rng &rng, std::vector<uint8_t> &v)
{
        for (auto &x : v)
                x = uint8_t(rng.next());
}

static void fill_weights(test::Rng &rng, std::vector<int8_t> &v, int lo)
{
        for (auto &x : v)
                x = int8_t(int(rng.below(uint32_t(128 - lo))) + lo);
}

// Per-channel epilogue constants of n channels: zero-point terms in
// [-off_range, off_range], scales in [mul_lo, mul_hi], biases in [-1, 1].
struct Channels {
        std::vector<int32_t> off;
        std::vector<float> mul, add;
        Channels(test::Rng &rng, size_t n, uint32_t off_range, float mul_lo, float mul_hi) : off(n), mul(n), add(n)
        {
                for (size_t c = 0; c < n; c++) {
                        off[c] = int32_t(rng.below(2 * off_range + 1)) - int32_t(off_range);
                        mul[c] = rng.uniform(mul_lo, mul_hi);
                        add[c] = rng.uniform(-1.0f, 1.0f);
                }
        }
};

// Skips the calling test, saying why, where this CPU cannot run the table.
static void skip_without(Isa isa)
{
        if (!isa_supported(isa)) {
                print_message("skipped: this CPU lacks %s\n", kernels_for(isa).name);
                skip();
        }
}

static void check_isa(Isa isa)
{
        skip_without(isa);
        test::Rng rng{uint64_t(isa) + 1};
        // N: last slices of 1, 5, 8 and 9 columns, and whole ones.
        const size_t shapes[][3] = {{1, 4, 1},     {7, 12, 17},  {13, 64, 32}, {6, 100, 33},
                                    {49, 148, 96}, {3, 1028, 5}, {10, 12, 24}, {10, 20, 25}};
        // Activations of up to amax (the kernels' byte forms: any byte, below
        // 128, below 64, below 16), weights from -127 or from -128 (AVX2
        // widens a slice holding -128).
        const uint8_t amaxes[] = {255, 127, 63, 15};
        for (const auto &s : shapes)
                for (uint8_t amax : amaxes)
                        for (int wlo : {-127, -128}) {
                size_t M = s[0], K4 = s[1], N = s[2], N16 = (N + 15) / 16 * 16;
                std::vector<uint8_t> A(M * K4);
                std::vector<int8_t> B(N16 * K4);
                for (auto &x : A)
                        x = uint8_t(rng.below(uint32_t(amax) + 1));
                A[0] = amax;
                fill_weights(rng, B, wlo);
                if (wlo == -128)
                        B[B.size() - 1] = -128;  // in the last slice at least
                std::vector<int32_t> want(M * N, -1), got(M * N, -2);
                const ptrdiff_t zero = 0;
                GemmA a{A.data(), K4, &zero, 1, K4 / 4, amax};
                gemm_u8s8_portable(a, M, B.data(), K4, N, 0, want.data(), N);
                kernels_for(isa).gemm_u8s8(a, M, B.data(), K4, N, 0, got.data(), N);
                assert_memory_equal(want.data(), got.data(), want.size() * 4);
                // A K sub-range, as the int32 split of long rows uses.
                if (K4 >= 8) {
                        const ptrdiff_t four = 4;
                        GemmA sub{A.data(), K4, &four, 1, K4 / 4 - 2, amax};
                        gemm_u8s8_portable(sub, M, B.data(), K4, N, 1, want.data(), N);
                        kernels_for(isa).gemm_u8s8(sub, M, B.data(), K4, N, 1, got.data(), N);
                        assert_memory_equal(want.data(), got.data(), want.size() * 4);
                }
                // Taps: K4 / 4 blocks in runs of one block read at scattered
                // offsets (backwards), rows of stride 8 overlapping; and runs
                // of three blocks (odd: the paired K blocks' tail).
                std::vector<uint8_t> X(M * 8 + 4 * K4);
                for (auto &x : X)
                        x = uint8_t(rng.below(uint32_t(amax) + 1));
                std::vector<ptrdiff_t> offs(K4 / 4);
                for (size_t t = 0; t < offs.size(); t++)
                        offs[t] = ptrdiff_t(4 * (offs.size() - 1 - t) * 3 % (4 * K4));
                GemmA taps{X.data(), 8, offs.data(), unsigned(offs.size()), 1, amax};
                gemm_u8s8_portable(taps, M, B.data(), K4, N, 0, want.data(), N);
                kernels_for(isa).gemm_u8s8(taps, M, B.data(), K4, N, 0, got.data(), N);
                assert_memory_equal(want.data(), got.data(), want.size() * 4);
                if (K4 % 12 == 0) {
                        GemmA taps3{X.data(), 8, offs.data(), unsigned(K4 / 12), 3, amax};
                        gemm_u8s8_portable(taps3, M, B.data(), K4, N, 0, want.data(), N);
                        kernels_for(isa).gemm_u8s8(taps3, M, B.data(), K4, N, 0, got.data(), N);
                        assert_memory_equal(want.data(), got.data(), want.size() * 4);
                }
                        }
}

// The portable kernel against the definition, on a hand-checked case.
static void portable_definition(void **)
{
        // M = 1, K = 4, N = 2: row [1 2 3 4] . [1 -1 1 -1] = -2 and . [127 ...] = 1270
        uint8_t A[4] = {1, 2, 3, 4};
        int8_t B[64] = {};
        int8_t w0[4] = {1, -1, 1, -1}, w1[4] = {127, 127, 127, 127};
        for (int j = 0; j < 4; j++) {
                B[0 * 4 + j] = w0[j];
                B[1 * 4 + j] = w1[j];
        }
        int32_t C[2];
        const ptrdiff_t zero = 0;
        gemm_u8s8_portable(GemmA{A, 4, &zero, 1, 1}, 1, B, 4, 2, 0, C, 2);
        assert_int_equal(C[0], -2);
        assert_int_equal(C[1], 1270);
}

// The AVX-512 epilogues against the generic one, bit for bit: every
// activation, both output widths, with and without the zero-point term,
// row lengths with a masked tail, accumulators that saturate both ends,
// and with a residual over all columns, or all but the last three.
static void check_epilogue(Isa isa)
{
        const Kernels &k = kernels_for(isa);
        test::Rng rng{99};
        const size_t rows = 5, ldc = 70;
        for (size_t n : {size_t(1), size_t(16), size_t(37), size_t(64)}) {
                std::vector<int32_t> acc(rows * ldc);
                for (auto &a : acc)
                        a = int32_t(rng.below(2000001)) - 1000000;
                acc[0] = INT32_MAX / 2;
                acc[1 % n] = -INT32_MAX / 2;
                const Channels ch(rng, n, 10000, 1e-6f, 2e-5f);
                const std::vector<int32_t> &off = ch.off;
                const std::vector<float> &mul = ch.mul, &add = ch.add;
                for (unsigned bits : {4u, 8u, 16u}) {
                        for (uint8_t act : {NPU_ACT_NONE, NPU_ACT_RELU, NPU_ACT_RELU6, NPU_ACT_HARDSWISH, NPU_ACT_HARDSIGMOID,
                                            NPU_ACT_SIGMOID})
                                for (const int32_t *of : {static_cast<const int32_t *>(off.data()), static_cast<const int32_t *>(nullptr)})
                                for (size_t rc : {size_t(0), n, n > 3 ? n - 3 : n}) {
                                        std::vector<float> rv(rows * n);
                                        for (auto &v : rv)
                                                v = rng.uniform(-3.0f, 3.0f);
                                        const Residual res = rc ? Residual{rv.data(), n, rc} : Residual{};
                                        // The quantizer folded into the channel constants for NONE, RELU, RELU6.
                                        const OutQuant o = out_quant(bwq::qparams(-4.0f, 7.0f, bits), act);
                                        std::vector<float> fm(mul), fa(add);
                                        fold_channels(o, fm.data(), fa.data(), n);
                                        std::vector<uint8_t> w8(rows * n, 1), g8(rows * n, 2);
                                        std::vector<uint16_t> w16(rows * n, 1), g16(rows * n, 2);
                                        if (bits <= 8) {  // u8 output holds up to 8 bits
                                                epilogue_tile(acc.data(), ldc, rows, n, of, fm.data(), fa.data(), act, o, w8.data(), n, res);
                                                epilogue_u8_avx512(acc.data(), ldc, rows, n, of, fm.data(), fa.data(), act, o, g8.data(), n,
                                                                   res);
                                                assert_memory_equal(w8.data(), g8.data(), w8.size());
                                        }
                                        // Two planes of 16-bit inputs: acc (hi) * 256 + lo.
                                        if (of) {
                                                std::vector<int64_t> off64(n);
                                                std::vector<float> wm(fm);  // 256 times the values: 1/256 the scale
                                                for (size_t c = 0; c < n; c++) {
                                                        off64[c] = int64_t(off[c]) * 300;
                                                        wm[c] = fm[c] / 256.0f;
                                                }
                                                epilogue_wide(acc.data(), acc.data() + 1, ldc, rows, n, off64.data(), wm.data(),
                                                              fa.data(), act, o, w16.data(), n, res);
                                                k.epilogue_wide(acc.data(), acc.data() + 1, ldc, rows, n, off64.data(), wm.data(),
                                                                fa.data(), act, o, g16.data(), n, res);
                                                assert_memory_equal(w16.data(), g16.data(), w16.size() * 2);
                                        }
                                        epilogue_tile(acc.data(), ldc, rows, n, of, fm.data(), fa.data(), act, o, w16.data(), n, res);
                                        epilogue_u16_avx512(acc.data(), ldc, rows, n, of, fm.data(), fa.data(), act, o, g16.data(), n,
                                                            res);
                                        assert_memory_equal(w16.data(), g16.data(), w16.size() * 2);
                                }
                }
        }
}

// Depthwise rows against the portable kernel: channel counts whose last
// 16-channel block is whole (16, 64), whole dwords (8, 40), neither with
// channels before it (42) or without (3); pixel counts not a multiple of
// 4, more taps than one weight chunk.
static void check_depthwise(Isa isa)
{
        skip_without(isa);
        test::Rng rng{5};
        // Inputs of any byte, and below 64 and 16 (AVX2 takes 32-channel
        // blocks of inputs below 128 as bytes, four taps to a dword).
        for (uint8_t xmax : {uint8_t(255), uint8_t(127), uint8_t(15)})
        for (size_t C : {size_t(3), size_t(8), size_t(16), size_t(40), size_t(42), size_t(64)})
                for (unsigned taps : {1u, 9u, 31u, 49u})
                        for (size_t count : {size_t(1), size_t(7), size_t(12)}) {
                                const size_t step = 2 * C;  // stride 2
                                std::vector<ptrdiff_t> off(taps);
                                for (unsigned t = 0; t < taps; t++)
                                        off[t] = ptrdiff_t((t % 7) * C + (t / 7) * 20 * C);
                                std::vector<uint8_t> x(count * step + 7 * C + 140 * C);
                                std::vector<int8_t> w(taps * C);
                                for (auto &v : x)
                                        v = uint8_t(rng.below(uint32_t(xmax) + 1));
                                fill_weights(rng, w, -128);
                                // 31 taps: every input at xmax against weights of -128 and
                                // 127, the largest pair sums the int16 step must hold.
                                if (taps == 31) {
                                        std::fill(x.begin(), x.end(), xmax);
                                        for (size_t i = 0; i < w.size(); i++)
                                                w[i] = int8_t(i % 2 ? 127 : -128);
                                }
                                std::vector<int32_t> want(count * C, -1), got(count * C, -2);
                                depthwise_rows_portable(x.data(), step, off.data(), taps, w.data(), C, count, want.data());
                                kernels_for(isa)
                                        .depthwise_rows(x.data(), step, off.data(), taps, w.data(), C, count, got.data());
                                assert_memory_equal(want.data(), got.data(), want.size() * 4);
                                // With the epilogue (fused up to 32 taps): same bytes as
                                // the portable rows and epilogue.
                                Channels ch(rng, C, 100000, 1e-5f, 1e-4f);
                                std::vector<int32_t> &zoff = ch.off;
                                std::vector<float> &mul = ch.mul, &add = ch.add;
                                for (uint8_t act : {NPU_ACT_RELU, NPU_ACT_HARDSWISH}) {
                                        const OutQuant o = out_quant(bwq::qparams(-2.0f, 3.0f, 8), act);
                                        fold_channels(o, mul.data(), add.data(), C);
                                        std::vector<uint8_t> w8(count * C, 1), g8(count * C, 2);
                                        GemmEpilogue e{zoff.data(), mul.data(), add.data(), act, &o, w8.data(), nullptr, C};
                                        depthwise_epilogue_generic(x.data(), step, off.data(), taps, w.data(), C, count, e,
                                                                   want.data());
                                        e.q8 = g8.data();
                                        kernels_for(isa)
                                                .depthwise_epilogue(x.data(), step, off.data(), taps, w.data(), C, count, e,
                                                                    got.data(), xmax);
                                        assert_memory_equal(w8.data(), g8.data(), w8.size());
                                }
                        }
        // 3x3 windows at stride 1 read in place (input rows of W pixels):
        // the AVX-512 kernel reuses each input column across pixels.
        for (size_t C : {size_t(5), size_t(32), size_t(40)})
                for (size_t count : {size_t(1), size_t(4), size_t(11)}) {
                        const size_t W = count + 2;
                        std::vector<ptrdiff_t> off(9);
                        for (size_t t = 0; t < 9; t++)
                                off[t] = ptrdiff_t(((t / 3) * W + t % 3) * C);
                        std::vector<uint8_t> x(3 * W * C);
                        std::vector<int8_t> w(9 * C);
                        fill_bytes(rng, x);
                        fill_weights(rng, w, -128);
                        std::vector<int32_t> acc(count * C);
                        Channels ch(rng, C, 100000, 1e-5f, 1e-4f);
                        std::vector<int32_t> &zoff = ch.off;
                        std::vector<float> &mul = ch.mul, &add = ch.add;
                        const OutQuant o = out_quant(bwq::qparams(-2.0f, 3.0f, 6), NPU_ACT_RELU6);
                        fold_channels(o, mul.data(), add.data(), C);
                        std::vector<uint16_t> want(count * C, 1), got(count * C, 2);
                        GemmEpilogue e{zoff.data(), mul.data(), add.data(), NPU_ACT_RELU6, &o, nullptr, want.data(), C};
                        depthwise_epilogue_generic(x.data(), C, off.data(), 9, w.data(), C, count, e, acc.data());
                        e.q16 = got.data();
                        kernels_for(isa).depthwise_epilogue(x.data(), C, off.data(), 9, w.data(), C, count, e, acc.data(), 255);
                        assert_memory_equal(want.data(), got.data(), want.size() * 2);
                }
        // The definition on one hand-checked value: 255 * -128 + 1 * 127.
        const uint8_t x[2] = {255, 1};
        const int8_t w[2] = {-128, 127};
        const ptrdiff_t off[2] = {0, 1};
        int32_t a = 0;
        depthwise_rows_portable(x, 1, off, 2, w, 1, 1, &a);
        assert_int_equal(a, 255 * -128 + 127);
}

// 16-bit values as a tensor holds them (little-endian bytes) and as the
// two byte planes that the 16-bit kernels must agree with.
// (`shifted`: the values as the layers' copies hold them, x ^ 0x8000.)
struct U16Planes {
        std::vector<uint8_t> bytes, shifted, hi, lo;
        explicit U16Planes(const std::vector<uint16_t> &x)
            : bytes(2 * x.size()), shifted(2 * x.size()), hi(x.size()), lo(x.size())
        {
                for (size_t i = 0; i < x.size(); i++) {
                        const uint16_t s = x[i] ^ 0x8000;
                        std::memcpy(&bytes[2 * i], &x[i], 2);
                        std::memcpy(&shifted[2 * i], &s, 2);
                        hi[i] = uint8_t(x[i] >> 8);
                        lo[i] = uint8_t(x[i]);
                }
        }
};

// 16-bit depthwise rows read as u16 (depthwise16_epilogue of AVX2 and of
// AVX-512) against the two byte planes of the same values met in the wide
// epilogue: channel counts with whole last blocks of 16 or 32 (16, 32,
// 48), whole dwords (8, 24, 42) or an odd number (3, 7, 17, 21); up to 32
// taps; the extremes (every input 0 or 65535 against weights of -128 and
// 127, a zero point of 0 or 65535); folded and unfolded activations, u8
// and u16 outputs; the values as they are and shifted into int16 (as the
// layers' copies hold them).
static void check_depthwise16(Isa isa)
{
        const Kernels &k = kernels_for(isa);
        skip_without(isa);
        assert_non_null(k.depthwise16_epilogue);
        test::Rng rng{16};
        int cases = 0;
        for (size_t C : {size_t(3), size_t(7), size_t(8), size_t(16), size_t(17), size_t(21), size_t(24), size_t(32), size_t(42), size_t(48)})
                for (unsigned taps : {1u, 9u, 25u, 32u})
                        for (int fill : {-1, 0, 1})  // random, all 0, all 65535
                                for (size_t count : {size_t(1), size_t(6)}) {
                                        const size_t step = 2 * C;  // stride 2, in values
                                        std::vector<ptrdiff_t> off(taps), off16(taps);
                                        for (unsigned t = 0; t < taps; t++) {
                                                off[t] = ptrdiff_t((t % 5) * C + (t / 5) * 13 * C);
                                                off16[t] = 2 * off[t];
                                        }
                                        const size_t X = count * step + 4 * C + 6 * 13 * C + C;
                                        std::vector<uint16_t> x(X);
                                        for (auto &v : x)
                                                v = fill < 0 ? uint16_t(rng.below(65536)) : fill ? 65535 : 0;
                                        const U16Planes xp(x);
                                        const std::vector<uint8_t> &xb = xp.bytes, &hi = xp.hi, &lo = xp.lo;
                                        std::vector<int8_t> w(taps * C);
                                        fill_weights(rng, w, -128);
                                        if (fill >= 0)
                                                for (size_t i = 0; i < w.size(); i++)
                                                        w[i] = int8_t(i % 3 ? -128 : 127);
                                        const int32_t z = fill == 0 ? 65535 : fill == 1 ? 0 : int32_t(rng.below(65536));
                                        std::vector<int64_t> zw64(C), shift(C);
                                        for (size_t c = 0; c < C; c++) {
                                                int64_t sum = 0;
                                                for (unsigned t = 0; t < taps; t++)
                                                        sum += w[t * C + c];
                                                zw64[c] = int64_t(z) * sum;
                                                shift[c] = (32768 - int64_t(z)) * sum;
                                        }
                                        std::vector<int32_t> ah(count * C), al(count * C), acc(count * C);
                                        depthwise_rows_portable(hi.data(), step, off.data(), taps, w.data(), C, count, ah.data());
                                        depthwise_rows_portable(lo.data(), step, off.data(), taps, w.data(), C, count, al.data());
                                        Channels ch(rng, C, 0, 1e-8f, 1e-6f);
                                        for (uint8_t act : {NPU_ACT_RELU, NPU_ACT_NONE, NPU_ACT_HARDSWISH})
                                                for (unsigned bits : {8u, 16u}) {
                                                        std::vector<float> mul = ch.mul, add = ch.add;
                                                        const OutQuant o = out_quant(bwq::qparams(-2.0f, 3.0f, bits), act);
                                                        fold_channels(o, mul.data(), add.data(), C);
                                                        std::vector<uint16_t> want(count * C, 1), got16(count * C, 2);
                                                        std::vector<uint8_t> got8(count * C, 3);
                                                        epilogue_wide(ah.data(), al.data(), C, count, C, zw64.data(), mul.data(),
                                                                      add.data(), act, o, want.data(), C, {});
                                                        GemmEpilogue e{nullptr, mul.data(), add.data(), act, &o, nullptr, nullptr, C};
                                                        e.shift64 = shift.data();
                                                        if (bits == 8)
                                                                e.q8 = got8.data();
                                                        else
                                                                e.q16 = got16.data();
                                                        for (bool shifted : {false, true}) {
                                                                std::fill(got8.begin(), got8.end(), 3);
                                                                std::fill(got16.begin(), got16.end(), 2);
                                                                k.depthwise16_epilogue(shifted ? xp.shifted.data() : xb.data(), 2 * step,
                                                                                       off16.data(), taps, w.data(), C, count, e, acc.data(),
                                                                                       shifted);
                                                                if (bits == 8)
                                                                        for (size_t i = 0; i < got8.size(); i++)
                                                                                got16[i] = got8[i];
                                                                assert_memory_equal(want.data(), got16.data(), want.size() * 2);
                                                                cases++;
                                                        }
                                                }
                                }
        print_message("%s: %d 16-bit depthwise cases, the same outputs as two byte planes\n", k.name, cases);
}
static void depthwise16_avx2(void **) { check_depthwise16(Isa::Avx2); }
static void depthwise16_avx512(void **) { check_depthwise16(Isa::Avx512Vnni); }

static void depthwise_avx2(void **) { check_depthwise(Isa::Avx2); }
static void depthwise_avx512(void **) { check_depthwise(Isa::Avx512Vnni); }

// The kernel's packed outputs below 8 bits (GemmEpilogue::pack_bits)
// against the portable u8 outputs `want` (ldq) packed by bwq::pack_u8:
// rows N + 4 elements apart (or, `apart` false, back to back) from element
// 8 on, so each row starts mid-tensor, and the elements between the rows
// stay as they were (zero).
static void check_packed(Isa isa, const GemmA &a, size_t M, const std::vector<int8_t> &B, size_t K4, size_t N,
                         GemmEpilogue e, std::vector<int32_t> &C, const std::vector<uint8_t> &want, size_t ldq,
                         unsigned bits, bool apart = true)
{
        const size_t ldp = apart ? N + 4 : N, first = 8, total = first + M * ldp;
        std::vector<uint8_t> u(total, 0);
        for (size_t m = 0; m < M; m++)
                std::memcpy(&u[first + m * ldp], &want[m * ldq], N);
        // 32 bytes past the tensor, which stay as they were.
        std::vector<uint8_t> packed(bwq::packed_bytes(total, bits) + 32), got(packed.size(), 0);
        bwq::pack_u8(u.data(), bits, 0, total, packed.data());
        std::fill(packed.end() - 32, packed.end(), 0x5a);
        std::fill(got.end() - 32, got.end(), 0x5a);
        e.q8 = got.data();
        e.q16 = nullptr;
        e.ldq = ldp;
        e.pack_bits = uint8_t(bits);
        e.pack_first = first;
        kernels_for(isa).gemm_epilogue(a, M, B.data(), K4, N, e, C.data(), N);
        assert_memory_equal(packed.data(), got.data(), packed.size());
}

// GemmEpilogue::bounded (the upper bound applied to the narrowed bytes):
// the same bytes as the portable epilogue with the values as they are (a
// few past the upper bound), with 64 times their spread (most past it) and,
// where folded_bounded says no (values past 2^31, which would convert to
// INT32_MIN), with the flag cleared as the layer clears it; u8 outputs of
// 4, 6 and 8 bits (upper bounds 15, 63, 255, and RELU6's below them), and
// packed ones where the table packs.
static void check_bounded(Isa isa, const GemmA &a, size_t M, const std::vector<int8_t> &B, size_t K4, size_t N,
                          GemmEpilogue e, const std::vector<float> &fm, const std::vector<float> &fa, std::vector<int32_t> &C,
                          size_t ldq, unsigned bits)
{
        const double acc_max = double(K4) * 255 * 128 + 10000;
        for (float gain : {1.0f, 64.0f, 1e8f}) {
                std::vector<float> m(fm), ad(fa);
                for (size_t n = 0; n < N; n++)
                        if (n != N / 2) {  // the NaN channel stays
                                m[n] *= gain;
                                ad[n] *= gain;
                        }
                ad[N / 2] = 0.0f;
                const bool ok = folded_bounded(m.data(), ad.data(), N, acc_max);
                assert_true(ok == (gain < 1e3f));
                ad[N / 2] = fa[N / 2];
                e.mul = m.data();
                e.add = ad.data();
                e.bounded = ok;
                std::vector<uint8_t> want(M * ldq, 1), got(M * ldq, 1);
                e.q8 = want.data();
                gemm_epilogue_portable(a, M, B.data(), K4, N, e, C.data(), N);
                e.q8 = got.data();
                kernels_for(isa).gemm_epilogue(a, M, B.data(), K4, N, e, C.data(), N);
                assert_memory_equal(want.data(), got.data(), want.size());
                if (bits < 8 && (kernels_for(isa).gemm_packs >> bits & 1) && N * bits % 8 == 0)
                        check_packed(isa, a, M, B, K4, N, e, C, want, ldq, bits, ldq != N);
        }
}

// The GEMM with its epilogue fused (AVX-512 and AVX2 keep the tile in
// registers) against the portable GEMM and epilogue, for both output
// widths, activations of any byte and below 64, weights with and without
// -128, a NaN channel, and packed outputs where the table packs them.
static void check_gemm_epilogue(Isa isa)
{
        skip_without(isa);
        test::Rng rng{23};
        // M, K4, N, and the elements between output rows: 16 columns (a
        // whole last block: four rows a vector) with rows back to back and
        // apart, after a 32-column slice, in 1 to 3 row tiles.
        const size_t shapes[][4] = {{1, 8, 5, 3},   {7, 32, 17, 3}, {13, 64, 32, 3}, {50, 36, 70, 3}, {9, 20, 40, 3},
                                    {6, 16, 25, 3}, {11, 16, 16, 0}, {10, 24, 16, 3}, {21, 24, 48, 3}, {23, 8, 16, 0}};
        for (const auto &sh : shapes) {
                const size_t M = sh[0], K4 = sh[1], N = sh[2], N16 = (N + 15) / 16 * 16;
                for (int form = 0; form < 3; form++) {
                // any bytes; below 64; any bytes with a -128 weight
                const uint8_t amax = form == 1 ? 63 : 255;
                std::vector<uint8_t> A(M * K4);
                std::vector<int8_t> B(N16 * K4);
                for (auto &x : A)
                        x = uint8_t(rng.below(uint32_t(amax) + 1));
                fill_weights(rng, B, -127);
                if (form == 2)
                        B[rng.below(uint32_t(B.size()))] = -128;
                std::vector<int32_t> C(M * N);
                Channels ch(rng, N, 10000, 1e-5f, 1e-4f);
                std::vector<int32_t> &off = ch.off;
                std::vector<float> &mul = ch.mul, &add = ch.add;
                const ptrdiff_t zero = 0;
                const GemmA a{A.data(), K4, &zero, 1, K4 / 4, amax};
                std::vector<int64_t> sums(N);
                column_sums_portable(B.data(), K4, N, sums.data());
                std::vector<int32_t> s128(N);
                for (size_t n = 0; n < N; n++)
                        s128[n] = int32_t(uint32_t(sums[n]) * 128u);
                // A residual over all columns, all but the last 5, or none.
                std::vector<float> rv(M * (N + 1));
                for (auto &v : rv)
                        v = rng.uniform(-3.0f, 3.0f);
                for (unsigned bits : {4u, 6u, 8u, 16u})
                        for (uint8_t act : {NPU_ACT_NONE, NPU_ACT_RELU6, NPU_ACT_HARDSWISH})
                        for (size_t rc : {size_t(0), N, N > 5 ? N - 5 : N}) {
                                const OutQuant o = out_quant(bwq::qparams(-4.0f, 7.0f, bits), act);
                                std::vector<float> fm(mul), fa(add);
                                fold_channels(o, fm.data(), fa.data(), N);
                                // A NaN channel: every kernel clamps it to the lower bound
                                // as round_clamped does.
                                fa[N / 2] = std::nanf("");
                                const size_t ldq = N + sh[3];
                                // 64 values past the last row, which stay as they were.
                                std::vector<uint8_t> w8(M * ldq + 64, 1), g8(M * ldq + 64, 1);
                                std::vector<uint16_t> w16(M * ldq + 64, 1), g16(M * ldq + 64, 1);
                                GemmEpilogue e{off.data(), fm.data(), fa.data(), act, &o, nullptr, nullptr, ldq,
                                               rc ? Residual{rv.data(), N + 1, rc} : Residual{}};
                                // Without a -128 weight, also with the weight sums given
                                // (the kernel's own sums otherwise).
                                for (const int32_t *given : {static_cast<const int32_t *>(nullptr), static_cast<const int32_t *>(s128.data())}) {
                                        if (given && form == 2)
                                                continue;
                                        e.sums128 = given;
                                        if (bits <= 8) {
                                                e.q8 = w8.data();
                                                gemm_epilogue_portable(a, M, B.data(), K4, N, e, C.data(), N);
                                                e.q8 = g8.data();
                                                kernels_for(isa).gemm_epilogue(a, M, B.data(), K4, N, e, C.data(), N);
                                                assert_memory_equal(w8.data(), g8.data(), w8.size());
                                                e.q8 = nullptr;
                                        }
                                        if (bits <= 8 && o.folded && !given)
                                                check_bounded(isa, a, M, B, K4, N, e, fm, fa, C, ldq, bits);
                                        if (bits < 8 && o.folded && (kernels_for(isa).gemm_packs >> bits & 1) && N * bits % 8 == 0)
                                                check_packed(isa, a, M, B, K4, N, e, C, w8, ldq, bits, ldq != N);
                                        e.q16 = w16.data();
                                        gemm_epilogue_portable(a, M, B.data(), K4, N, e, C.data(), N);
                                        e.q16 = g16.data();
                                        kernels_for(isa).gemm_epilogue(a, M, B.data(), K4, N, e, C.data(), N);
                                        assert_memory_equal(w16.data(), g16.data(), w16.size() * 2);
                                        e.q16 = nullptr;
                                }
                        }
                }
        }
}

// 4-bit rows read packed (GemmA::nibbles, the weights in nibble_order)
// against the same values unpacked through the portable GEMM: the portable
// kernel's reading of them (the definition), then the table's GEMM and its
// fused epilogue with u8 and packed 4-bit outputs.  Rows of K / 2 bytes at
// an offset into the tensor (a tile's rows), the last of them ending the
// buffer; 1 to 8 rows and last slices of 8, 16 and 24 columns.
static void check_nibbles(Isa isa)
{
        const Kernels &k = kernels_for(isa);
        if (!isa_supported(isa) || !k.gemm_nibbles) {
                print_message("skipped: %s\n", isa_supported(isa) ? "this table unpacks 4-bit rows in a pass" : "this CPU lacks the table");
                skip();
        }
        test::Rng rng{31};
        const size_t shapes[][3] = {{1, 8, 5}, {7, 16, 17}, {13, 64, 32}, {9, 24, 40}, {20, 32, 64}, {8, 128, 8}};
        for (const auto &sh : shapes) {
                const size_t M = sh[0], K4 = sh[1], N = sh[2], N16 = (N + 15) / 16 * 16, first = 3;
                std::vector<uint8_t> A(M * K4), P(bwq::packed_bytes((first + M) * K4, 4));
                for (auto &x : A)
                        x = uint8_t(rng.below(16));
                A[0] = 15;
                bwq::pack_u8(A.data(), 4, first * K4, M * K4, P.data());
                std::vector<int8_t> B(N16 * K4), Bn(B.size());
                fill_weights(rng, B, -128);
                nibble_order(B.data(), K4, N16, Bn.data());
                const ptrdiff_t zero = 0;
                const GemmA a{A.data(), K4, &zero, 1, K4 / 4, 15};
                GemmA an{P.data() + first * K4 / 2, K4 / 2, &zero, 1, K4 / 4, 15};
                an.nibbles = true;
                std::vector<int32_t> want(M * N, -1), got(M * N, -2);
                gemm_u8s8_portable(a, M, B.data(), K4, N, 0, want.data(), N);
                gemm_u8s8_portable(an, M, Bn.data(), K4, N, 0, got.data(), N);
                assert_memory_equal(want.data(), got.data(), want.size() * 4);
                std::fill(got.begin(), got.end(), -2);
                k.gemm_u8s8(an, M, Bn.data(), K4, N, 0, got.data(), N);
                assert_memory_equal(want.data(), got.data(), want.size() * 4);

                Channels ch(rng, N, 1000, 1e-3f, 1e-2f);
                const OutQuant o = out_quant(bwq::qparams(-1.0f, 1.0f, 4), NPU_ACT_NONE);
                fold_channels(o, ch.mul.data(), ch.add.data(), N);
                std::vector<int32_t> C(M * N);
                std::vector<uint8_t> w8(M * N, 1), g8(M * N, 1);
                GemmEpilogue e{ch.off.data(), ch.mul.data(), ch.add.data(), NPU_ACT_NONE, &o, w8.data(), nullptr, N};
                gemm_epilogue_portable(a, M, B.data(), K4, N, e, C.data(), N);
                e.q8 = g8.data();
                k.gemm_epilogue(an, M, Bn.data(), K4, N, e, C.data(), N);
                assert_memory_equal(w8.data(), g8.data(), w8.size());
                if ((k.gemm_packs >> 4 & 1) && N % 2 == 0)
                        check_packed(isa, an, M, Bn, K4, N, e, C, w8, N, 4);
        }
}
static void nibbles_avx512(void **) { check_nibbles(Isa::Avx512Vnni); }

// Pairs of 4-bit elements looked up in a 256-entry table (lookup2x4_vbmi)
// against the table read element by element: starts 0, 2 and 70, 0 to 300
// elements (the 128-element loop, the masked tail, an odd last element
// whose byte's high nibble stays), every byte outside them as it was.
static void lookup2x4(void **)
{
        const Lookup2x4Fn f = lookup2x4_vbmi();
        if (!f) {
                print_message("skipped: this CPU lacks AVX-512 VBMI\n");
                skip();
        }
        test::Rng rng{53};
        uint8_t table[256];
        for (auto &v : table)
                v = uint8_t(rng.below(16));
        for (size_t first : {size_t(0), size_t(2), size_t(70)})
                for (size_t n = 0; n <= 300; n++) {
                        const size_t bytes = bwq::packed_bytes(first + n, 4);
                        std::vector<uint8_t> a(bytes), b(bytes), y(bytes), want;
                        for (size_t i = 0; i < bytes; i++)
                                a[i] = uint8_t(rng.below(256)), b[i] = uint8_t(rng.below(256)), y[i] = uint8_t(rng.below(256));
                        want = y;
                        for (size_t e = first; e < first + n; e++) {
                                const unsigned sh = 4 * (e & 1);
                                const uint8_t v = table[(a[e / 2] >> sh & 15) | (b[e / 2] >> sh & 15) << 4];
                                want[e / 2] = uint8_t((want[e / 2] & ~(15u << sh)) | v << sh);
                        }
                        f(a.data(), b.data(), first, n, table, y.data());
                        assert_memory_equal(want.data(), y.data(), bytes);
                }
}

// A 16-entry table looked up straight from packed 4-bit codes (`look`:
// map4_avx512 or lookup4_avx512) against bwq::unpack_u8 and the table:
// start parities 0-3, 0 to max_n elements, the tensor ending with the last
// element's byte, the values past n as they were (`fill`).
template <typename T, typename Look>
static void check_codes4(test::Rng &rng, Look look, const T (&table)[16], size_t max_n, T fill)
{
        for (size_t first = 0; first < 4; first++)
                for (size_t n = 0; n <= max_n; n++) {
                        std::vector<uint8_t> packed(bwq::packed_bytes(first + n, 4)), u(n + 1);
                        for (auto &b : packed)
                                b = uint8_t(rng.below(256));
                        bwq::unpack_u8(packed.data(), 4, first, n, u.data());
                        std::vector<T> want(n + 8, fill), got(n + 8, fill);
                        for (size_t i = 0; i < n; i++)
                                want[i] = table[u[i]];
                        look(packed.data(), first, n, table, got.data());
                        assert_memory_equal(want.data(), got.data(), want.size() * sizeof(T));
                }
}

// 4-bit codes mapped to bytes (map4_avx512): up to 200 elements, so the
// 64-wide loop, the masked tail and both.
static void map4(void **)
{
        skip_without(Isa::Avx512Vnni);
        test::Rng rng{59};
        uint8_t map[16];
        for (auto &v : map)
                v = uint8_t(rng.below(256));
        check_codes4(rng, map4_avx512, map, 200, uint8_t(0xa5));
}

// 4-bit codes looked up as floats (lookup4_avx512): up to 100 elements, so
// the 32-wide loop, the 16-wide masked tail and both.
static void lookup4(void **)
{
        skip_without(Isa::Avx512Vnni);
        test::Rng rng{47};
        float lut[16];
        for (auto &v : lut)
                v = rng.uniform(-3.0f, 3.0f);
        check_codes4(rng, lookup4_avx512, lut, 100, -7.0f);
}

// The 16-bit GEMM reading u16 values (gemm16_epilogue of AVX2 and of
// AVX-512) against the two byte planes of the same values through the
// portable GEMM, met in the wide epilogue: K within the int32 sum (256
// values) and past it (chunks of 508 values, added in doubles), 5 to 136
// columns (the last more int16 weights than a thread keeps; 17, 33 and 40
// leave a second 16-column slice of 1, 1 and 8 in a 32-column tile), row
// counts that leave each tail of the row tiles (3- and 4-row tiles on
// AVX2, 8-row on AVX-512), a tap run split across the input (near: the
// values shifted in a copy; far apart: in the loop), weights laid out per
// call and once per stamp, the values as they are and shifted into int16;
// random values, values near the zero point (where an error of one in a
// sum shows in the outputs) and the extremes (every input 0 against
// weights of -128 with zero point 65535, every input 65535 against 127
// with zero point 0: a chunk of 512 values would overflow int32, and so
// would a whole sum of 264); folded and unfolded activations with and
// without a residual; u8 and u16 outputs.
static void check_gemm16(Isa isa)
{
        const Kernels &k = kernels_for(isa);
        skip_without(isa);
        assert_non_null(k.gemm16_epilogue);
        test::Rng rng{1616};
        int cases = 0;
        uint64_t stamp = 0;
        const size_t shapes[][3] = {{1, 8, 5},     {7, 256, 17},  {6, 264, 40},  {3, 1028, 5},
                                    {2, 2048, 136}, {13, 64, 48}, {9, 304, 33}, {17, 16, 32}};  // M, K4, N
        for (const auto &sh : shapes)
                for (int fill : {-1, 0, 1, 2})  // random, all 0, all 65535, near z
                        for (unsigned spread : {0u, 3u, 64u}) {
                                // Row m's run t at m * lda + t * spread * K4 / taps values:
                                // rows overlap, runs lie apart (far apart at 64: the kernel
                                // shifts the values in its loop, not in a copy of the span).
                                const unsigned taps = spread ? 2 : 1;
                                const size_t M = sh[0], K4 = sh[1], N = sh[2], N16 = (N + 15) / 16 * 16;
                                if (K4 % (4 * taps) || (K4 > 1100 && fill >= 0))
                                        continue;
                                const size_t run = K4 / taps, lda = K4 + 12, X = M * lda + taps * spread * run;
                                std::vector<ptrdiff_t> off(taps), off16(taps);
                                for (unsigned t = 0; t < taps; t++) {
                                        off[t] = ptrdiff_t(t * spread * run);
                                        off16[t] = 2 * off[t];
                                }
                                std::vector<uint16_t> x(X);
                                const int64_t z = fill == 0 ? 65535 : fill == 1 ? 0 : int64_t(rng.below(65536 - 600)) + 300;
                                for (auto &v : x)
                                        v = fill < 0    ? uint16_t(rng.below(65536))
                                            : fill == 2 ? uint16_t(z - 300 + int64_t(rng.below(601)))
                                            : fill      ? 65535
                                                        : 0;
                                const U16Planes xp(x);
                                const std::vector<uint8_t> &xb = xp.bytes, &hi = xp.hi, &lo = xp.lo;
                                std::vector<int8_t> B(N16 * K4);
                                fill_weights(rng, B, -128);
                                // The largest sums: 0 - 65535 times -128, 65535 - 0 times 127.
                                if (fill == 0 || fill == 1)
                                        std::fill(B.begin(), B.end(), int8_t(fill ? 127 : -128));
                                std::vector<int64_t> wsum(N), zw(N), shift(N);
                                column_sums_portable(B.data(), K4, N, wsum.data());
                                for (size_t n = 0; n < N; n++) {
                                        zw[n] = z * wsum[n];
                                        shift[n] = (32768 - z) * wsum[n];
                                }
                                std::vector<int32_t> ch(M * N), cl(M * N);
                                gemm_u8s8_portable(GemmA{hi.data(), lda, off.data(), taps, run / 4}, M, B.data(), K4, N, 0, ch.data(), N);
                                gemm_u8s8_portable(GemmA{lo.data(), lda, off.data(), taps, run / 4}, M, B.data(), K4, N, 0, cl.data(), N);
                                const GemmA a16{xb.data(), 2 * lda, off16.data(), taps, run / 4};
                                GemmA s16{xp.shifted.data(), 2 * lda, off16.data(), taps, run / 4};
                                s16.shifted = true;
                                Channels chs(rng, N, 0, fill == 2 ? 1e-4f : 1e-9f, fill == 2 ? 1e-3f : 1e-7f);
                                std::vector<float> rv(M * N);
                                for (auto &v : rv)
                                        v = rng.uniform(-3.0f, 3.0f);
                                std::vector<int64_t> C64(M * N);
                                for (uint8_t act : {NPU_ACT_RELU, NPU_ACT_NONE, NPU_ACT_HARDSWISH})
                                        for (bool res : {false, true})
                                                for (unsigned bits : {8u, 16u}) {
                                                        const OutQuant o = out_quant(bwq::qparams(-4.0f, 7.0f, bits), act);
                                                        if (bits == 8 && !o.folded)
                                                                continue;  // u8 outputs only folded
                                                        std::vector<float> mul = chs.mul, add = chs.add;
                                                        fold_channels(o, mul.data(), add.data(), N);
                                                        const Residual R = res ? Residual{rv.data(), N, N} : Residual{};
                                                        const size_t ldq = N + 3;
                                                        std::vector<uint16_t> want(M * ldq, 1), got16(M * ldq, 1);
                                                        std::vector<uint8_t> got8(M * ldq, 1);
                                                        epilogue_wide(ch.data(), cl.data(), N, M, N, zw.data(), mul.data(), add.data(),
                                                                      act, o, want.data(), ldq, R);
                                                        GemmEpilogue e{nullptr, mul.data(), add.data(), act, &o, nullptr, nullptr, ldq, R};
                                                        e.shift64 = shift.data();
                                                        if (bits == 8)
                                                                e.q8 = got8.data();
                                                        else
                                                                e.q16 = got16.data();
                                                        // Weights laid out per call, and once per stamp
                                                        // (a fresh one: the same B pointer held other
                                                        // weights in the case before).
                                                        // Runs: the values as they are with no stamp and
                                                        // with a fresh one, then shifted.
                                                        for (int run = 0; run < 3; run++) {
                                                                e.stamp = run == 1 ? ++stamp : 0;
                                                                std::fill(got8.begin(), got8.end(), 1);
                                                                std::fill(got16.begin(), got16.end(), 1);
                                                                k.gemm16_epilogue(run == 2 ? s16 : a16, M, B.data(), K4, N, e, C64.data(), N);
                                                                if (bits == 8)
                                                                        for (size_t i = 0; i < got8.size(); i++)
                                                                                got16[i] = got8[i];
                                                                assert_memory_equal(want.data(), got16.data(), want.size() * 2);
                                                                cases++;
                                                        }
                                                }
                        }
        print_message("%s: %d 16-bit GEMM cases, the same outputs as two byte planes\n", k.name, cases);
}
static void gemm16_avx2(void **) { check_gemm16(Isa::Avx2); }
static void gemm16_avx512(void **) { check_gemm16(Isa::Avx512Vnni); }

static void gemm_epilogue_avx2(void **) { check_gemm_epilogue(Isa::Avx2); }
static void gemm_epilogue_avx512(void **) { check_gemm_epilogue(Isa::Avx512Vnni); }

// The compute pool: every index of every batch runs exactly once, with
// batches back to back, batches of 0 and 1 items, items of uneven length
// (the others' shares taken from the back), workers that fell asleep
// between batches (late joiners), 2 and 3 threads, pinned or not.
static std::atomic<int> spin_sink;

static void thread_pool(void **)
{
        for (int config = 0; config < 4; config++) {
                const unsigned threads = config < 2 ? 3 : 2;
                const bool pinned = config % 2;
                ThreadPool pool(threads, pinned ? std::vector<int>(threads, 0) : std::vector<int>{});
                std::vector<std::atomic<int>> hits(64);
                for (int batch = 0; batch < 3000; batch++) {
                        if (batch % 500 == 499)
                                usleep(3000);  // past the workers' spin: they sleep
                        const size_t n = size_t(batch * 7 % 65);
                        for (auto &h : hits)
                                h.store(0);
                        pool.parallel_for(n, [&](size_t i) {
                                if (i % 13 == 0)  // a longer item: the others finish first
                                        for (int k = 0; k < 2000; k++)
                                                spin_sink.store(k, std::memory_order_relaxed);
                                hits[i].fetch_add(1);
                        });
                        for (size_t i = 0; i < hits.size(); i++)
                                if (hits[i].load() != (i < n ? 1 : 0)) {
                                        print_error("batch %d (n %zu): index %zu ran %d times\n", batch, n, i, hits[i].load());
                                        fail();
                                }
                }
                print_message("thread pool (%u threads, %s): 3000 batches of 0 to 64 items, each index once\n", threads,
                              pinned ? "pinned to one CPU" : "unpinned");
        }
}

// Weight sums per output channel, AVX-512 against portable: channel tails,
// K blocks in and out of the four-chain loop's steps, and more K blocks
// than one int32 piece holds.  Both say whether a byte is -128: none, or
// one at the first byte, the last, in a tail K block, in a padding column.
static void column_sums(void **)
{
        skip_without(Isa::Avx512Vnni);
        test::Rng rng{31};
        const size_t shapes[][2] = {{4, 5}, {400, 17}, {36, 33}, {4 * 65540, 16}, {28, 48}, {20, 16}};
        for (const auto &sh : shapes) {
                const size_t K4 = sh[0], N = sh[1], N16 = (N + 15) / 16 * 16;
                std::vector<int8_t> B(N16 * K4);
                // -127..127, then one -128 where `at` says (none for -1).
                fill_weights(rng, B, -127);
                const size_t tail = (K4 / 4 - 1) * 64, pad = N % 16 ? 4 * (N % 16) : 0;
                for (long at : {-1L, 0L, long(B.size()) - 1, long(tail + 5), long(pad)}) {
                        std::vector<int8_t> Bm = B;
                        if (at >= 0)
                                Bm[size_t(at)] = -128;
                        std::vector<int64_t> want(N + 1, 7), got(N + 1, 7);
                        const bool want_m = column_sums_portable(Bm.data(), K4, N, want.data());
                        const bool got_m = kernels_for(Isa::Avx512Vnni).column_sums(Bm.data(), K4, N, got.data());
                        assert_memory_equal(want.data(), got.data(), want.size() * 8);
                        assert_int_equal(got[N], 7);  // nothing past N
                        assert_int_equal(want_m, at >= 0);
                        assert_int_equal(got_m, at >= 0);
                }
        }
        // The definition: channel 1 of K4 = 8 with weights 1..8 -> 36.
        std::vector<int8_t> B(16 * 8, 0);
        for (int k = 0; k < 8; k++)
                B[(k / 4) * 64 + 1 * 4 + k % 4] = int8_t(k + 1);
        int64_t sums[2];
        column_sums_portable(B.data(), 8, 2, sums);
        assert_int_equal(sums[0], 0);
        assert_int_equal(sums[1], 36);
}

// (The AVX2 and portable tables use the generic epilogue itself.)
static void epilogues(void **)
{
        skip_without(Isa::Avx512Vnni);
        check_epilogue(Isa::Avx512Vnni);
}

static void avx2(void **) { check_isa(Isa::Avx2); }
static void avx512vnni(void **) { check_isa(Isa::Avx512Vnni); }

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(portable_definition),
                cmocka_unit_test(avx2),
                cmocka_unit_test(avx512vnni),
                cmocka_unit_test(epilogues),
                cmocka_unit_test(column_sums),
                cmocka_unit_test(thread_pool),
                cmocka_unit_test(gemm_epilogue_avx2),
                cmocka_unit_test(gemm_epilogue_avx512),
                cmocka_unit_test(depthwise_avx2),
                cmocka_unit_test(depthwise_avx512),
                cmocka_unit_test(depthwise16_avx2),
                cmocka_unit_test(depthwise16_avx512),
                cmocka_unit_test(gemm16_avx2),
                cmocka_unit_test(gemm16_avx512),
                cmocka_unit_test(nibbles_avx512),
                cmocka_unit_test(lookup4),
                cmocka_unit_test(lookup2x4),
                cmocka_unit_test(map4),
        };
        return cmocka_run_group_tests_name("kernels", tests, nullptr, nullptr);
}
