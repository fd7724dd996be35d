// Quantization and packing (DESIGN §5.3).
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "common/quant.h"
#include "test_util.h"

using namespace bwq;

// ONNX DynamicQuantizeLinear's own example: x = [0, 2, -3, -2.5, 1.34, 0.5]
// gives scale 0.019607844, zero point 153, y = [153, 255, 0, 26, 221, 179].
static void dynamic_quantize_linear_example(void **)
{
        const float x[] = {0.0f, 2.0f, -3.0f, -2.5f, 1.34f, 0.5f};
        QParams p = qparams(-3.0f, 2.0f, 8);
        assert_int_equal(p.zero, 153);
        assert_true(std::fabs(p.scale - 0.019607844f) < 1e-9f);
        const uint32_t want[] = {153, 255, 0, 26, 221, 179};
        for (int i = 0; i < 6; i++)
                assert_int_equal(quantize_one(x[i], p), want[i]);
}

static void packed_sizes(void **)
{
        assert_int_equal(packed_bytes(1, 4), 1);
        assert_int_equal(packed_bytes(3, 4), 2);
        assert_int_equal(packed_bytes(5, 6), 4);  // 30 bits
        assert_int_equal(packed_bytes(4, 6), 3);
        assert_int_equal(packed_bytes(7, 8), 7);
        assert_int_equal(packed_bytes(7, 16), 14);
}

// Every depth: values survive pack/unpack at odd offsets and lengths, and
// the layout is the documented one.
static void pack_roundtrip(void **)
{
        test::Rng rng{7};
        for (unsigned bits : {4u, 6u, 8u, 16u}) {
                const size_t n = 1001;
                std::vector<uint16_t> v(n), back(n);
                for (auto &x : v)
                        x = uint16_t(rng.next() & ((1u << bits) - 1));
                std::vector<uint8_t> buf(packed_bytes(n, bits) + 8, 0xa5);
                pack(v.data(), bits, 0, n, buf.data());
                unpack_u16(buf.data(), bits, 0, n, back.data());
                assert_memory_equal(v.data(), back.data(), n * 2);
                for (size_t first : {1ul, 3ul, 5ul, 998ul}) {
                        size_t cnt = n - first;
                        std::vector<uint16_t> part(cnt);
                        unpack_u16(buf.data(), bits, first, cnt, part.data());
                        assert_memory_equal(part.data(), v.data() + first, cnt * 2);
                        if (bits <= 8) {
                                std::vector<uint8_t> p8(cnt);
                                unpack_u8(buf.data(), bits, first, cnt, p8.data());
                                for (size_t i = 0; i < cnt; i++)
                                        assert_int_equal(p8[i], v[first + i]);
                        }
                }
                // Bytes past the tensor are untouched (a partial last 6-bit
                // group owns only the bytes its elements occupy).
                for (size_t k = packed_bytes(n, bits); k < buf.size(); k++)
                        assert_int_equal(buf[k], 0xa5);
        }
        // Layout: 4-bit even element in the low nibble; 6-bit 24-bit LE words.
        uint16_t v4[2] = {0x3, 0xc};
        uint8_t b4 = 0;
        pack(v4, 4, 0, 2, &b4);
        assert_int_equal(b4, 0xc3);
        uint16_t v6[4] = {1, 2, 3, 63};
        uint8_t b6[3] = {0, 0, 0};
        pack(v6, 6, 0, 4, b6);
        uint32_t w = b6[0] | b6[1] << 8 | b6[2] << 16;
        assert_int_equal(w, 1u | 2u << 6 | 3u << 12 | 63u << 18);
}

