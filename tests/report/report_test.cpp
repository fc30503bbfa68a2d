// `lowbit report` from small synthetic run and study folders: the page is well formed, holds the
// expected figures and tables, skips what is absent, and bad input fails with a clear message.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "base/error.h"
#include "report/report.h"
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

TEST(Report, FullPageIsWellFormedAndHoldsEveryFigure) {
  const std::string d = fresh_dir();
  make_run(d + "/runs/cnn-fp32", 0, 3);
  make_run(d + "/runs/cnn-w4a4", 4, 2, /*torn_last_line=*/true);
  runtime::save_model(runtime::rtest::random_graph(7), d + "/runs/cnn-w4a4.lbq");
  make_ptq_vs_qat_study(d + "/study");
  make_basin(d + "/basin.json");
  make_winq_study(d + "/study-winq");
  make_hessian(d + "/hess");
  const std::string out = d + "/report.html";
  const size_t bytes = write_report({d + "/runs", d + "/study", d + "/basin.json", d + "/study-winq", d + "/hess"}, out);
  const std::string html = read_whole_file(out);
  EXPECT_EQ(bytes, html.size());

  const auto check = check_xml(html);
  ASSERT_EQ(check.error, "") << html.substr(0, 2000);
  for (const char* id : {"runs", "training", "fig-loss", "fig-accuracy", "deployment", "ptq-vs-qat", "fig-ptq-vs-qat-0",
                         "basin", "fig-basin-segment-0", "fig-basin-qat-0", "winq", "fig-winq-w2-0", "hessian",
                         "fig-hessian-0"})
    EXPECT_TRUE(check.ids.count(id)) << "missing id " << id;
  // Each SVG carries its title; the run names are legend entries.
  EXPECT_NE(std::find(check.titles.begin(), check.titles.end(),
                      "Accuracy: training (dashed) and validation (solid)"),
            check.titles.end());
  EXPECT_NE(html.find("cnn-fp32 validation"), std::string::npos);
  EXPECT_NE(html.find("cnn-w4a4 train"), std::string::npos);
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
