// `lowbit report` from small synthetic run and study folders: the page is well formed, holds the
// expected figures and tables, skips what is absent, and bad input fails with a clear message.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "base/error.h"
#include "report/report.h"
#include "report/run_provenance.h"
#include "report/svg_plot.h"
#include "report/xml_checker.h"  // tests/report
#include "runtime/model_file.h"
#include "runtime/deployment_metrics.h"
#include "runtime/test_models.h"

namespace lowbit::report {
namespace {

namespace fs = std::filesystem;
using lowbit::testing::check_xml;

std::string fresh_dir() {
  const char* env = std::getenv("LOWBIT_TEST_TMP");
  const std::string base = (env != nullptr && env[0] != '\0') ? env : "/tmp/lowbit_test";
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = base + "/report_" + info->test_suite_name() + "_" + info->name();
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void put(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  write_file_atomically(path, text);
}

// A run folder as `lowbit train` / `lowbit qat` write it, with `epochs` epochs of 50 steps.
void make_run(const std::string& dir, int weight_bits, int epochs, bool torn_last_line = false) {
  std::string config = R"({"model": "cnn", "epochs": )" + std::to_string(epochs) +
                       R"(, "batch_size": 128, "optimizer": "adamw", "lr": 0.001, "data_dir": "")";
  if (weight_bits > 0)
    config += R"(, "qat": {"quantize": true, "weight_bits": )" + std::to_string(weight_bits) +
              R"(, "weight_format": "int", "weight_granularity": "channel", "weight_estimator": "lsq",
                  "act_bits": 4, "act_estimator": "lsq"})";
  config += R"(, "provenance": {"command": "lowbit train --out 'runs/my run'", "host": "box-7", "cpu": "Test CPU",
              "logical_cores": 2, "isa": "avx2", "os": "Linux 6.1 x86_64", "date_utc": "2026-12-01T22:00:00Z"})";
  put(dir + "/config.json", config + "}\n");
  std::string metrics;
  for (int e = 1; e <= epochs; ++e) {
    const double loss = 1.0 / e;
    metrics += "{\"epoch\":" + std::to_string(e) + ",\"step\":" + std::to_string(50 * e) +
               ",\"train_loss\":" + std::to_string(loss + 0.05) + ",\"train_acc\":" + std::to_string(0.8 + 0.02 * e) +
               ",\"val_loss\":" + std::to_string(loss) + ",\"val_acc\":" + std::to_string(0.81 + 0.02 * e) +
               ",\"seconds\":2.5}\n";
  }
  metrics += "{\"epoch\":" + std::to_string(epochs) + ",\"step\":" + std::to_string(50 * epochs) +
             ",\"test_acc\":0.875,\"test_loss\":0.35,\"test_count\":10000}\n";
  if (torn_last_line) metrics += "{\"epoch\":9,\"st";
  put(dir + "/metrics.jsonl", metrics);
}

void make_ptq_vs_qat_study(const std::string& dir) {
  std::string cells;
  for (int bits : {8, 4, 2})
    for (const char* m : {"rtn", "gptq", "qat-ste", "qat-lsq"})
      cells += std::string(cells.empty() ? "" : ",") + R"({"weight_bits":)" + std::to_string(bits) +
               R"(,"method":")" + m + R"(","accuracy":)" + std::to_string(0.1 * bits / 8 + 0.8) +
               R"(,"loss":0.4,"seconds":1.0})";
  put(dir + "/study.json", R"({"study":"ptq-vs-qat","model":"cnn","fp32_accuracy":0.9,"fp32_loss":0.3,"act_bits":8,
      "qat_steps":100,"test_images":1000,"cells":[)" + cells + "]}\n");
}

void make_basin(const std::string& path) {
  put(path, R"({"analysis":"basin","options":{"weight_bits":2,"epsilon":0.05},"fp32_loss":0.3,"fp32_accuracy":0.9,
      "methods":[{"method":"rtn","segment":[{"alpha":0,"loss":0.3,"accuracy":0.9},{"alpha":0.5,"loss":0.9,"accuracy":0.7},
                                              {"alpha":1,"loss":2.0,"accuracy":0.3}],"layers":[]}],
      "qat":{"steps":[{"step":0,"inward_cosine":0.1,"deployed_loss":2.0},{"step":10,"inward_cosine":0.2,"deployed_loss":null},
                      {"step":20,"inward_cosine":0.3,"deployed_loss":0.31}],"first_step_within":20}})");
}

