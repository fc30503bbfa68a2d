// `lowbit convert`: a QAT/PTQ checkpoint -> an integer runtime model file (.lbq), checked
// against the integer simulation on test images before it is written.
#include <iostream>
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "convert/agreement.h"
#include "data/fashion_mnist.h"
#include "convert/to_runtime.h"
#include "runtime/model_file.h"
#include "runtime/model_tools.h"
#include "train/checkpoint.h"

namespace lowbit::cli {
namespace {

struct ConvertArgs {
  std::string from;
  std::string out;
  std::string data_dir;
  int64_t check = 1000;
};

void run(const ConvertArgs& args) {
  models::Net net = train::load_net(args.from);
  const runtime::Model model = convert::to_runtime_model(net, net->model_name() + " from " + args.from);
  if (args.check > 0) {
    data::Dataset test = data::load_fashion_mnist(data::resolve_data_dir(args.data_dir), "test");
    const int64_t n = std::min<int64_t>(args.check, test.size());
    test.images = test.images.narrow(0, 0, n);
    test.labels = test.labels.narrow(0, 0, n);
    runtime::Session session(model, session_options(2));
    const convert::Agreement a = convert::compare_with_simulation(model, convert::evaluate_runtime(session, test), test);
    LOWBIT_CHECK(a.int_logits_equal == a.count,
                 "convert: the runtime disagrees with the integer simulation on " +
                     std::to_string(a.count - a.int_logits_equal) + " of " + std::to_string(a.count) +
                     " test images; the model file was not written (please report this as a bug)");
    std::cout << "checked: runtime integer logits equal the integer simulation on " << a.count << "/" << a.count
              << " test images (" << session.kernel_names().size() << " ops, isa " << runtime::isa_name(session.isa())
              << ")\n";
  }
  runtime::save_model(model, args.out);
  std::cout << "wrote " << args.out << "\n" << runtime::describe_model(model);
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand("convert", "Convert a QAT or PTQ checkpoint to an integer runtime model (.lbq)");
  cmd->add_option("--from", args->from, "QAT/PTQ checkpoint (file or run folder)")->required();
  cmd->add_option("--out", args->out, "Model file to write (.lbq)")->required();
  cmd->add_option("--data", args->data_dir, "Fashion-MNIST folder for the check");
  cmd->add_option("--check", args->check, "Test images on which runtime and integer simulation must agree (0: skip)")
      ->capture_default_str();
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
