// `lowbit study ptq-vs-qat`: the PTQ-vs-QAT grid (see analysis/ptq_vs_qat_study.h).
#include <iostream>
#include <memory>

#include "analysis/ptq_vs_qat_study.h"
#include "cli/commands.h"

namespace lowbit::cli {

void add_study_command(CLI::App& app) {
  auto o = std::make_shared<analysis::StudyOptions>();
  CLI::App* study = app.add_subcommand("study", "Studies that compare quantization methods");
  study->require_subcommand(1);
  CLI::App* cmd = study->add_subcommand(
      "ptq-vs-qat", "Weight bits {8,4,3,2} x {RTN, GPTQ, QAT-STE, QAT-LSQ} from one FP32 checkpoint; table, CSV, JSON");
  cmd->add_option("--model", o->model, "Model (cnn, resnet8, ...); must match --from")->capture_default_str();
  cmd->add_option("--from", o->from, "FP32 checkpoint (default: train one into <out>/fp32)");
  cmd->add_option("--out", o->out_dir, "Output folder (study.json, study.csv)")->capture_default_str();
  cmd->add_flag("--quick", o->quick, "Tiny subsets and budgets (a test-sized run, seconds)");
  cmd->add_option("--wbits", o->weight_bits, "Weight bit widths of the grid")->check(CLI::Range(2, 8))->capture_default_str();
  cmd->add_option("--abits", o->act_bits, "Activation bits")->check(CLI::Range(2, 8))->capture_default_str();
  cmd->add_option("--qat-steps", o->qat_steps, "Optimizer steps per QAT cell")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--qat-lr", o->qat_lr, "QAT peak learning rate")->capture_default_str();
  cmd->add_option("--fp32-epochs", o->fp32_epochs, "Epochs when training the FP32 model")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--calib-batches", o->calib_batches, "PTQ calibration batches of 128")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--data", o->data_dir, "Fashion-MNIST folder (default: $LOWBIT_DATA or /usr/share/datasets/fashion-mnist)");
  cmd->add_option("--threads", o->threads, "CPU threads for torch")->capture_default_str();
  cmd->callback([o] {
    o->log = &std::cerr;
    const analysis::StudyResult r = analysis::run_ptq_vs_qat_study(*o);
    analysis::write_study_files(r, o->out_dir);
    std::cout << r.table() << "wrote " << o->out_dir << "/study.json and study.csv\n";
  });
}

}  // namespace lowbit::cli