void make_winq_study(const std::string& dir) {
  std::string runs;
  for (const char* v : {"baseline", "winq"}) {
    std::string losses;
    for (int k = 0; k < 2000; ++k) losses += std::string(k ? "," : "") + std::to_string(2.0 / (1 + 0.01 * k));
    runs += std::string(runs.empty() ? "" : ",") + R"({"bits":"2","variant":")" + v +
            R"(","seed":0,"val_acc":0.8,"val_loss":0.5,"train_losses":[)" + losses + "]}";
  }
  put(dir + "/study.json", R"({"study":"winq","model":"cnn","settings":{"steps":2000,"seeds":1,"smoothing_window":50},
      "summary":[{"bits":"2","variant":"baseline","mean_val_acc":0.8,"mean_val_loss":0.5,"speedup_on_mean_curves":null},
                 {"bits":"2","variant":"winq","mean_val_acc":0.82,"mean_val_loss":0.45,"speedup_on_mean_curves":1.4}],
      "runs":[)" + runs + "]}\n");
}

void make_hessian(const std::string& dir) {
  put(dir + "/summary.json", R"({"model":"cnn","top_eigenvalue":12.5,"trace":40.0,"near_zero_fraction":0.6,
      "parameter_count":1000})");
  std::string csv = "eigenvalue,density\n";
  for (int i = 0; i < 50; ++i) csv += std::to_string(-1.0 + 0.3 * i) + "," + std::to_string(1e-3 + (i == 5 ? 2.0 : 0.01)) + "\n";
  put(dir + "/density.csv", csv);
}

// A gpt-tiny run: metrics per evaluation interval in bits per byte.
void make_lm_run(const std::string& dir) {
  put(dir + "/config.json", R"({"model": "gpt-tiny", "epochs": 1, "batch_size": 8, "optimizer": "adamw", "lr": 0.001,
      "lm": {"layers": 2, "width": 32, "heads": 4, "context": 32}})");
  std::string metrics;
  for (int k = 1; k <= 3; ++k)
    metrics += "{\"epoch\":1,\"step\":" + std::to_string(10 * k) + ",\"train_loss\":" + std::to_string(3.0 / k) +
               ",\"train_bits_per_byte\":" + std::to_string(3.0 / k / std::log(2.0)) + ",\"train_acc\":0.3,\"val_loss\":" +
               std::to_string(3.1 / k) + ",\"val_bits_per_byte\":" + std::to_string(3.1 / k / std::log(2.0)) +
               ",\"val_acc\":0.35,\"seconds\":1.0}\n";
  put(dir + "/metrics.jsonl", metrics);
}

// `lowbit eval --shift ... --out FILE` of a checkpoint; `drop` lowers every shifted accuracy.
void make_robustness(const std::string& path, const std::string& checkpoint, double drop) {
  std::string shifted;
  for (const char* c : {"gaussian_noise", "rotate"})
    for (int sev = 1; sev <= 3; ++sev)
      shifted += std::string(shifted.empty() ? "" : ",") + R"({"corruption":")" + c + R"(","severity":)" +
                 std::to_string(sev) + R"(,"count":100,"accuracy":)" + std::to_string(0.9 - drop * sev) +
                 R"(,"loss":0.5,"ece":0.05})";
  put(path, R"({"analysis":"robustness","checkpoint":")" + checkpoint + R"(","model":"cnn","split":"test","seed":0,
      "clean":{"corruption":"clean","severity":0,"count":100,"accuracy":0.91,"loss":0.3,"ece":0.02},
      "mean_corruption_accuracy":0.7,"mean_corruption_ece":0.06,"shifted":[)" + shifted + "]}\n");
}

