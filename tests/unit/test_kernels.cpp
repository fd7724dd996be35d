// GEMM kernels: every instruction set against the portable one, bit for bit.
#include "kernels.h"
#include "test_util.h"

using namespace npuref;

static void check_isa(Isa isa)
{
        if (!isa_supported(isa)) {
                print_message("skipped: this CPU lacks %s\n", kernels_for(isa).name);
                skip();
        }
        test::Rng rng{uint64_t(isa) + 1};
        const size_t shapes[][3] = {{1, 4, 1}, {7, 12, 17}, {13, 64, 32}, {6, 100, 33}, {49, 148, 96}, {3, 1028, 5}};
        for (const auto &s : shapes) {
                size_t M = s[0], K4 = s[1], N = s[2], N16 = (N + 15) / 16 * 16;
                std::vector<uint8_t> A(M * K4);
                std::vector<int8_t> B(N16 * K4);
                for (auto &a : A)
                        a = uint8_t(rng.next());
                for (auto &b : B)
                        b = int8_t(int(rng.below(255)) - 127);
                std::vector<int32_t> want(M * N, -1), got(M * N, -2);
                gemm_u8s8_portable(A.data(), K4, M, B.data(), K4, N, 0, K4 / 4, want.data(), N);
                kernels_for(isa).gemm_u8s8(A.data(), K4, M, B.data(), K4, N, 0, K4 / 4, got.data(), N);
                assert_memory_equal(want.data(), got.data(), want.size() * 4);
                // A K sub-range, as the int32 split of long rows uses.
                if (K4 >= 8) {
                        gemm_u8s8_portable(A.data(), K4, M, B.data(), K4, N, 1, K4 / 4 - 1, want.data(), N);
                        kernels_for(isa).gemm_u8s8(A.data(), K4, M, B.data(), K4, N, 1, K4 / 4 - 1, got.data(), N);
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
        gemm_u8s8_portable(A, 4, 1, B, 4, 2, 0, 1, C, 2);
        assert_int_equal(C[0], -2);
        assert_int_equal(C[1], 1270);
}

static void avx2(void **) { check_isa(Isa::Avx2); }
static void avx512vnni(void **) { check_isa(Isa::Avx512Vnni); }

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(portable_definition),
                cmocka_unit_test(avx2),
                cmocka_unit_test(avx512vnni),
        };
        return cmocka_run_group_tests_name("kernels", tests, nullptr, nullptr);
}