// pack_u8 (the device's tile packer, from bytes) writes the same bytes as
// pack at 4, 6 and 8 bits: whole vector blocks (64 values) and partial
// ones, tiles starting on a group boundary, and a head and tail that share
// bytes with their neighbours, which keep their values.
static void pack_u8_matches_pack(void **)
{
        test::Rng rng{11};
        for (unsigned bits : {4u, 6u, 8u}) {
                const size_t n = 3 * 1024 + 77;
                std::vector<uint16_t> v(n);
                std::vector<uint8_t> v8(n);
                for (size_t i = 0; i < n; i++)
                        v8[i] = uint8_t(v[i] = uint16_t(rng.next() & ((1u << bits) - 1)));
                std::vector<uint8_t> a(packed_bytes(n, bits) + 8, 0xa5), b = a;
                // Tiles of 288 values (a whole number of groups), then a tail.
                for (size_t first = 0; first < n; first += 288) {
                        const size_t cnt = std::min<size_t>(288, n - first);
                        pack(v.data() + first, bits, first, cnt, a.data());
                        pack_u8(v8.data() + first, bits, first, cnt, b.data());
                }
                assert_memory_equal(a.data(), b.data(), a.size());
                // Odd starts and lengths over the packed tensor: the values
                // outside [first, first + cnt) stay as they were.
                for (size_t first : {1ul, 3ul, 6ul, 130ul}) {
                        const size_t cnt = 2 * 64 + 5;
                        std::vector<uint8_t> z(cnt, 0);
                        std::vector<uint8_t> c = b;
                        pack_u8(z.data(), bits, first, cnt, c.data());
                        std::vector<uint8_t> back(n);
                        unpack_u8(c.data(), bits, 0, n, back.data());
                        for (size_t i = 0; i < n; i++)
                                assert_int_equal(back[i], i >= first && i < first + cnt ? 0 : v8[i]);
                }
        }
}

// The vectorised host path equals the scalar definition, at every depth,
// with whole and partial vector blocks (the 6-bit AVX-512 VBMI packer takes
// 16 groups at a time, the rest goes the generic way).
// Two threads packing neighbouring ranges of one tensor whose boundary
// falls inside a packing group (a depthwise layer's output rows of odd
// channels, say): each writes only its own elements' bits of the bytes
// they share.  Both start together on every round and write their ranges
// 16 times over; a read-modify-write that is not atomic loses the other's
// bits now and then, which the check after each round sees.
static void pack_neighbours_concurrently(void **)
{
        for (unsigned bits : {4u, 6u}) {
                // Elements [0, 9) and [9, 16): at 6 bits element 8 is bits
                // 48-53, element 9 bits 54-59 (byte 6 shared); at 4 bits
                // elements 8 and 9 share byte 4.
                const size_t split = 9, total = 16;
                uint8_t buf[16];
                uint8_t a[total], b[total];
                std::atomic<int> go{0}, done{0};
                const int rounds = 20000;
                size_t lost = 0;
                std::thread other([&] {
                        for (int r = 1; r <= rounds; r++) {
                                while (go.load(std::memory_order_acquire) < r)
                                        ;
                                for (int k = 0; k < 16; k++)
                                        pack_u8(b + split, bits, split, total - split, buf);
                                done.fetch_add(1, std::memory_order_acq_rel);
                        }
                });
                for (int r = 1; r <= rounds; r++) {
                        // New values every round, and the buffer's old bytes
                        // the complement of the new ones.
                        for (size_t i = 0; i < total; i++)
                                a[i] = b[i] = uint8_t((i * 7 + r) & ((1u << bits) - 1));
                        uint8_t neg[total];
                        for (size_t i = 0; i < total; i++)
                                neg[i] = uint8_t(~a[i] & ((1u << bits) - 1));
                        pack_u8(neg, bits, 0, total, buf);
                        go.store(r, std::memory_order_release);
                        for (int k = 0; k < 16; k++)
                                pack_u8(a, bits, 0, split, buf);
                        while (done.load(std::memory_order_acquire) < r)
                                ;
                        uint8_t back[total];
                        unpack_u8(buf, bits, 0, total, back);
                        lost += std::memcmp(back, a, total) != 0;
                }
                other.join();
                if (lost)
                        print_error("%u bits: %zu of %d rounds lost a neighbour's bits\n", bits, lost, rounds);
                assert_int_equal(lost, 0);
        }
}