void make_sensitivity(const std::string& path) {
  std::string layers;
  for (int k = 0; k < 4; ++k)
    layers += std::string(layers.empty() ? "" : ",") + R"({"name":"conv)" + std::to_string(k) +
              R"(","params":)" + std::to_string(1000 * (k + 1)) + R"(,"macs":)" + std::to_string(50000 * (k + 1)) +
              R"(,"hessian_trace":)" + (k == 2 ? std::string("null") : std::to_string(10.0 * (k + 1))) +
              R"(,"weights":[{"format":"int","bits":4,"loss":0.31,"delta_loss":)" + std::to_string(0.001 * (k + 1)) +
              R"(,"accuracy":0.9},{"format":"ternary","bits":2,"loss":0.5,"delta_loss":)" + std::to_string(0.2 * (k + 1)) +
              R"(,"accuracy":0.8}],"activations":[{"bits":4,"loss":0.32,"delta_loss":)" + (k == 0 ? "-0.001" : "0.01") +
              R"(,"accuracy":0.89}]})";
  put(path, R"({"analysis":"sensitivity","checkpoint":"runs/cnn-fp32","model":"cnn","method":"rtn","fp_loss":0.3,
      "fp_accuracy":0.91,"layers":[)" + layers + "]}\n");
}

std::string mixed_point(const std::string& label, double bits, double delta, int wbits) {
  std::string layers;
  for (int k = 0; k < 3; ++k)
    layers += std::string(layers.empty() ? "" : ",") + R"({"name":"conv)" + std::to_string(k) +
              R"(","weight_format":"int","weight_bits":)" + std::to_string(k == 0 ? 8 : wbits) + R"(,"act_bits":8})";
  return R"({"label":")" + label + R"(","bytes":)" + std::to_string(bits * 1000) + R"(,"bits_per_param":)" +
         std::to_string(bits) + R"(,"bops":1e9,"latency_ms":null,"predicted_delta_loss":)" + std::to_string(delta) +
         R"(,"layers":[)" + layers + "]}";
}

void make_mixed(const std::string& path, const std::string& pareto_qat) {
  std::string front;
  for (int k = 0; k < 6; ++k)
    front += std::string(front.empty() ? "" : ",") + mixed_point("f" + std::to_string(k), 2.0 + k, 0.5 / (1 + k * k), 4);
  put(path, R"({"analysis":"mixed-precision","from":"runs/sensitivity.json","budget":{"kind":"bits","value":4.5},
      "layers":[{"name":"conv0","params":100,"macs":1000},{"name":"conv1","params":2000,"macs":9000},
                {"name":"conv2","params":3000,"macs":9000}],
      "choice":)" + mixed_point("mixed", 4.4, 0.02, 4) + R"(,"uniform":[)" + mixed_point("W8A8", 8, 0.001, 8) + "," +
                mixed_point("W4A8", 4, 0.05, 4) + R"(],"front":[)" + front + "]" + pareto_qat + "}\n");
}

void make_profile(const std::string& path) {
  std::string batches;
  for (int b : {1, 8}) {
    std::string ops;
    for (int k = 0; k < 4; ++k)
      ops += std::string(ops.empty() ? "" : ",") + R"({"index":)" + std::to_string(k) + R"(,"node":"n)" +
             std::to_string(k) + R"(","kind":"conv2d","kernel":"s8_conv_avx2","ms":)" + std::to_string(0.01 * b * (k + 1)) + "}";
    batches += std::string(batches.empty() ? "" : ",") + R"({"batch":)" + std::to_string(b) + R"(,"ops":[)" + ops +
               R"(],"total_ms":)" + std::to_string(0.1 * b) + "}";
  }
  put(path, R"({"model":"cnn-w4a4.lbq","threads":1,"isa":"avx2","profile":[)" + batches + "]}\n");
}

