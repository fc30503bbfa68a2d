// Every optimized GEMM configuration against a scalar evaluation of its contract, over generated
// edge cases: K below / at / above the pair and block sizes, partial row (MR) and column (NR)
// tiles, zero points at the clamp limits, multipliers on the vector and the scalar output path.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "quant/requantize.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/gemm_config.h"
#include "test_models.h"

using namespace lowbit::runtime;
using namespace lowbit;

namespace {

// extremes: x = 255 and the most negative weight everywhere (saturation / wrap-around limits);
// by default every fourth seed.
// pool > 1: fused max pooling (GemmOutput::pool_rows): output row m holds
// requantize(max over rows pool * m .. pool * m + pool - 1 of C).
// shift_limits: columns cycle through the multiplier / shift pairs at the ends of the range that
// quant::requantize accepts (shift 0, 1, 62), which vector output stages must handle or hand to
// their scalar path.
void check_config(const GemmConfig& cfg, int64_t M, int32_t N, int32_t K, bool int32_out, uint32_t seed,
                  bool extremes = false, int32_t pool = 1, bool shift_limits = false) {
  std::mt19937 rng(seed);
  const int32_t Kp = (K + cfg.k_align - 1) / cfg.k_align * cfg.k_align;
  const int64_t lda = Kp + cfg.k_align * (seed % 3);  // row stride larger than Kp too
  const int32_t zx = std::uniform_int_distribution<int>(0, 2)(rng) == 0 ? 255 : std::uniform_int_distribution<int>(0, 255)(rng);
  std::vector<uint8_t> x(static_cast<size_t>(M * K));
  for (auto& v : x) v = static_cast<uint8_t>(std::uniform_int_distribution<int>(0, 255)(rng));
  std::vector<int16_t> A16(static_cast<size_t>(M * lda), 0);
  std::vector<uint8_t> A8(static_cast<size_t>(M * lda), 0);
  for (int64_t m = 0; m < M; ++m) {
    if (cfg.input == GemmInput::S16) {
      cfg.widen(x.data() + m * K, K, zx, A16.data() + m * lda);
    } else {
      std::copy(x.begin() + m * K, x.begin() + (m + 1) * K, A8.begin() + m * lda);
    }
  }
  const void* A = cfg.input == GemmInput::S16 ? static_cast<const void*>(A16.data()) : A8.data();
  std::vector<int32_t> w(static_cast<size_t>(N) * K), bias(N), mult(N), shift(N);
  // pair_bounded (vpmaddubsw on int8) configs are exact only where gemm_weights_fit_pairs holds:
  // with 8-bit activations that is 7-bit-range weights, |w| <= 64 (255 * 128 = 32640 <= 32767)
  const int32_t wbits = cfg.pair_bounded ? 7 : cfg.bits;
  for (auto& v : w) v = rtest::random_weight(rng, {wbits, cfg.grid});
  if (cfg.pair_bounded) {
    for (auto& v : w) v = v == -64 ? 64 : v;  // both extremes of the proven range
    EXPECT_TRUE(gemm_weights_fit_pairs(w.data(), N, K, 255));
  }
  if (extremes || seed % 4 == 0) {
    std::fill(x.begin(), x.end(), uint8_t{255});
    const int32_t lo = -(1 << (wbits - 1));
    std::fill(w.begin(), w.end(), cfg.grid == lowbit::quant::Grid::Odd ? 2 * lo + 1 : lo);
    for (int64_t m = 0; m < M; ++m) {
      if (cfg.input == GemmInput::S16) cfg.widen(x.data() + m * K, K, zx, A16.data() + m * lda);
      else std::copy(x.begin() + m * K, x.begin() + (m + 1) * K, A8.begin() + m * lda);
    }
  }
  for (int32_t n = 0; n < N; ++n) {
    bias[n] = std::uniform_int_distribution<int32_t>(-100000, 100000)(rng);
    // mostly the vector path (m < 1); some m >= 1, tiny and zero multipliers for the scalar path
    const int sel = std::uniform_int_distribution<int>(0, 9)(rng);
    double real = std::exp2(std::uniform_real_distribution<double>(-14, -4)(rng));
    if (sel == 0) real = std::exp2(std::uniform_real_distribution<double>(0, 3)(rng));
    if (sel == 1) real = std::ldexp(1.0, -40);
    if (sel >= 7) real = std::ldexp(1.0, -std::uniform_int_distribution<int>(1, 8)(rng));  // exact halves: ties
    const auto fm = quant::make_fixed_point_multiplier(real);
    mult[n] = sel == 2 ? 0 : fm.multiplier;
    shift[n] = sel == 2 ? 0 : fm.shift;
  }
  if (shift_limits) {
    const quant::FixedPointMultiplier limits[] = {{1, 0}, {1, 1}, {2147483647, 62}, {1 << 30, 32}, {1 << 30, 0}};
    for (int32_t n = 0; n < N; ++n) {
      bias[n] %= 200;  // small accumulators occur (short K), so that not every output clamps
      mult[n] = limits[n % 5].multiplier;
      shift[n] = limits[n % 5].shift;
    }
  }
  const std::vector<uint8_t> packed = cfg.pack(w.data(), N, K);
  const int32_t zy = std::uniform_int_distribution<int>(0, 2)(rng) == 0 ? 0 : std::uniform_int_distribution<int>(0, 255)(rng);
  const int32_t qmin = std::uniform_int_distribution<int>(0, 1)(rng) ? zy : 0;
  const int32_t qmax = std::uniform_int_distribution<int>(0, 1)(rng) ? 255 : std::max(qmin, 15);
  const std::vector<int32_t> kernel_bias =
      cfg.input == GemmInput::U8 ? fold_zero_point(bias.data(), w.data(), N, K, zx) : bias;
  GemmOutput out;
  out.bias = kernel_bias.data();
  out.multiplier = mult.data();
  out.shift = shift.data();
  out.zero_point = zy;
  out.qmin = qmin;
  out.qmax = qmax;
  const int64_t ldy = N + 3;
  out.ldy = ldy;
  std::vector<uint8_t> y8(static_cast<size_t>(M * ldy), 0xAB);
  std::vector<int32_t> y32(static_cast<size_t>(M * ldy), 0x5A5A5A5A);
  if (int32_out) out.y_i32 = y32.data(); else out.y_u8 = y8.data();
  out.pool_rows = pool;
  cfg.gemm(M, N, K, A, lda, packed.data(), out);
  for (int64_t m = 0; m < M / pool; ++m) {
    for (int32_t n = 0; n < N; ++n) {
      int32_t a = 0;
      for (int64_t mm = m * pool; mm < (m + 1) * pool; ++mm) {
        uint32_t acc = static_cast<uint32_t>(bias[n]);
        for (int32_t k = 0; k < K; ++k) acc += static_cast<uint32_t>((x[mm * K + k] - zx) * w[static_cast<size_t>(n) * K + k]);
        a = mm == m * pool ? static_cast<int32_t>(acc) : std::max(a, static_cast<int32_t>(acc));
      }
      if (int32_out) {
        ASSERT_EQ(y32[m * ldy + n], a) << cfg.name << " M=" << M << " N=" << N << " K=" << K << " at " << m << "," << n;
      } else {
        const int32_t want = quant::requantize(a, {mult[n], shift[n]}, zy, qmin, qmax);
        ASSERT_EQ(y8[m * ldy + n], want) << cfg.name << " M=" << M << " N=" << N << " K=" << K << " at " << m << "," << n;
      }
    }
    for (int64_t n = N; n < ldy; ++n) {  // nothing written past the N columns
      if (int32_out) ASSERT_EQ(y32[m * ldy + n], 0x5A5A5A5A); else ASSERT_EQ(y8[m * ldy + n], 0xAB);
    }
  }
  for (int64_t i = M / pool * ldy; i < M * ldy; ++i) ASSERT_EQ(y8[i], 0xAB) << "pooled output wrote past M / pool rows";
}

void check_table(const GemmConfig* table, int count, const std::vector<int64_t>& Ms, const std::vector<int32_t>& Ns,
                 const std::vector<int32_t>& Ks) {
  uint32_t seed = 1;
  for (int i = 0; i < count; ++i)
    for (int64_t M : Ms)
      for (int32_t N : Ns)
        for (int32_t K : Ks)
          for (bool i32 : {false, true}) {
            check_config(table[i], M, N, K, i32, seed++);
            if (::testing::Test::HasFatalFailure()) return;
          }
}

}  // namespace

