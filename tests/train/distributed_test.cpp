#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "train/distributed.h"

namespace lowbit::train {
namespace {

TEST(ShardOfBatch, ShardsAreDisjointContiguousAndCoverTheBatchInRankOrder) {
  for (int world : {1, 2, 3, 4, 7}) {
    for (int64_t batch : {0, 1, 5, 32, 33, 127, 128}) {
      int64_t next = 0, largest = 0, smallest = batch;
      for (int r = 0; r < world; ++r) {
        const auto [offset, count] = shard_of_batch(batch, r, world);
        EXPECT_EQ(offset, next) << "batch " << batch << " world " << world << " rank " << r;
        next = offset + count;
        largest = std::max(largest, count);
        smallest = std::min(smallest, count);
      }
      EXPECT_EQ(next, batch) << "the shards must cover the whole batch";
      EXPECT_LE(largest - smallest, 1) << "shard sizes differ by at most one";
    }
  }
  using Shard = std::pair<int64_t, int64_t>;
  EXPECT_EQ(shard_of_batch(10, 0, 4), Shard(0, 3));
  EXPECT_EQ(shard_of_batch(10, 1, 4), Shard(3, 3));
  EXPECT_EQ(shard_of_batch(10, 2, 4), Shard(6, 2));
  EXPECT_EQ(shard_of_batch(10, 3, 4), Shard(8, 2));
  EXPECT_THROW(shard_of_batch(10, 4, 4), Error);
}

// Sets environment variables for one test and restores them afterwards.
class EnvGuard {
 public:
  explicit EnvGuard(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOWBIT_DIST_TIMEOUT"}) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(name);
    }
    for (const auto& [k, v] : vars) ::setenv(k, v, 1);
  }
  ~EnvGuard() {
    for (const auto& [k, v] : saved_) {
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
      else ::unsetenv(k.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DistributedEnv, UnsetOrOneWorldIsASingleProcess) {
  {
    EnvGuard g({});
    const auto env = distributed_env_from_environment();
    EXPECT_EQ(env.world_size, 1);
    EXPECT_EQ(env.rank, 0);
  }
  {
    EnvGuard g({{"WORLD_SIZE", "1"}});  // nothing else needed
    EXPECT_EQ(distributed_env_from_environment().world_size, 1);
    DistributedContext ctx(distributed_env_from_environment());
    EXPECT_FALSE(ctx.active());
  }
}

TEST(DistributedEnv, ReadsTorchrunVariables) {
  EnvGuard g({{"WORLD_SIZE", "4"}, {"RANK", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "10.0.0.1"},
              {"MASTER_PORT", "29501"}, {"LOWBIT_DIST_TIMEOUT", "5"}});
  const auto env = distributed_env_from_environment();
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.rank, 2);
  EXPECT_EQ(env.local_rank, 0);
  EXPECT_EQ(env.master_addr, "10.0.0.1");
  EXPECT_EQ(env.master_port, 29501);
  EXPECT_EQ(env.timeout.count(), 5000);
}

TEST(DistributedEnv, ErrorsNameTheVariable) {
  {
    EnvGuard g({{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}});
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("RANK is not set"), std::string::npos);
  }
  {
    EnvGuard g({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "29500"}});
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("MASTER_ADDR is not set"), std::string::npos);
  }
  {
    EnvGuard g({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}});
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("not below WORLD_SIZE"), std::string::npos);
  }
  {
    EnvGuard g({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "99999"}});
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("MASTER_PORT='99999'"), std::string::npos);
  }
  {
    EnvGuard g({{"WORLD_SIZE", "two"}});
    EXPECT_NE(error_of([] { distributed_env_from_environment(); }).find("WORLD_SIZE='two'"), std::string::npos);
  }
}

}  // namespace
}  // namespace lowbit::train