TEST(Report, FullPageIsWellFormedAndHoldsEveryFigure) {
  const std::string d = fresh_dir();
  make_run(d + "/runs/cnn-fp32", 0, 3);
  make_run(d + "/runs/cnn-w4a4", 4, 2, /*torn_last_line=*/true);
  runtime::save_model(runtime::rtest::random_graph(7), d + "/runs/cnn-w4a4.lbq");
  make_ptq_vs_qat_study(d + "/study");
  make_basin(d + "/basin.json");
  make_winq_study(d + "/study-winq");
  make_hessian(d + "/hess");
  make_lm_run(d + "/runs/gpt");
  make_robustness(d + "/robust/fp32.json", d + "/runs/cnn-fp32/checkpoint.pt", 0.05);
  make_robustness(d + "/robust/w4a4.json", d + "/runs/cnn-w4a4", 0.1);
  make_sensitivity(d + "/mixed/sensitivity.json");
  make_mixed(d + "/mixed/mixed_search.json", R"(,"pareto_qat":[{"point":1,"accuracy":0.88,"loss":0.4},{"point":4,"accuracy":0.9,"loss":0.35}])");
  make_profile(d + "/profile.json");
  const std::string out = d + "/report.html";
  const size_t bytes = write_report({d + "/runs", d + "/study", d + "/basin.json", d + "/study-winq", d + "/hess",
                                     d + "/robust", d + "/mixed", d + "/profile.json"}, out);
  const std::string html = read_whole_file(out);
  EXPECT_EQ(bytes, html.size());

  const auto check = check_xml(html);
  ASSERT_EQ(check.error, "") << html.substr(0, 2000);
  for (const char* id : {"runs", "training", "fig-loss", "fig-accuracy", "deployment", "ptq-vs-qat", "fig-ptq-vs-qat-0",
                         "basin", "fig-basin-segment-0", "fig-basin-qat-0", "winq", "fig-winq-w2-0", "hessian",
                         "fig-hessian-0", "language-models", "fig-lm-bits-per-byte", "fig-lm-accuracy", "robustness",
                         "fig-robustness-mean", "fig-robustness-gaussian-noise", "fig-robustness-rotate", "sensitivity",
                         "fig-sensitivity-loss-0", "fig-sensitivity-hessian-0", "mixed-precision", "fig-mixed-front-0",
                         "fig-mixed-qat-0", "fig-mixed-bits-0", "latency", "fig-latency-0"})
    EXPECT_TRUE(check.ids.count(id)) << "missing id " << id;
  // Each SVG carries its title; the run names are legend entries.
  EXPECT_NE(std::find(check.titles.begin(), check.titles.end(),
                      "Accuracy: training (dashed) and validation (solid)"),
            check.titles.end());
  EXPECT_NE(html.find("cnn-fp32 validation"), std::string::npos);
  EXPECT_NE(html.find("cnn-w4a4 train"), std::string::npos);
  // Command and machine of each run, the command as recorded (shell-quoted).
  EXPECT_NE(html.find("Command and machine"), std::string::npos);
  EXPECT_NE(html.find("lowbit train --out 'runs/my run'"), std::string::npos);
  EXPECT_NE(html.find("box-7"), std::string::npos);
  EXPECT_NE(html.find("Test CPU"), std::string::npos);
  // The gpt-tiny run is on its own axes, not on the image runs' loss plot.
  const size_t loss_fig = html.find("id=\"fig-loss\""), loss_end = html.find("</figure>", loss_fig);
  EXPECT_EQ(html.substr(loss_fig, loss_end - loss_fig).find("gpt validation"), std::string::npos);
  const size_t lm_fig = html.find("id=\"fig-lm-bits-per-byte\"");
  EXPECT_NE(html.substr(lm_fig, html.find("</figure>", lm_fig) - lm_fig).find("gpt validation"), std::string::npos);
  // Robustness: labelled by the run folder of the checkpoint; the mean corruption accuracy in the table.
  EXPECT_NE(html.find("70.00%"), std::string::npos);
  // Sensitivity table names the layers; the mixed-precision table names the uniform points.
  EXPECT_NE(html.find("<td>conv3</td>"), std::string::npos);
  EXPECT_NE(html.find("uniform W4A8"), std::string::npos);
  EXPECT_NE(html.find("s8_conv_avx2"), std::string::npos);
  // The torn last line of metrics.jsonl is ignored, the test line is read: 87.50% (10,000).
  EXPECT_NE(html.find("87.50% (10,000)"), std::string::npos);
  // Deployment table: the .lbq beside the run folder, with the runtime's own totals.
  const runtime::ModelMetrics t = runtime::model_metrics(runtime::rtest::random_graph(7));
  EXPECT_NE(html.find("cnn-w4a4.lbq"), std::string::npos);
  char bpp[32];
  std::snprintf(bpp, sizeof bpp, "%.3f", t.bits_per_parameter);
  EXPECT_NE(html.find(bpp), std::string::npos) << bpp;
  std::snprintf(bpp, sizeof bpp, "%.3f µJ", t.energy_pj / 1e6);
  EXPECT_NE(html.find(bpp), std::string::npos) << bpp;
  // Self-contained: no script, no external resource.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  // The WinQ curves (2,000 steps each) are thinned: the page stays small.
  EXPECT_LT(html.size(), 200u * 1024u);
}