// The configurations of an optimized level the tests exercise here, or nullptr and why not.
const GemmConfig* level_table(Isa isa, int* count, std::string* why) {
  *count = 0;
  if (!rtest::level_enabled(isa, why)) return nullptr;
  const GemmConfig* table = gemm_configs(isa, count);
  for (int i = 0; i < *count; ++i) EXPECT_EQ(table[i].isa, isa) << table[i].name;
  return table;
}

// VNNI tiles are 12 x 32 (plus 8-, 4-, 2- and 1-row tiles for the remainder), sub-byte weights are
// summed in scaled chunks of 8192 quads: M, N and K straddle all of these.
TEST(GemmKernels, Avx512VnniMatchesContractOnEdgeCases) {
  int count = 0;
  std::string why;
  const GemmConfig* table = level_table(Isa::Avx512Vnni, &count, &why);
  if (table == nullptr) GTEST_SKIP() << why;
  ASSERT_EQ(count, 6);
  check_table(table, count, {1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 23, 25}, {1, 7, 15, 16, 17, 31, 32, 33, 65},
              {1, 2, 3, 4, 5, 9, 15, 16, 17, 64, 65, 289, 300});
}

// Fused 2- and 4-row max pooling in the output stage (hidden layers only), on the levels whose
// configs allow it.
void check_fused_pool(const GemmConfig* table, int count, const std::vector<int64_t>& Ms, uint32_t seed) {
  for (int i = 0; i < count; ++i) {
    ASSERT_GE(table[i].pool_rows_max, 4) << table[i].name;
    for (int32_t pool : {2, 4})
      for (int64_t M : Ms)
        for (int32_t N : {1, 7, 8, 9, 17, 32, 33})
          for (int32_t K : {3, 9, 16, 64, 289}) {
            check_config(table[i], M, N, K, false, seed++, false, pool);
            if (::testing::Test::HasFatalFailure()) return;
          }
  }
}

