// One PreparedModel shared by sessions on 8 threads (what an inference server does): every result
// equals the single-threaded one bit for bit. Run under ThreadSanitizer by `make sanitize`.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "runtime/lowbit_runtime_c.h"
#include "runtime/model_file.h"
#include "runtime/prepared_model.h"
#include "runtime/session.h"
#include "test_models.h"

using namespace lowbit::runtime;

namespace {

constexpr int kThreads = 8;
constexpr int kRunsPerThread = 6;

// The inputs of run r on worker t (batch 1 to 4), and the single-threaded answers.
struct Workload {
  std::vector<std::vector<float>> inputs;  // [kThreads * kRunsPerThread]
  std::vector<int64_t> batches;
  std::vector<RunResult> want;
};

Workload make_workload(const Model& m, const std::shared_ptr<const PreparedModel>& prepared) {
  Workload w;
  Session one(prepared);
  for (int i = 0; i < kThreads * kRunsPerThread; ++i) {
    const int64_t batch = 1 + i % 4;
    w.inputs.push_back(rtest::random_input(m, batch, 100 + i));
    w.batches.push_back(batch);
    w.want.push_back(one.run(w.inputs.back().data(), batch));
  }
  return w;
}

}  // namespace

TEST(SharedModel, EightThreadsOnOneModelMatchOneThreadBitForBit) {
  for (uint32_t seed : {3u, 8u}) {
    const Model m = rtest::random_graph(seed);
    std::vector<std::string> levels{"ref"};
    for (const std::string& isa : rtest::optimized_isas()) levels.push_back(isa);
    for (const std::string& isa : levels) {
      PrepareOptions po;
      po.isa = isa;
      const auto prepared = PreparedModel::create(m, po);
      const Workload w = make_workload(m, prepared);
      std::atomic<int> mismatches{0}, failures{0};
      std::vector<std::thread> workers;
      for (int t = 0; t < kThreads; ++t)
        workers.emplace_back([&, t] {
          try {
            SessionOptions so;
            so.threads = 1 + t % 2;  // some sessions split batches over a pool of their own
            so.min_parallel_macs = 0;
            Session s(prepared, so);
            for (int r = 0; r < kRunsPerThread; ++r) {
              const int i = (t * kRunsPerThread + r * 5) % (kThreads * kRunsPerThread);  // threads interleave inputs
              const RunResult got = s.run(w.inputs[i].data(), w.batches[i]);
              if (got.int_logits != w.want[i].int_logits || got.logits != w.want[i].logits ||
                  got.argmax != w.want[i].argmax)
                ++mismatches;
            }
          } catch (const std::exception&) {
            ++failures;
          }
        });
      for (auto& th : workers) th.join();
      EXPECT_EQ(failures.load(), 0) << isa << " seed " << seed;
      EXPECT_EQ(mismatches.load(), 0) << isa << " seed " << seed;
    }
  }
}

TEST(SharedModel, SessionsKeepTheModelAliveAndShareIt) {
  const Model m = rtest::random_graph(5);
  auto prepared = PreparedModel::create(m, {});
  Session a(prepared);
  SessionOptions two;
  two.threads = 2;
  Session b(prepared, two);
  EXPECT_EQ(&a.model(), &b.model());  // one copy of the weights
  EXPECT_EQ(a.kernel_names(), b.kernel_names());
  const auto x = rtest::random_input(m, 3, 1);
  const RunResult before = a.run(x.data(), 3);
  prepared.reset();  // the caller's reference is gone; the sessions still hold the model
  EXPECT_EQ(b.run(x.data(), 3).int_logits, before.int_logits);
  EXPECT_EQ(a.prepared_model().use_count(), 2);
}

TEST(SharedModel, LevelMismatchAndNullAreClearErrors) {
  const Model m = rtest::random_graph(6);
  PrepareOptions po;
  po.isa = "ref";
  const auto prepared = PreparedModel::create(m, po);
  for (const std::string& isa : rtest::optimized_isas()) {
    SessionOptions so;
    so.isa = isa;
    try {
      Session s(prepared, so);
      ADD_FAILURE() << "a session for " << isa << " over a model prepared for ref";
    } catch (const lowbit::Error& e) {
      EXPECT_NE(std::string(e.what()).find("prepared for ref"), std::string::npos) << e.what();
    }
  }
  SessionOptions same;
  same.isa = "ref";
  EXPECT_NO_THROW(Session(prepared, same));
  EXPECT_THROW(Session(std::shared_ptr<const PreparedModel>(), {}), lowbit::Error);
}

TEST(SharedModel, CApiEightThreadsOnOneModel) {
  const char* dir = std::getenv("LOWBIT_TEST_TMP");
  const std::string d = dir ? dir : "/tmp";
  std::system(("mkdir -p '" + d + "'").c_str());
  const std::string path = d + "/shared_c_api.lbq";
  const Model m = rtest::random_graph(12);
  save_model(m, path);
  lowbit_model* model = lowbit_model_load(path.c_str(), nullptr);
  ASSERT_NE(model, nullptr) << lowbit_last_error();
  const Workload w = make_workload(m, PreparedModel::load(path));
  std::vector<lowbit_session*> sessions;
  for (int t = 0; t < kThreads; ++t) {
    sessions.push_back(lowbit_session_create(model, 1));
    ASSERT_NE(sessions.back(), nullptr) << lowbit_last_error();
  }
  lowbit_model_free(model);  // the sessions keep it alive
  const int32_t classes = lowbit_session_classes(sessions[0]);
  std::atomic<int> mismatches{0}, failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t)
    workers.emplace_back([&, t] {
      for (int r = 0; r < kRunsPerThread; ++r) {
        const int i = t * kRunsPerThread + r;
        std::vector<int32_t> ints(static_cast<size_t>(w.batches[i] * classes));
        if (lowbit_session_run_int(sessions[t], w.inputs[i].data(), w.batches[i], ints.data()) != 0) {
          ++failures;
        } else if (ints != w.want[i].int_logits) {
          ++mismatches;
        }
      }
    });
  for (auto& th : workers) th.join();
  for (lowbit_session* s : sessions) lowbit_session_free(s);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(lowbit_session_create(nullptr, 1), nullptr);
  EXPECT_NE(std::string(lowbit_last_error()).find("model is NULL"), std::string::npos);
  EXPECT_EQ(lowbit_model_load((d + "/missing.lbq").c_str(), nullptr), nullptr);
  EXPECT_NE(std::string(lowbit_last_error()).find("missing.lbq"), std::string::npos);
}