TEST(Report, OneRunGivesOnlyItsSections) {
  const std::string d = fresh_dir();
  make_run(d + "/cnn-fp32", 0, 2);
  const ReportInputs in = load_report_inputs({d + "/cnn-fp32"});
  ASSERT_EQ(in.runs.size(), 1u);
  EXPECT_EQ(in.runs[0].epochs.size(), 2u);
  const std::string html = render_report_html(in, {});
  const auto check = check_xml(html);
  ASSERT_EQ(check.error, "");
  EXPECT_TRUE(check.ids.count("fig-loss"));
  for (const char* id : {"deployment", "ptq-vs-qat", "basin", "winq", "hessian"}) EXPECT_FALSE(check.ids.count(id)) << id;
}

TEST(Report, ColoursFollowTheRunAcrossPlots) {
  const std::string d = fresh_dir();
  make_run(d + "/a", 0, 2);
  make_run(d + "/b", 4, 2);
  const std::string html = render_report_html(load_report_inputs({d + "/a", d + "/b"}), {});
  // Run b is the second run: the palette's second colour in its table swatch and in both plots.
  const std::string second = plot_color(1);
  size_t count = 0;
  for (size_t p = html.find("stroke=\"" + second + "\""); p != std::string::npos;
       p = html.find("stroke=\"" + second + "\"", p + 1))
    ++count;
  EXPECT_GE(count, 4u);  // train + validation curves in the loss and the accuracy plot
  EXPECT_NE(html.find("background:" + second), std::string::npos);
}

TEST(Report, RobustnessCurvesTakeTheRunColours) {
  const std::string d = fresh_dir();
  make_run(d + "/a", 0, 2);
  make_run(d + "/b", 4, 2);
  make_robustness(d + "/rb.json", d + "/b/checkpoint.pt", 0.1);
  make_robustness(d + "/ra.json", d + "/a", 0.05);
  const ReportInputs in = load_report_inputs({d + "/a", d + "/b", d + "/rb.json", d + "/ra.json"});
  ASSERT_EQ(in.robustness.size(), 2u);
  const std::string html = render_report_html(in, {});
  ASSERT_EQ(check_xml(html).error, "");
  // Run b is the second run: its robustness curves use its colour, in every corruption's plot.
  const size_t fig = html.find("id=\"fig-robustness-rotate\"");
  ASSERT_NE(fig, std::string::npos);
  const std::string rotate = html.substr(fig, html.find("</figure>", fig) - fig);
  EXPECT_NE(rotate.find("stroke=\"" + plot_color(1) + "\""), std::string::npos);
  EXPECT_NE(rotate.find("stroke=\"" + plot_color(0) + "\""), std::string::npos);
  EXPECT_NE(rotate.find(">b</text>"), std::string::npos);  // legend: the run's name
}

TEST(Report, AnalysisFilesAreRecognisedByContent) {
  const std::string d = fresh_dir();
  make_sensitivity(d + "/any-name.json");
  make_profile(d + "/p/bench.json");
  put(d + "/p/other.json", R"({"accuracy": 0.9})");  // lowbit eval --json: not an analysis, ignored
  const ReportInputs in = load_report_inputs({d + "/any-name.json", d + "/p"});
  EXPECT_EQ(in.sensitivity.size(), 1u);
  EXPECT_EQ(in.profile.size(), 1u);
  const std::string html = render_report_html(in, {});
  const auto check = check_xml(html);
  ASSERT_EQ(check.error, "");
  for (const char* id : {"sensitivity", "fig-sensitivity-loss-0", "latency", "fig-latency-0"}) EXPECT_TRUE(check.ids.count(id)) << id;
  EXPECT_FALSE(check.ids.count("mixed-precision"));
  // A mixed-precision result without measured QAT: no QAT plot.
  make_mixed(d + "/m.json", "");
  const auto check2 = check_xml(render_report_html(load_report_inputs({d + "/m.json"}), {}));
  ASSERT_EQ(check2.error, "");
  EXPECT_TRUE(check2.ids.count("fig-mixed-front-0"));
  EXPECT_FALSE(check2.ids.count("fig-mixed-qat-0"));
}