TEST(GemmKernels, Avx512VnniFusedMaxPool) {
  int count = 0;
  std::string why;
  const GemmConfig* table = level_table(Isa::Avx512Vnni, &count, &why);
  if (table == nullptr) GTEST_SKIP() << why;
  check_fused_pool(table, count, {4, 8, 12, 16, 20, 24, 28, 36}, 500);
}

// K beyond one scaled chunk (4 * 8192) with extreme values, so that the int32 sum wraps around
// (70000 * 255 * 128 > 2^31) exactly as the reference's.
TEST(GemmKernels, LongKWrapsLikeReference) {
  std::vector<const GemmConfig*> configs;
  for (Isa isa : {Isa::Avx512Vnni, Isa::Avx2, Isa::NeonDot, Isa::Neon}) {
    if (!rtest::level_enabled(isa)) continue;
    int count = 0;
    const GemmConfig* t = gemm_configs(isa, &count);
    for (int i = 0; i < count; ++i) configs.push_back(&t[i]);
  }
  if (configs.empty()) GTEST_SKIP() << "no optimized ISA level to test (build, CPU or LOWBIT_ISA)";
  uint32_t seed = 7;
  for (const GemmConfig* c : configs)
    for (int32_t K : {32769, 70001})
      for (bool extremes : {false, true}) {
        check_config(*c, 3, 33, K, seed % 2 == 0, seed, extremes);
        ++seed;
        if (::testing::Test::HasFatalFailure()) return;
      }
}

TEST(GemmKernels, Avx2MatchesContractOnEdgeCases) {
  int count = 0;
  std::string why;
  const GemmConfig* table = level_table(Isa::Avx2, &count, &why);
  if (table == nullptr) GTEST_SKIP() << why;
  ASSERT_EQ(count, 12);
  // 4-row tiles (then 2 + 1), 16-column blocks, int16 groups of 1 / 4 / 8 / 16 quads
  check_table(table, count, {1, 2, 3, 4, 5, 6, 7, 8, 9, 13}, {1, 7, 8, 9, 16, 17, 33},
              {1, 2, 3, 4, 5, 15, 16, 17, 33, 64, 65, 129, 289, 300});
}

// Fused 2- and 4-row max pooling in the AVX2 output stage (4-row tiles).
TEST(GemmKernels, Avx2FusedMaxPool) {
  int count = 0;
  std::string why;
  const GemmConfig* table = level_table(Isa::Avx2, &count, &why);
  if (table == nullptr) GTEST_SKIP() << why;
  for (int i = 0; i < count; ++i) ASSERT_EQ(table[i].mr % 4, 0) << table[i].name;
  check_fused_pool(table, count, {4, 8, 12, 16, 20, 36}, 700);
}

