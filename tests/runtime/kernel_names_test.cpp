// Kernel names are the kernels' real symbols: every name a level's tables hold is in a list made
// here from the functions themselves (SYMBOL takes the function's address, so a name without a
// function does not compile), and every name Session::kernel_names() prints is in its level's tables.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "runtime/kernels/add_kernels.h"
#include "runtime/kernels/depthwise_kernels.h"
#include "runtime/kernels/gemm_kernels.h"
#include "runtime/kernels/im2col_kernels.h"
#include "runtime/kernels/isa_kernels.h"
#include "runtime/kernels/pool_kernels.h"
#include "runtime/kernels/quantize_kernels.h"
#include "runtime/kernels/ref_kernels.h"
#include "runtime/reference_cnn.h"
#include "runtime/session.h"
#include "test_models.h"

namespace lowbit::runtime {
namespace {

#define SYMBOL(fn) (static_cast<void>(&fn), std::string(#fn))

// Every kernel symbol of a level, written out by hand from the kernel headers.
std::set<std::string> level_symbols(Isa isa) {
  // the reference kernels of the families no optimized level has a kernel of its own for
  std::set<std::string> s = {SYMBOL(ref::avg_pool), SYMBOL(ref::add), SYMBOL(ref::flatten), SYMBOL(ref::lookup), SYMBOL(ref::conv2d),
                             SYMBOL(ref::linear)};
  std::set<std::string> own = {SYMBOL(ref::quantize_input), SYMBOL(ref::max_pool)};
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Avx512Vnni:
      s = level_symbols(Isa::Avx2);  // its non-GEMM kernels and the GEMM fallbacks
      own = {SYMBOL(u8_w8_gemm_fxp_12x32__avx512vnni),   SYMBOL(u8_w4_gemm_fxp_12x32__avx512vnni),
             SYMBOL(u8_w2_gemm_fxp_12x32__avx512vnni),   SYMBOL(u8_w4odd_gemm_fxp_12x32__avx512vnni),
             SYMBOL(u8_w2odd_gemm_fxp_12x32__avx512vnni), SYMBOL(u8_w1odd_gemm_fxp_12x32__avx512vnni)};
      break;
    case Isa::Avx2:
      own = {SYMBOL(f32_quantize_8x__avx2),         SYMBOL(u8_maxpool_32c__avx2),
             SYMBOL(u8_dwconv_s32_fxp_8c__avx2),    SYMBOL(u8_im2col_gather_32b__avx2),
             SYMBOL(u8_stack_rows_c1_16x__avx2),    SYMBOL(s16_w8_gemm_fxp_4x16__avx2),
             SYMBOL(s16_w4_gemm_fxp_4x16__avx2),    SYMBOL(s16_w2_gemm_fxp_4x16__avx2),
             SYMBOL(s16_w4odd_gemm_fxp_4x16__avx2), SYMBOL(s16_w2odd_gemm_fxp_4x16__avx2),
             SYMBOL(s16_w1odd_gemm_fxp_4x16__avx2), SYMBOL(u8_w4_gemm_fxp_4x16__avx2),
             SYMBOL(u8_w2_gemm_fxp_4x16__avx2),     SYMBOL(u8_w4odd_gemm_fxp_4x16__avx2),
             SYMBOL(u8_w2odd_gemm_fxp_4x16__avx2),  SYMBOL(u8_w1odd_gemm_fxp_4x16__avx2),
             SYMBOL(u8_w8p_gemm_fxp_4x16__avx2),    SYMBOL(u8_add_lut64k__portable)};
      break;
#endif
#if defined(__aarch64__)
    case Isa::Neon:
      own = {SYMBOL(f32_quantize_8x__neon), SYMBOL(u8_maxpool_16c__neon), SYMBOL(u8_stack_rows_c1_16x__neon),
             SYMBOL(s16_w8_gemm_fxp_8x8__neon), SYMBOL(u8_add_lut64k__portable)};
      break;
    case Isa::NeonDot:
      own = {SYMBOL(f32_quantize_8x__neon), SYMBOL(u8_maxpool_16c__neon), SYMBOL(u8_stack_rows_c1_16x__neon),
             SYMBOL(u8_w8_gemm_fxp_8x8__neondot), SYMBOL(u8_add_lut64k__portable)};
      break;
#endif
    default: break;
  }
  s.insert(own.begin(), own.end());
  return s;
}

std::vector<Isa> levels_in_build() {
  std::vector<Isa> v;
  for (Isa isa : {Isa::Ref, Isa::Avx2, Isa::Avx512Vnni, Isa::Neon, Isa::NeonDot})
    if (isa == Isa::Ref || build_has_isa(isa)) v.push_back(isa);
  return v;
}

TEST(KernelNames, TablesNameRealSymbols) {
  for (Isa isa : levels_in_build()) {
    const std::vector<std::string> names = isa_kernel_names(isa);
    EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), level_symbols(isa)) << isa_name(isa);
  }
}

// <input>_<op ...>_<tile>__<isa> for optimized kernels (gemm_config.h), ref::<op> for the reference.
TEST(KernelNames, FollowTheGrammar) {
  const std::regex optimized("(f32|s16|u8)_[a-z0-9_]+[a-z0-9]__(avx2|avx512vnni|neon|neondot|portable)");
  const std::regex reference("ref::[a-z0-9_]+");
  for (Isa isa : levels_in_build())
    for (const std::string& n : isa_kernel_names(isa))
      EXPECT_TRUE(std::regex_match(n, optimized) || std::regex_match(n, reference)) << n;
  // A GEMM config's name states its input, weights, tile and level.
  for (Isa isa : levels_in_build()) {
    int count = 0;
    const GemmConfig* table = gemm_configs(isa, &count);
    for (int i = 0; i < count; ++i) {
      const GemmConfig& c = table[i];
      const std::string want = std::string(c.input == GemmInput::S16 ? "s16" : "u8") + "_w" + std::to_string(c.bits) +
                               (c.grid == quant::Grid::Odd ? "odd" : "") + (c.pair_bounded ? "p" : "") + "_gemm_fxp_" +
                               std::to_string(c.mr) + "x" + std::to_string(c.nr) + "__" + isa_name(c.isa);
      EXPECT_EQ(c.name, want);
    }
  }
}

// What Session::kernel_names() prints for every op kind and weight kind, on every level this CPU
// runs: a kernel of the level's tables, or the note of an op that another op does or that is elided.
TEST(KernelNames, SessionReportsTableNames) {
  std::vector<Model> models;
  for (uint32_t seed = 1; seed <= 12; ++seed) models.push_back(rtest::random_graph(seed));
  models.push_back(random_reference_cnn(3));
  std::vector<Isa> levels{Isa::Ref};
  for (const std::string& isa : rtest::optimized_isas()) levels.push_back(parse_isa(isa));
  for (Isa isa : levels) {
    const std::vector<std::string> names = isa_kernel_names(isa);
    const std::set<std::string> known(names.begin(), names.end());
    for (const Model& m : models) {
      const Session s(m, {1, isa_name(isa)});
      for (const std::string& line : s.kernel_names()) {
        std::string kernel = line.substr(line.find(": ") + 2);
        if (kernel.size() > 11 && kernel.compare(kernel.size() - 11, 11, " + max pool") == 0)
          kernel.resize(kernel.size() - 11);
        const bool note = kernel == "fused into the conv's output stage" || kernel == "folded into the next linear";
        EXPECT_TRUE(note || known.count(kernel) == 1) << isa_name(isa) << " " << m.name << ": " << line;
      }
    }
  }
}

}  // namespace
}  // namespace lowbit::runtime
