// `lowbit study ptq-vs-qat`: the PTQ-vs-QAT grid (see analysis/ptq_vs_qat_study.h).
#include <iostream>
#include <memory>

#include "analysis/ptq_vs_qat_study.h"
#include "analysis/winq_study.h"
#include "base/error.h"
#include "cli/commands.h"
#include "cli/data_flags.h"
#include "report/report.h"

namespace lowbit::cli {

void add_study_command(CLI::App& app) {
  auto o = std::make_shared<analysis::StudyOptions>();
  CLI::App* study = app.add_subcommand("study", "Studies that compare quantization methods");
  study->require_subcommand(1);
  CLI::App* cmd = study->add_subcommand(
      "ptq-vs-qat", "Weight bits {8,4,3,2} x {RTN, GPTQ, QAT-STE, QAT-LSQ} from one FP32 checkpoint; table, CSV, JSON");
  cmd->add_option("--model", o->model, "Model (cnn, resnet8, ...); must match --from")->capture_default_str();
  cmd->add_option("--from", o->from, "FP32 checkpoint (default: train one into <out>/fp32)");
  cmd->add_option("--out", o->out_dir, "Output folder (study.json, study.csv, report.html)")->capture_default_str();
  cmd->add_flag("--quick", o->quick, "Tiny subsets and budgets (a test-sized run, seconds)");
  cmd->add_option("--wbits", o->weight_bits, "Weight bit widths of the grid")->check(CLI::Range(2, 8))->capture_default_str();
  cmd->add_option("--abits", o->act_bits, "Activation bits")->check(CLI::Range(2, 8))->capture_default_str();
  cmd->add_option("--qat-steps", o->qat_steps, "Optimizer steps per QAT cell")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--qat-lr", o->qat_lr, "QAT peak learning rate")->capture_default_str();
  cmd->add_option("--fp32-epochs", o->fp32_epochs, "Epochs when training the FP32 model")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--calib-batches", o->calib_batches, "PTQ calibration batches of 128")->check(CLI::PositiveNumber)->capture_default_str();
  add_data_and_layout_flags(cmd, o->data_dir, o->layout);
  cmd->add_option("--threads", o->threads, "CPU threads for torch")->capture_default_str();
  cmd->callback([o] {
    o->log = &std::cerr;
    const analysis::StudyResult r = analysis::run_ptq_vs_qat_study(*o);
    analysis::write_study_files(r, o->out_dir);
    report::write_report({o->out_dir}, o->out_dir + "/report.html");
    std::cout << r.table() << "wrote " << o->out_dir << "/study.json, study.csv and report.html\n";
  });

  auto w = std::make_shared<analysis::WinqStudyOptions>();
  w->out_dir = "runs/study-winq";
  CLI::App* wq = study->add_subcommand(
      "winq", "QAT at 2 / 1.58 / 1-bit weights with and without WinQ at equal steps: accuracy, speed-up, Hessian, loss curves");
  wq->add_option("--model", w->model, "Model (cnn, resnet8, ..., gpt-tiny); must match --from")->capture_default_str();
  wq->add_option("--from", w->from, "FP32 checkpoint (file or run folder)")->required();
  wq->add_option("--out", w->out_dir, "Output folder (study.json, study.csv, table.md, loss_w*.svg, report.html)")->capture_default_str();
  wq->add_option("--bits", w->bits, "Weight bits: 2 (SEQ), 1.58 (ternary), 1 (binary)")
      ->delimiter(',')->check(CLI::IsMember({"2", "1.58", "1"}))->capture_default_str();
  wq->add_option("--seeds", w->seeds, "Seeds per cell (paired: same data order for every variant)")->check(CLI::Range(1, 100))->capture_default_str();
  wq->add_option("--steps", w->steps, "Optimizer steps per run")->check(CLI::Range(2, 10000000))->capture_default_str();
  wq->add_option("--batch-size", w->batch_size, "Training batch size (0: 128 images, or the FP32 gpt-tiny run's batch of windows)")
      ->check(CLI::Range(0, 60000))->capture_default_str();
  wq->add_option("--group-size", w->group_size, "Weight scales per group of this many inputs (0: per output channel)")
      ->check(CLI::Range(0, 4096))->capture_default_str();
  wq->add_option("--lr", w->lr, "AdamW peak learning rate (cosine, 5% warm-up)")->check(CLI::PositiveNumber)->capture_default_str();
  wq->add_option("--abits", w->act_bits, "Activation bits")->check(CLI::Range(2, 8))->capture_default_str();
  wq->add_option("--winq-period", w->winq.period, "WinQ reset period (-1: auto, a quarter of the run)")->capture_default_str();
  wq->add_option("--winq-keep", w->winq.keep, "WinQ keep factor a")->capture_default_str();
  wq->add_option("--winq-noise", w->winq.noise, "WinQ noise sigma")->capture_default_str();
  wq->add_option("--winq-noise-mode", w->winq.noise_mode, "abs or rel")->check(CLI::IsMember({"abs", "rel"}))->capture_default_str();
  wq->add_flag("--ablation", w->ablation, "Also reset-only, noise-only, keep 0.6, period steps/8, noise 4e-3, WinQ keep 0.6");
  wq->add_flag("--quick", w->quick, "Small budgets: at most 60 steps of batch 64, 500 validation images, a small Hessian (minutes)");
  wq->add_flag("!--no-hessian", w->hessian, "Skip the Hessian measurements");
  wq->add_option("--hessian-probes", w->hessian_probes, "SLQ / Hutchinson probes")->check(CLI::Range(1, 1000))->capture_default_str();
  wq->add_option("--hessian-lanczos-steps", w->hessian_lanczos_steps, "Lanczos steps")->check(CLI::Range(2, 1000))->capture_default_str();
  wq->add_option("--hessian-batches", w->hessian_batches, "Batches of the Hessian loss")->check(CLI::Range(1, 100))->capture_default_str();
  wq->add_option("--hessian-batch-size", w->hessian_batch_size, "Images (gpt-tiny: text windows) per Hessian batch (--quick: at most 32)")
      ->check(CLI::Range(1, 60000))->capture_default_str();
  wq->add_option("--threshold", w->hessian_threshold, "Near-zero threshold on |lambda|")->check(CLI::PositiveNumber)->capture_default_str();
  wq->add_option("--val-images", w->val_images, "Validation images (gpt-tiny: text windows) for the final loss / accuracy")->check(CLI::Range(1, 5000))->capture_default_str();
  add_data_and_layout_flags(wq, w->data_dir, w->layout);
  wq->add_option("--threads", w->threads, "CPU threads for torch")->check(CLI::Range(1, 1024))->capture_default_str();
  wq->callback([w] {
    try {
      w->winq.validate();
    } catch (const Error& e) {
      throw CLI::ValidationError(e.what());
    }
    w->log = &std::cerr;
    const analysis::WinqStudyResult r = analysis::run_winq_study(*w);
    analysis::write_winq_study_files(r, w->out_dir);
    report::write_report({w->out_dir}, w->out_dir + "/report.html");
    std::cout << r.table() << "wrote " << w->out_dir << "/study.json, study.csv, table.md, loss_w*.svg, report.html\n";
  });
}

}  // namespace lowbit::cli