// The vpmaddubsw int8 kernel (u8_w8p) is exact exactly where gemm_weights_fit_pairs says so; with
// weights that would saturate its int16 pair sums it is not, and find_gemm_config never returns it.
TEST(GemmKernels, Avx2PairBoundedInt8Kernel) {
  // the bound itself (plain arithmetic, any build): 255 * 128 = 32640 fits, 255 * 129 does not
  const std::vector<int32_t> w64 = {64, -64, 1, 0}, w65 = {64, -65, 0, 0}, full = {-128, 127, -128, -128, 5};
  EXPECT_TRUE(gemm_weights_fit_pairs(w64.data(), 1, 4, 255));
  EXPECT_FALSE(gemm_weights_fit_pairs(w65.data(), 1, 4, 255));
  EXPECT_FALSE(gemm_weights_fit_pairs(full.data(), 1, 5, 255));
  EXPECT_TRUE(gemm_weights_fit_pairs(full.data(), 1, 5, 127));   // 7-bit activations: 127 * 256 = 32512
  EXPECT_FALSE(gemm_weights_fit_pairs(full.data(), 1, 5, 128));
  const std::vector<int32_t> odd_k = {1, 1, -128};  // K odd: the last k pairs with the padding zero
  EXPECT_TRUE(gemm_weights_fit_pairs(odd_k.data(), 1, 3, 255));
  EXPECT_EQ(find_pair_bounded_gemm_config(Isa::Avx512Vnni, 8, lowbit::quant::Grid::Integer), nullptr);
  std::string why;
  if (!rtest::level_enabled(Isa::Avx2, &why)) GTEST_SKIP() << why;
  const GemmConfig* pb = find_pair_bounded_gemm_config(Isa::Avx2, 8, lowbit::quant::Grid::Integer);
  ASSERT_NE(pb, nullptr);
  EXPECT_TRUE(pb->pair_bounded);
  EXPECT_EQ(pb->input, GemmInput::U8);
  EXPECT_FALSE(find_gemm_config(Isa::Avx2, 8, lowbit::quant::Grid::Integer)->pair_bounded);
  EXPECT_EQ(find_pair_bounded_gemm_config(Isa::Avx2, 4, lowbit::quant::Grid::Integer), nullptr);
  // full-range weights with activations <= 127: exact (the contract checked against the reference)
  uint32_t seed = 900;
  for (int64_t M : {1, 4, 7})
    for (int32_t K : {5, 64, 300}) {
      std::mt19937 rng(seed++);
      const int32_t Kp = (K + 3) / 4 * 4, N = 17;
      std::vector<uint8_t> A(static_cast<size_t>(M * Kp), 0);
      for (int64_t m = 0; m < M; ++m)
        for (int32_t k = 0; k < K; ++k) A[m * Kp + k] = static_cast<uint8_t>(std::uniform_int_distribution<int>(0, 127)(rng));
      std::vector<int32_t> w(static_cast<size_t>(N) * K), bias(N, 0);
      for (auto& v : w) v = std::uniform_int_distribution<int>(0, 1)(rng) ? -128 : std::uniform_int_distribution<int>(-128, 127)(rng);
      ASSERT_TRUE(gemm_weights_fit_pairs(w.data(), N, K, 127));
      ASSERT_FALSE(gemm_weights_fit_pairs(w.data(), N, K, 255));
      const auto packed = pb->pack(w.data(), N, K);
      std::vector<int32_t> y(static_cast<size_t>(M) * N);
      GemmOutput out;
      out.bias = bias.data();
      out.y_i32 = y.data();
      out.ldy = N;
      pb->gemm(M, N, K, A.data(), Kp, packed.data(), out);
      for (int64_t m = 0; m < M; ++m)
        for (int32_t n = 0; n < N; ++n) {
          int32_t want = 0;
          for (int32_t k = 0; k < K; ++k) want += A[m * Kp + k] * w[static_cast<size_t>(n) * K + k];
          ASSERT_EQ(y[m * N + n], want) << "M=" << M << " K=" << K << " at " << m << "," << n;
        }
    }
  // a pair that saturates (255 * (-128 - 128) < -32768): the kernel's result differs from the
  // reference's, which is why the session must not pick it for such weights
  std::vector<uint8_t> A(4, 255);
  const std::vector<int32_t> w = {-128, -128, -128, -128};
  const auto packed = pb->pack(w.data(), 1, 4);
  const int32_t bias = 0;
  int32_t y = 0;
  GemmOutput out;
  out.bias = &bias;
  out.y_i32 = &y;
  out.ldy = 1;
  pb->gemm(1, 1, 4, A.data(), 4, packed.data(), out);
  EXPECT_EQ(y, 2 * -32768);  // each pair saturated to -32768 instead of -65280
  EXPECT_NE(y, 4 * 255 * -128);
}