static void quantize_pack_matches_scalar(void **)
{
        test::Rng rng{11};
        for (size_t n : {size_t(4099), size_t(2148), size_t(61)}) {
                std::vector<float> x(n);
                for (auto &v : x)
                        v = rng.uniform(-4.0f, 3.0f);
                x[5] = NAN;
                x[6] = INFINITY;
                x[7] = -INFINITY;
                for (unsigned bits : {4u, 6u, 8u, 16u}) {
                        QParams p = qparams(-3.0f, 2.5f, bits);
                        std::vector<uint8_t> buf(packed_bytes(n, bits) + 1, 0x5a);
                        quantize_pack(x.data(), n, p, bits, buf.data());
                        assert_int_equal(buf.back(), 0x5a);  // nothing past the tensor
                        std::vector<uint16_t> q(n);
                        unpack_u16(buf.data(), bits, 0, n, q.data());
                        for (size_t i = 0; i < n; i++)
                                assert_int_equal(q[i], quantize_one(x[i], p));
                        assert_int_equal(q[5], 0);        // NaN
                        assert_int_equal(q[6], p.qmax);   // +inf saturates
                        assert_int_equal(q[7], 0);        // -inf saturates
                }
        }
}

// 16 bits past 8 MB of output go out through non-temporal stores from a
// 64-byte boundary on: every element still lands where it belongs, from
// destinations at every alignment the head copy has to handle, and nothing
// past the tensor is written.
static void quantize_pack_streamed(void **)
{
        test::Rng rng{12};
        const size_t n = (size_t(8) << 20) / 2 + 1027;
        std::vector<float> x(n);
        for (auto &v : x)
                v = rng.uniform(-4.0f, 3.0f);
        const QParams p = qparams(-3.0f, 2.5f, 16);
        std::vector<uint8_t> buf(2 * n + 128);
        for (size_t off : {size_t(0), size_t(2), size_t(62)}) {
                uint8_t *base = buf.data() + ((64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64);
                std::fill(buf.begin(), buf.end(), 0x5a);
                quantize_pack(x.data(), n, p, 16, base + off);
                for (size_t i = 0; i < n; i++) {
                        uint16_t q;
                        std::memcpy(&q, base + off + 2 * i, 2);
                        if (q != quantize_one(x[i], p))
                                fail_msg("offset %zu: element %zu is %u, not %u", off, i, q, quantize_one(x[i], p));
                }
                assert_int_equal(base[off + 2 * n], 0x5a);
        }
}

// Quantization error is at most half a step inside the range.
static void quantize_error_bound(void **)
{
        test::Rng rng{3};
        for (unsigned bits : {4u, 6u, 8u, 16u}) {
                QParams p = qparams(-2.0f, 5.0f, bits);
                for (int i = 0; i < 10000; i++) {
                        float x = rng.uniform(-2.0f, 5.0f);
                        float e = std::fabs(dequantize_one(quantize_one(x, p), p) - x);
                        assert_true(e <= p.scale * 0.5f * 1.0001f + 1e-6f);
                }
                // Zero is exact: padding contributes a real zero.
                assert_true(dequantize_one(quantize_one(0.0f, p), p) == 0.0f);
        }
}

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(dynamic_quantize_linear_example), cmocka_unit_test(packed_sizes),
                cmocka_unit_test(pack_roundtrip), cmocka_unit_test(pack_u8_matches_pack), cmocka_unit_test(pack_neighbours_concurrently), cmocka_unit_test(quantize_pack_matches_scalar),
                cmocka_unit_test(quantize_pack_streamed),
                cmocka_unit_test(quantize_error_bound),
        };
        return cmocka_run_group_tests_name("quant", tests, nullptr, nullptr);
}
