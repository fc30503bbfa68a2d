#include <gtest/gtest.h>

#include <cstdlib>

#include "runtime/lowbit_runtime_c.h"
#include "runtime/model_file.h"
#include "runtime/model_tools.h"
#include "runtime/reference_cnn.h"
#include "runtime/session.h"
#include "test_models.h"

using namespace lowbit::runtime;

TEST(CApi, LoadRunFreeAndErrors) {
  const char* dir = std::getenv("LOWBIT_TEST_TMP");
  const std::string d = dir ? dir : "/tmp";
  std::system(("mkdir -p '" + d + "'").c_str());
  const std::string path = d + "/c_api.lbq";
  const Model m = rtest::random_graph(21);
  save_model(m, path);
  lowbit_session* s = lowbit_session_load(path.c_str(), 2, nullptr);
  ASSERT_NE(s, nullptr) << lowbit_last_error();
  int32_t c = 0, h = 0, w = 0;
  ASSERT_EQ(lowbit_session_input_shape(s, &c, &h, &w), 0);
  EXPECT_EQ(c, m.in_channels);
  EXPECT_EQ(h, m.in_height);
  const int32_t classes = lowbit_session_classes(s);
  const auto x = rtest::random_input(m, 2, 3);
  std::vector<float> logits(2 * classes);
  std::vector<int32_t> top(2), ints(2 * classes);
  ASSERT_EQ(lowbit_session_run(s, x.data(), 2, logits.data(), top.data()), 0) << lowbit_last_error();
  ASSERT_EQ(lowbit_session_run_int(s, x.data(), 2, ints.data()), 0);
  Session ref(m, {1, "ref"});
  const RunResult want = ref.run(x.data(), 2);
  EXPECT_EQ(ints, want.int_logits);
  EXPECT_EQ(logits, want.logits);
  EXPECT_EQ(top, want.argmax);
  EXPECT_NE(lowbit_session_run(s, x.data(), 0, logits.data(), top.data()), 0);
  EXPECT_NE(std::string(lowbit_last_error()).find("batch"), std::string::npos);
  lowbit_session_free(s);
  EXPECT_EQ(lowbit_session_load((d + "/missing.lbq").c_str(), 1, nullptr), nullptr);
  EXPECT_NE(std::string(lowbit_last_error()).find("missing.lbq"), std::string::npos);
  EXPECT_EQ(lowbit_session_load(path.c_str(), 1, "nope"), nullptr);
}

TEST(Tools, DescribeAndBenchmark) {
  const Model m = random_reference_cnn(1, 4);
  EXPECT_EQ(model_macs_per_item(m), 28 * 28 * 32 * 9 + 14 * 14 * 64 * 288 + 3136 * 128 + 128 * 10);
  const std::string d = describe_model(m);
  EXPECT_NE(d.find("conv2d 3x3"), std::string::npos) << d;
  EXPECT_NE(d.find("int4"), std::string::npos);
  EXPECT_NE(d.find("bits/parameter"), std::string::npos);
  Session s(m, {1, "ref"});
  const BenchmarkResult r = benchmark_model(s, 2, 1, 3);
  EXPECT_EQ(r.samples_ms.size(), 3u);
  EXPECT_LE(r.median_ms, r.p99_ms);
  EXPECT_GT(r.items_per_s, 0);
}

TEST(Tools, ReferenceCnnSameOnEveryIsa) {
  if (rtest::optimized_isas().empty()) GTEST_SKIP() << "no optimized ISA level to compare (build, CPU or LOWBIT_ISA)";
  for (int bits : {8, 4}) {
    const Model m = random_reference_cnn(2, bits);
    // batch 23: the optimized session runs it in cache-sized slices (12 + 11 items)
    const auto x = rtest::random_input(m, 23, 4);
    Session ref(m, {1, "ref"});
    const RunResult a = ref.run(x.data(), 23);
    for (const std::string& isa : rtest::optimized_isas()) {
      Session opt(m, {2, isa, false, 0});
      const RunResult b = opt.run(x.data(), 23);
      EXPECT_EQ(a.argmax, b.argmax) << isa;
      EXPECT_EQ(a.int_logits, b.int_logits) << isa;
    }
    // not degenerate: logits vary across classes
    EXPECT_NE(*std::min_element(a.int_logits.begin(), a.int_logits.end()),
              *std::max_element(a.int_logits.begin(), a.int_logits.end()));
  }
}
