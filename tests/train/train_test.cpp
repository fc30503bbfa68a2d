#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "train/checkpoint.h"
#include "train/test_files.h"
#include "train/trainer.h"

namespace lowbit::train {
namespace {

using lowbit::testing::fresh_test_dir;

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

// Synthetic, learnable data: the label picks which horizontal band of the image is bright.
data::Dataset toy_dataset(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  data::Dataset d;
  d.labels = torch::arange(n, torch::kInt64).remainder(10);
  d.images = torch::rand({n, 1, 28, 28}, gen) * 0.1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = i % 10;
    d.images[i][0].narrow(0, 2 * k, 3).add_(0.8);
  }
  return d;
}

TrainConfig tiny_config(const std::string& model, const std::string& out) {
  TrainConfig c;
  c.model = model;
  c.epochs = 2;
  c.batch_size = 32;
  c.lr = 3e-3;
  c.warmup_steps = 2;
  c.out_dir = out;
  c.threads = 1;
  c.seed = 7;
  return c;
}

std::vector<torch::Tensor> state_of(models::Net& net) {
  std::vector<torch::Tensor> s;
  for (const auto& p : net->parameters()) s.push_back(p.detach().clone());
  for (const auto& b : net->buffers()) s.push_back(b.detach().clone());
  return s;
}

TEST(Schedule, WarmupThenCosineToZero) {
  // lr factor for step 0-based; warm-up 10 of 110 steps.
  EXPECT_DOUBLE_EQ(lr_factor(0, 10, 110), 0.1);
  EXPECT_DOUBLE_EQ(lr_factor(4, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(lr_factor(9, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(lr_factor(10, 10, 110), 1.0);
  EXPECT_NEAR(lr_factor(60, 10, 110), 0.5, 1e-12);                                  // half way: cos(pi/2)
  EXPECT_NEAR(lr_factor(35, 10, 110), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-12);
  EXPECT_NEAR(lr_factor(109, 10, 110), 0.5 * (1 + std::cos(M_PI * 0.99)), 1e-12);
  EXPECT_DOUBLE_EQ(lr_factor(110, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(lr_factor(0, 0, 100), 1.0);  // no warm-up: cosine from the first step
  TrainConfig c;
  c.batch_size = 100;
  EXPECT_EQ(steps_per_epoch(c, 1001), 11);
  c.max_steps_per_epoch = 5;
  EXPECT_EQ(steps_per_epoch(c, 1001), 5);
  c.warmup_fraction = 0.1;
  EXPECT_EQ(warmup_steps(c, 200), 20);
  c.warmup_steps = 7;
  EXPECT_EQ(warmup_steps(c, 200), 7);  // explicit steps win over the fraction
}

TEST(Config, JsonRoundTripKeepsEveryFieldAndExtraSections) {
  TrainConfig c;
  c.model = "resnet8";
  c.epochs = 7;
  c.batch_size = 64;
  c.optimizer = "sgd";
  c.lr = 0.05;
  c.weight_decay = 1e-4;
  c.momentum = 0.8;
  c.nesterov = true;
  c.warmup_steps = 11;
  c.warmup_fraction = 0.2;
  c.clip_grad = 2.5;
  c.seed = 99;
  c.threads = 3;
  c.data_dir = "/d";
  c.out_dir = "/o";
  c.val_size = 123;
  c.max_steps_per_epoch = 4;
  c.eval_batch_size = 77;
  c.extra["qat"] = {{"weight_bits", 4}, {"per_channel", true}};
  const auto j = to_json(c);
  EXPECT_EQ(j["qat"]["weight_bits"], 4);
  const TrainConfig back = config_from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(to_json(back), j);
  EXPECT_EQ(back.extra["qat"]["per_channel"], true);
}

TEST(Config, UnknownKeysAndBadValuesAreNamed) {
  auto j = to_json(TrainConfig{});
  j["learning_rate"] = 0.1;
  const auto msg = error_of([&] { config_from_json(j); });
  EXPECT_NE(msg.find("unknown key 'learning_rate'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lr"), std::string::npos) << msg;

  auto wrong_type = to_json(TrainConfig{});
  wrong_type["epochs"] = "ten";
  EXPECT_NE(error_of([&] { config_from_json(wrong_type); }).find("'epochs'"), std::string::npos);
  // Out-of-range and fractional numbers are errors, not casts (fuzz/checkpoint_fuzz.cpp reads
  // checkpoint configs): a seed of -1 used to become 18446744073709551615, 1e300 epochs was UB.
  for (const auto& [key, value] : {std::pair<const char*, nlohmann::json>{"seed", -1}, {"epochs", 1e300},
                                   {"batch_size", 2.5}, {"nesterov", 1}}) {
    auto bad_number = to_json(TrainConfig{});
    bad_number[key] = value;
    const std::string m = error_of([&] { config_from_json(bad_number); });
    EXPECT_NE(m.find(std::string("'") + key + "' has the wrong type or is out of range"), std::string::npos) << m;
  }

  register_config_section("analysis");
  auto with_section = to_json(TrainConfig{});
  with_section["analysis"] = {{"hessian", true}};
  EXPECT_EQ(config_from_json(with_section).extra["analysis"]["hessian"], true);

  TrainConfig bad;
  bad.optimizer = "adam";
  EXPECT_NE(error_of([&] { bad.validate(); }).find("optimizer = 'adam'"), std::string::npos);
  bad = TrainConfig{};
  bad.lr = -1;
  EXPECT_NE(error_of([&] { bad.validate(); }).find("lr"), std::string::npos);
  EXPECT_NO_THROW(TrainConfig{}.validate());
}

TEST(Training, LossGoesDownOnSyntheticData) {
  torch::manual_seed(1);
  auto train = toy_dataset(320, 1);
  auto val = toy_dataset(100, 2);
  auto config = tiny_config("mlp", fresh_test_dir());
  config.epochs = 3;
  Trainer trainer(models::make_model("mlp"), config);
  trainer.set_log(nullptr);
  trainer.set_write_files(false);
  const auto before = evaluate(trainer.net(), val, 64);
  const auto result = trainer.fit(train, val, &val);
  ASSERT_EQ(result.epochs.size(), 3u);
  EXPECT_LT(result.epochs.back().train_loss, result.epochs.front().train_loss);
  EXPECT_LT(result.epochs.back().val_loss, before.loss);
  EXPECT_GT(result.epochs.back().val_acc, 0.9);
  ASSERT_TRUE(result.test.has_value());
  EXPECT_EQ(result.test->count, 100);
  EXPECT_EQ(trainer.step(), 30);
  EXPECT_NEAR(result.epochs.back().lr, config.lr * lr_factor(29, 2, 30), 1e-12);
}

TEST(Training, SgdWithClippingAndHooks) {
  torch::manual_seed(2);
  auto train = toy_dataset(128, 3);
  auto config = tiny_config("cnn", fresh_test_dir());
  config.optimizer = "sgd";
  config.nesterov = true;
  config.lr = 0.05;
  config.clip_grad = 1.0;
  config.epochs = 1;
  int64_t steps_seen = 0;
  int epochs_seen = 0;
  TrainHooks hooks;
  hooks.after_step = [&](models::Net&, int64_t step) { steps_seen = step; };
  hooks.after_epoch = [&](models::Net&, const EpochMetrics& m) { epochs_seen = static_cast<int>(m.epoch); };
  hooks.param_groups = [](models::Net& net, const TrainConfig&) {
    // One group, a different learning rate: the schedule scales each group's own rate.
    return std::vector<ParamGroup>{{"all", net->parameters(), 0.5, 0.0}};
  };
  Trainer trainer(models::make_model("cnn"), config, hooks);
  trainer.set_log(nullptr);
  trainer.set_write_files(false);
  const auto r = trainer.fit(train, data::Dataset{});
  EXPECT_EQ(steps_seen, 4);
  EXPECT_EQ(epochs_seen, 1);
  EXPECT_TRUE(std::isfinite(r.epochs[0].train_loss));
  EXPECT_DOUBLE_EQ(trainer.optimizer().param_groups()[0].options().get_lr(), 0.5 * config.lr * lr_factor(3, 2, 4));
}

TEST(Evaluate, CountsLossAndPredictions) {
  torch::manual_seed(3);
  auto net = models::make_model("mlp");
  auto d = toy_dataset(25, 4);
  const auto r = evaluate(net, d, 10);
  EXPECT_EQ(r.count, 25);
  ASSERT_EQ(r.predictions.sizes(), (std::vector<int64_t>{25}));
  const double acc = r.predictions.eq(d.labels).sum().item<double>() / 25.0;
  EXPECT_DOUBLE_EQ(r.accuracy, acc);
  torch::NoGradGuard g;
  net->eval();
  const double loss = torch::nn::functional::cross_entropy(net->forward(d.images), d.labels).item<double>();
  EXPECT_NEAR(r.loss, loss, 1e-5);
  EXPECT_TRUE(net->is_training() == false);  // was eval before the call: mode restored
}

TEST(Checkpoint, ResumeContinuesExactly) {
  auto train = toy_dataset(160, 5);
  auto val = toy_dataset(40, 6);
  // Straight: 2 epochs.
  const auto dir_a = fresh_test_dir() + "/a";
  torch::manual_seed(11);
  Trainer a(models::make_model("cnn"), tiny_config("cnn", dir_a));
  a.set_log(nullptr);
  a.fit(train, val);
  // Interrupted after 1 epoch, then resumed in a fresh Trainer with a differently initialised net.
  const auto dir_b = fresh_test_dir() + "/b";
  torch::manual_seed(11);
  {
    Trainer b(models::make_model("cnn"), tiny_config("cnn", dir_b));
    b.set_log(nullptr);
    b.fit(train, val, nullptr, /*stop_after_epoch=*/1);
    EXPECT_EQ(b.epoch(), 1);
  }
  torch::manual_seed(999);
  (void)torch::rand({17});  // disturb the default generator: resume must restore it
  Trainer c(models::make_model("cnn"), tiny_config("cnn", dir_b));
  c.set_log(nullptr);
  c.resume(dir_b);
  EXPECT_EQ(c.epoch(), 1);
  EXPECT_EQ(c.step(), 5);
  c.fit(train, val);
  const auto sa = state_of(a.net());
  const auto sc = state_of(c.net());
  ASSERT_EQ(sa.size(), sc.size());
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(torch::equal(sa[i], sc[i])) << "tensor " << i;
  // metrics.jsonl: one line per epoch in both runs.
  std::ifstream in(dir_b + "/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["epoch"], lines);
    for (const char* key : {"step", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "images_per_s"}) {
      EXPECT_TRUE(j.contains(key)) << key;
    }
  }
  EXPECT_EQ(lines, 2);
  EXPECT_TRUE(std::filesystem::exists(dir_b + "/config.json"));
}

TEST(Checkpoint, LoadNetRebuildsTheModelWithItsWeights) {
  const auto dir = fresh_test_dir();
  torch::manual_seed(12);
  auto config = tiny_config("resnet8", dir);
  config.epochs = 1;
  Trainer t(models::make_model("resnet8"), config);
  t.set_log(nullptr);
  t.fit(toy_dataset(40, 7), data::Dataset{});
  const auto info = load_checkpoint(dir);
  EXPECT_EQ(info.path, dir + "/checkpoint.pt");
  EXPECT_EQ(info.model_name, "resnet8");
  EXPECT_EQ(info.epoch, 1);
  EXPECT_EQ(info.step, 2);
  EXPECT_EQ(config_from_json(info.config).batch_size, 32);
  auto net = load_net(dir + "/checkpoint.pt");
  EXPECT_FALSE(net->is_training());
  auto x = torch::rand({2, 1, 28, 28});
  t.net()->eval();
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::equal(net->forward(x), t.net()->forward(x)));
}

TEST(Checkpoint, ForeignAndCorruptFilesAreRejectedAndLeftUntouched) {
  const auto dir = fresh_test_dir();
  write_file_atomically(dir + "/notes.txt", std::string("hello"));
  auto msg = error_of([&] { load_checkpoint(dir + "/notes.txt"); });
  EXPECT_NE(msg.find(dir + "/notes.txt' is not a lowbit checkpoint"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("Exception raised from"), std::string::npos) << msg;  // no torch stack trace

  // A torch archive that is not ours.
  {
    torch::serialize::OutputArchive other;
    other.write("weights", torch::ones({2}));
    other.save_to(dir + "/other.pt");
  }
  msg = error_of([&] { load_checkpoint(dir + "/other.pt"); });
  EXPECT_NE(msg.find("is not a lowbit checkpoint: it has no lowbit checksum trailer"), std::string::npos) << msg;

  // A real checkpoint with a flipped byte in the middle, and one cut short.
  auto net = models::make_model("mlp");
  TrainingState state;
  state.config = to_json(tiny_config("mlp", dir));
  save_checkpoint(dir + "/good.pt", net, state);
  std::string bytes = read_whole_file(dir + "/good.pt");
  write_file_atomically(dir + "/short.pt", bytes.substr(0, bytes.size() / 2));
  msg = error_of([&] { load_checkpoint(dir + "/short.pt"); });
  EXPECT_NE(msg.find("is not a lowbit checkpoint"), std::string::npos) << msg;
  EXPECT_EQ(read_whole_file(dir + "/short.pt"), bytes.substr(0, bytes.size() / 2));
  EXPECT_NE(error_of([&] { load_checkpoint(dir + "/missing.pt"); }).find("missing.pt"), std::string::npos);

  // A flipped byte anywhere (archive, weights, trailer) is reported, never loaded: 96 positions
  // spread over the file and each of the last 32 bytes (the trailer).
  std::vector<size_t> positions;
  for (size_t i = 0; i < 96; ++i) positions.push_back(i * (bytes.size() - 1) / 95);
  for (size_t at = bytes.size() - 32; at < bytes.size(); ++at) positions.push_back(at);
  int flips = 0;
  for (const size_t at : positions) {
    std::string bad = bytes;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    std::ofstream(dir + "/flipped.pt", std::ios::binary | std::ios::trunc).write(bad.data(), static_cast<std::streamsize>(bad.size()));
    msg = error_of([&] { load_checkpoint(dir + "/flipped.pt"); });
    ASSERT_TRUE(msg.find("is damaged") != std::string::npos || msg.find("is not a lowbit checkpoint") != std::string::npos)
        << "byte " << at << ": " << msg;
    EXPECT_NE(msg.find("flipped.pt"), std::string::npos) << msg;
    ++flips;
  }
  EXPECT_GT(flips, 32);

  // A checkpoint of another model.
  auto cnn = models::make_model("cnn");
  TrainingState s2;
  msg = error_of([&] { restore_checkpoint(dir + "/good.pt", cnn, s2); });
  EXPECT_NE(msg.find("holds model 'mlp', not 'cnn'"), std::string::npos) << msg;
}

TEST(Checkpoint, FailedWriteKeepsThePreviousFile) {
  const auto dir = fresh_test_dir();
  const std::string path = dir + "/checkpoint.pt";
  torch::manual_seed(13);
  auto net = models::make_model("mlp");
  TrainingState state;
  state.config = to_json(tiny_config("mlp", dir));
  state.epoch = 1;
  save_checkpoint(path, net, state);
  const std::string good = read_whole_file(path);
  {
    torch::NoGradGuard g;
    for (auto& p : net->parameters()) p.fill_(0.25);
  }
  state.epoch = 2;
  // A full disk, simulated with a file-size limit below the checkpoint's size (SIGXFSZ ignored so
  // that write() fails with EFBIG instead of killing the process).
  {
    struct rlimit old {};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
    auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = good.size() / 2;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    const std::string msg = error_of([&] { save_checkpoint(path, net, state); });
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_NE(msg.find("checkpoint.pt"), std::string::npos) << msg;
    EXPECT_NE(msg.find("ulimit -f"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unchanged"), std::string::npos) << msg;
  }
  EXPECT_EQ(read_whole_file(path), good);
  EXPECT_EQ(load_checkpoint(path).epoch, 1);
  // A folder that cannot be written: the same promise.
  EXPECT_THROW(save_checkpoint(dir + "/no/such/folder/checkpoint.pt", net, state), Error);
  // No temporary files are left behind.
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  }
  // It still writes normally afterwards.
  save_checkpoint(path, net, state);
  EXPECT_EQ(load_checkpoint(path).epoch, 2);
}

TEST(Checkpoint, QatSectionNeedsTheRebuildHook) {
  auto config = to_json(tiny_config("mlp", "/tmp/x"));
  config["qat"] = {{"bits", 4}};
  set_qat_rebuild_hook(nullptr);
  EXPECT_NE(error_of([&] { build_net(config); }).find("no QAT rebuild hook"), std::string::npos);
  nlohmann::json seen;
  set_qat_rebuild_hook([&](models::Net& net, const nlohmann::json& qat) {
    seen = qat;
    EXPECT_EQ(net->model_name(), "mlp");
  });
  auto net = build_net(config);
  EXPECT_EQ(seen["bits"], 4);
  set_qat_rebuild_hook(nullptr);
  EXPECT_NE(error_of([] { build_net(nlohmann::json{{"epochs", 1}}); }).find("'model'"), std::string::npos);
}

TEST(RunTraining, EndToEndOnSmallIdxFilesAndRefusesToOverwrite) {
  const auto dir = fresh_test_dir();
  lowbit::testing::write_toy_split(dir, "train", 120);
  lowbit::testing::write_toy_split(dir, "t10k", 30);
  TrainConfig c = tiny_config("mlp", dir + "/run");
  c.data_dir = dir;
  c.val_size = 20;
  c.epochs = 1;
  std::ostringstream log;
  RunOptions options;
  options.log = &log;
  const auto r = run_training(c, options);
  ASSERT_TRUE(r.test.has_value());
  EXPECT_EQ(r.test->count, 30);
  EXPECT_NE(log.str().find("test: accuracy"), std::string::npos);
  EXPECT_NE(error_of([&] { run_training(c, options); }).find("--overwrite"), std::string::npos);
  options.resume = true;  // already finished: resuming runs no epoch, only the test
  EXPECT_EQ(run_training(c, options).epochs.size(), 0u);
  TrainConfig fresh = c;
  fresh.out_dir = dir + "/other";
  EXPECT_NE(error_of([&] { run_training(fresh, options); }).find("no checkpoint to resume"), std::string::npos);
}

}  // namespace
}  // namespace lowbit::train