TEST(Report, BadInputFailsClearly) {
  const std::string d = fresh_dir();
  auto message = [](const std::vector<std::string>& paths) {
    try {
      load_report_inputs(paths);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({d + "/missing"}).find("does not exist"), std::string::npos);
  fs::create_directories(d + "/empty/sub");
  put(d + "/empty/notes.txt", "hello");
  const std::string nothing = message({d + "/empty"});
  EXPECT_NE(nothing.find("nothing to report in"), std::string::npos) << nothing;
  EXPECT_NE(nothing.find("config.json"), std::string::npos) << nothing;  // says what is expected
  put(d + "/badrun/config.json", "{\"model\": ");
  const std::string bad = message({d + "/badrun"});
  EXPECT_NE(bad.find("badrun/config.json is not valid JSON"), std::string::npos) << bad;
  put(d + "/hess/summary.json", "{}");
  put(d + "/hess/density.csv", "eigenvalue,density\n1,2\nx,y\n");
  EXPECT_NE(message({d + "/hess"}).find("density.csv line 3"), std::string::npos);
  put(d + "/broken.lbq", "not a model");
  EXPECT_NE(message({d + "/broken.lbq"}).find("broken.lbq"), std::string::npos);
  // Analysis JSONs missing what their section reads: the file and the key are named.
  put(d + "/sens.json", R"({"analysis":"sensitivity","model":"cnn"})");
  const std::string sens = message({d + "/sens.json"});
  EXPECT_NE(sens.find("sens.json"), std::string::npos) << sens;
  EXPECT_NE(sens.find("'layers'"), std::string::npos) << sens;
  put(d + "/prof/profile.json", R"({"model":"m","threads":1,"isa":"ref","profile":[{"batch":1,"ops":[{"node":"n0"}]}]})");
  const std::string prof = message({d + "/prof"});
  EXPECT_NE(prof.find("profile.json"), std::string::npos) << prof;
  EXPECT_NE(prof.find("'ms'"), std::string::npos) << prof;
  make_mixed(d + "/mixed.json", R"(,"pareto_qat":[{"point":17,"accuracy":0.9,"loss":0.3}])");
  const std::string mixed = message({d + "/mixed.json"});
  EXPECT_NE(mixed.find("mixed.json"), std::string::npos) << mixed;
  EXPECT_NE(mixed.find("pareto_qat"), std::string::npos) << mixed;
  put(d + "/rob.json", R"({"analysis":"robustness","clean":{"accuracy":0.9},"shifted":[{"corruption":"rotate"}]})");
  const std::string rob = message({d + "/rob.json"});
  EXPECT_NE(rob.find("rob.json"), std::string::npos) << rob;
  EXPECT_NE(rob.find("'severity'"), std::string::npos) << rob;
  EXPECT_THROW(write_report({d + "/empty"}, d + "/r.html"), Error);
  EXPECT_FALSE(fs::exists(d + "/r.html"));  // nothing written on error
}

TEST(SvgPlot, ThinsLongSeriesAndKeepsSpikes) {
  PlotSeries s;
  for (int i = 0; i < 10000; ++i) {
    s.x.push_back(i);
    s.y.push_back(i == 5000 ? 100.0 : 1.0);
  }
  PlotOptions o;
  o.title = "t";
  o.max_points = 200;
  o.markers = true;
  const std::string svg = line_plot_svg({s}, o);
  ASSERT_EQ(check_xml(svg).error, "");
  size_t circles = 0;
  for (size_t p = svg.find("<circle"); p != std::string::npos; p = svg.find("<circle", p + 1)) ++circles;
  EXPECT_LE(circles, 202u);
  EXPECT_GE(circles, 100u);
  // The single spike (y = 100 among ones) survives the thinning: some marker is drawn that high.
  auto min_cy = [](const std::string& text) {
    double m = 1e9;
    for (size_t p = text.find("cy=\""); p != std::string::npos; p = text.find("cy=\"", p + 1))
      m = std::min(m, std::stod(text.substr(p + 4)));
    return m;
  };
  o.max_points = 100000;
  EXPECT_EQ(min_cy(svg), min_cy(line_plot_svg({s}, o)));
}

TEST(SvgPlot, EscapesTextAndRejectsMismatchedSeries) {
  PlotSeries s{"a<b & \"c\"", {1, 2}, {3, 4}};
  PlotOptions o;
  o.title = "x < y";
  o.id = "fig-x";
  const std::string svg = line_plot_svg({s}, o);
  const auto check = check_xml(svg);
  ASSERT_EQ(check.error, "");
  EXPECT_TRUE(check.ids.count("fig-x"));
  EXPECT_NE(svg.find("a&lt;b &amp; &quot;c&quot;"), std::string::npos);
  PlotSeries bad{"bad", {1, 2, 3}, {1}};
  EXPECT_THROW(line_plot_svg({bad}, o), Error);
  PlotSeries empty{"empty", {}, {}};
  EXPECT_THROW(line_plot_svg({empty}, o), Error);
}

TEST(SvgPlot, BarsAndPointOnlySeries) {
  PlotSeries bars{"ms", {1, 2, 3}, {0.5, 2.0, 1.0}, "#123456"};
  bars.bars = true;
  PlotSeries bars2{"ms 2", {1, 2, 3}, {1.0, 1.0, 1.0}, "#654321"};
  bars2.bars = true;
  PlotSeries dots{"uniform", {1.5, 2.5}, {1.0, 1.5}, "#abcdef"};
  dots.line = false;
  PlotOptions o;
  o.title = "bars";
  const std::string svg = line_plot_svg({bars, bars2, dots}, o);
  ASSERT_EQ(check_xml(svg).error, "");
  auto count = [&](const std::string& what) {
    size_t n = 0;
    for (size_t p = svg.find(what); p != std::string::npos; p = svg.find(what, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("fill=\"#123456\""), 4u);  // three bars and the legend's mark
  EXPECT_EQ(count("fill=\"#654321\""), 4u);
  EXPECT_EQ(count("<polyline"), 0u);          // no series is drawn as a line
  EXPECT_EQ(count("fill=\"#abcdef\""), 3u);   // two dots and the legend's dot
  // Side by side: the two bars at x = 1 do not start at the same x.
  const size_t a = svg.find("fill=\"#123456\""), b = svg.find("fill=\"#654321\"");
  const auto x_of = [&](size_t at) { return std::stod(svg.substr(svg.rfind("<rect x=\"", at) + 9)); };
  EXPECT_LT(x_of(a), x_of(b));
}

TEST(RunProvenance, QuotesArgumentsForTheShell) {
  EXPECT_EQ(shell_quote("--out=runs/cnn-w4a4"), "--out=runs/cnn-w4a4");
  EXPECT_EQ(shell_quote("my run"), "'my run'");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$HOME"), "'$HOME'");
  EXPECT_EQ(shell_quote("fc*"), "'fc*'");
  EXPECT_EQ(shell_quote("~/x"), "'~/x'");
  EXPECT_EQ(shell_command({"lowbit", "analyze", "--layers", "fc*", "--out", "a b"}),
            "lowbit analyze --layers 'fc*' --out 'a b'");
}

TEST(RunProvenance, RecordsCommandAndMachine) {
  const char* argv[] = {"lowbit", "train", "--out", "runs/x y"};
  set_command_line(4, argv);
  const nlohmann::json p = run_provenance();
  EXPECT_EQ(p["command"], "lowbit train --out 'runs/x y'");
  EXPECT_EQ(p["argv"].size(), 4u);
  EXPECT_TRUE(p["host"].is_string());
  EXPECT_GE(p["logical_cores"].get<int>(), 1);
  EXPECT_TRUE(p["isa"].is_string());
  EXPECT_TRUE(p["os"].is_string());
  const std::string date = p["date_utc"].get<std::string>();
  EXPECT_EQ(date.size(), 20u);
  EXPECT_EQ(date.back(), 'Z');
  const nlohmann::json c = with_provenance({{"model", "cnn"}});
  EXPECT_EQ(c["model"], "cnn");
  EXPECT_EQ(c["provenance"]["command"], p["command"]);
}

TEST(XmlChecker, CatchesWhatTheReportMustNotContain) {
  EXPECT_EQ(check_xml("<a><b/></a>").error, "");
  EXPECT_NE(check_xml("<a><b></a>").error, "");
  EXPECT_NE(check_xml("<a>").error, "");
  EXPECT_NE(check_xml("<a>x < y</a>").error, "");
  EXPECT_NE(check_xml("<a>fish & chips</a>").error, "");
  EXPECT_NE(check_xml("<a x=1></a>").error, "");
  EXPECT_NE(check_xml("<a id=\"p\"/><b id=\"p\"/>").error, "");
}

}  // namespace
}  // namespace lowbit::report