// NEON tiles are 8 x 8 (plus 4-, 2- and 1-row tiles for the remainder); the neondot kernel takes
// k by quads (4) and groups of 4 quads (16), the neon kernel by groups of 4: M, N and K straddle
// these, and every weight kind a model may hold runs the level's int8 kernel (find_gemm_config).
void check_neon_level(Isa isa, uint32_t seed) {
  int count = 0;
  const GemmConfig* table = gemm_configs(isa, &count);
  ASSERT_EQ(count, 1);
  EXPECT_EQ(table[0].isa, isa);
  EXPECT_EQ(table[0].mr, 8);
  EXPECT_EQ(table[0].nr, 8);
  check_table(table, count, {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 25}, {1, 3, 4, 5, 7, 8, 9, 16, 17, 33},
              {1, 2, 3, 4, 5, 8, 15, 16, 17, 20, 31, 32, 33, 64, 289});
  if (::testing::Test::HasFatalFailure()) return;
  std::vector<rtest::WeightKind> kinds = rtest::all_weight_kinds();
  for (int32_t bits : {3, 5, 6, 7})
    for (auto grid : {lowbit::quant::Grid::Integer, lowbit::quant::Grid::Odd}) kinds.push_back({bits, grid});
  for (const rtest::WeightKind& k : kinds) {
    const GemmConfig* found = find_gemm_config(isa, k.bits, k.grid);
    ASSERT_EQ(found, &table[0]) << "bits " << k.bits;
    GemmConfig c = *found;
    c.bits = k.bits;  // check_config draws weights of this kind
    c.grid = k.grid;
    for (int64_t M : {1, 9})
      for (int32_t K : {5, 65})
        for (bool i32 : {false, true}) {
          check_config(c, M, 17, K, i32, seed++);
          if (::testing::Test::HasFatalFailure()) return;
        }
  }
}

TEST(GemmKernels, NeonMatchesContractOnEdgeCases) {
  std::string why;
  if (!rtest::level_enabled(Isa::Neon, &why)) GTEST_SKIP() << why;
  check_neon_level(Isa::Neon, 300);
}

TEST(GemmKernels, NeonDotMatchesContractOnEdgeCases) {
  std::string why;
  if (!rtest::level_enabled(Isa::NeonDot, &why)) GTEST_SKIP() << why;
  check_neon_level(Isa::NeonDot, 400);
}

TEST(GemmKernels, NeonFusedMaxPool) {
  bool any = false;
  for (Isa isa : {Isa::Neon, Isa::NeonDot}) {
    if (!rtest::level_enabled(isa)) continue;
    any = true;
    int count = 0;
    const GemmConfig* table = gemm_configs(isa, &count);
    check_fused_pool(table, count, {4, 8, 12, 16, 20, 28}, 600);
    if (HasFatalFailure()) return;
  }
  if (!any) GTEST_SKIP() << "no NEON level to test (build, CPU or LOWBIT_ISA)";
}

// Shifts 0, 1, 32 and 62 in the output stage of every level (rounding ties included: shift 1 and
// 32 with power-of-two multipliers halve or quarter the accumulator).
TEST(GemmKernels, OutputStageShiftLimits) {
  bool any = false;
  uint32_t seed = 800;
  for (Isa isa : {Isa::Avx512Vnni, Isa::Avx2, Isa::NeonDot, Isa::Neon}) {
    if (!rtest::level_enabled(isa)) continue;
    any = true;
    int count = 0;
    const GemmConfig* table = gemm_configs(isa, &count);
    for (int i = 0; i < count; ++i)
      for (int64_t M : {1, 5, 8, 13})
        for (int32_t N : {7, 16, 33})
          for (int32_t K : {1, 4, 17}) {
            check_config(table[i], M, N, K, false, seed++, false, 1, true);
            if (HasFatalFailure()) return;
          }
  }
  if (!any) GTEST_SKIP() << "no optimized ISA level to test (build, CPU or LOWBIT_ISA)";
}

TEST(GemmKernels, ConfigLookup) {
  for (const auto& k : rtest::all_weight_kinds()) EXPECT_EQ(find_gemm_config(Isa::Ref, k.bits, k.grid), nullptr);
  // A level this build lacks has no configs at all.
  for (Isa isa : {Isa::Avx2, Isa::Avx512Vnni, Isa::Neon, Isa::NeonDot}) {
    int count = -1;
    const GemmConfig* table = gemm_configs(isa, &count);
    if (!build_has_isa(isa)) {
      EXPECT_EQ(count, 0) << isa_name(isa);
      EXPECT_EQ(find_gemm_config(isa, 8, lowbit::quant::Grid::Integer), nullptr) << isa_name(isa);
    } else {
      EXPECT_GT(count, 0) << isa_name(isa);
      for (int i = 0; i < count; ++i)
        EXPECT_NE(std::string(table[i].name).find(std::string("__") + isa_name(isa)), std::string::npos);
    }
  }
  if (build_has_isa(Isa::Neon)) {
    for (Isa isa : {Isa::Neon, Isa::NeonDot}) {
      EXPECT_EQ(find_gemm_config(isa, 8, lowbit::quant::Grid::Odd), nullptr);  // values up to 255
      EXPECT_EQ(find_gemm_config(isa, 8, lowbit::quant::Grid::Integer)->input,
                isa == Isa::Neon ? GemmInput::S16 : GemmInput::U8);
    }
  }
  if (!build_has_isa(Isa::Avx2)) return;
  for (const auto& k : rtest::all_weight_kinds()) {
    EXPECT_EQ(find_gemm_config(Isa::Ref, k.bits, k.grid), nullptr);
    EXPECT_EQ(find_pair_bounded_gemm_config(Isa::Ref, k.bits, k.grid), nullptr);
    const GemmConfig* c = find_gemm_config(Isa::Avx2, k.bits, k.grid);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->input, k.bits <= 4 ? GemmInput::U8 : GemmInput::S16) << c->name;
    EXPECT_EQ(c->bits, k.bits);
    EXPECT_EQ(c->grid, k.grid);
    // avx512vnni: a VNNI kernel of exactly that kind for every kind a model may hold
    const GemmConfig* v = find_gemm_config(Isa::Avx512Vnni, k.bits, k.grid);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->isa, Isa::Avx512Vnni) << v->name;
    EXPECT_EQ(v->input, GemmInput::U8) << v->name;
    EXPECT_EQ(v->bits, k.bits);
    EXPECT_EQ(v->grid, k.grid);
  }
  // widths without a kernel of their own whose values fit in int8 use the int8 kernel
  for (int32_t bits : {3, 5, 6, 7}) {
    const GemmConfig* v = find_gemm_config(Isa::Avx512Vnni, bits, lowbit::quant::Grid::Integer);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->bits, 8);
    EXPECT_EQ(find_gemm_config(Isa::Avx512Vnni, bits, lowbit::quant::Grid::Odd), v);
  }
  EXPECT_EQ(find_gemm_config(Isa::Avx512Vnni, 8, lowbit::quant::Grid::Odd), nullptr);  // values up to 255
}

// The int8 VNNI kernel on the values of narrower widths (what find_gemm_config hands out for them).
TEST(GemmKernels, Avx512VnniInt8KernelOnNarrowerWidths) {
  std::string why;
  if (!rtest::level_enabled(Isa::Avx512Vnni, &why)) GTEST_SKIP() << why;
  uint32_t seed = 100;
  for (int32_t bits : {3, 5, 6, 7})
    for (auto grid : {lowbit::quant::Grid::Integer, lowbit::quant::Grid::Odd}) {
      GemmConfig c = *find_gemm_config(Isa::Avx512Vnni, bits, grid);
      c.bits = bits;  // the test draws weights of this kind
      c.grid = grid;
      for (int64_t M : {1, 13})
        for (int32_t K : {5, 65})
          for (bool i32 : {false, true}) check_config(c, M, 33, K, i32, seed++);
    }
}
