#include "report/report_inputs.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "runtime/decoder_model_file.h"
#include "runtime/model_file.h"
#include "runtime/deployment_metrics.h"

namespace lowbit::report {
namespace fs = std::filesystem;
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

nlohmann::json parse_json_file(const fs::path& p) {
  try {
    return nlohmann::json::parse(read_whole_file(p.string()));
  } catch (const nlohmann::json::exception& e) {
    throw Error("report: " + p.string() + " is not valid JSON (" + e.what() + "); rewrite it or leave it out");
  }
}

double number_or_nan(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : kNaN;
}

// metrics.jsonl: one JSON object per epoch plus a final test line. A torn last line (a crash
// mid-write before the trainer wrote atomically, or a copy in progress) is skipped, as the
// trainer itself does when it resumes.
void read_metrics(const fs::path& p, TrainingRun& run) {
  std::istringstream in(read_whole_file(p.string()));
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      continue;
    }
    if (!j.is_object()) continue;
    if (j.contains("test_acc")) {
      TestResult t;
      t.accuracy = number_or_nan(j, "test_acc");
      t.loss = number_or_nan(j, "test_loss");
      t.count = j.value("test_count", int64_t{0});
      run.test = t;
      continue;
    }
    EpochPoint e;
    e.epoch = j.value("epoch", int64_t{0});
    e.step = j.value("step", int64_t{0});
    e.train_loss = number_or_nan(j, "train_loss");
    e.train_acc = number_or_nan(j, "train_acc");
    e.val_loss = number_or_nan(j, "val_loss");
    e.val_acc = number_or_nan(j, "val_acc");
    e.seconds = number_or_nan(j, "seconds");
    run.epochs.push_back(e);
  }
}

ModelFile read_model_file(const fs::path& p) {
  ModelFile m;
  m.path = p.string();
  m.name = p.filename().string();
  m.file_bytes = static_cast<int64_t>(fs::file_size(p));
  m.decoder = runtime::is_decoder_model_file(m.path);
  if (m.decoder) return m;
  const runtime::Model model = runtime::load_model(m.path);  // validates; throws naming the file
  const runtime::ModelMetrics t = runtime::model_metrics(model, {}, m.path);
  m.model_name = model.name;
  m.parameters = t.params;
  m.bits_per_parameter = t.bits_per_parameter;
  m.macs_per_item = t.macs;
  m.bops_per_item = t.bops;
  m.energy_nj = t.energy_pj / 1e3;
  m.fp32_energy_nj = t.fp32_energy_pj / 1e3;
  return m;
}

std::vector<double> parse_numbers(const std::string& s) {
  std::vector<double> v;
  std::stringstream in(s);
  std::string cell;
  while (std::getline(in, cell, ',')) v.push_back(std::stod(cell));
  return v;
}

HessianOutput read_hessian(const fs::path& dir) {
  HessianOutput h;
  h.path = dir.string();
  h.name = dir.filename().string();
  h.summary = parse_json_file(dir / "summary.json");
  const fs::path csv = dir / "density.csv";
  std::istringstream in(read_whole_file(csv.string()));
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1 || line.empty()) continue;  // header "eigenvalue,density"
    std::vector<double> v;
    try {
      v = parse_numbers(line);
    } catch (const std::exception&) {
      v.clear();
    }
    LOWBIT_CHECK(v.size() == 2, "report: " + csv.string() + " line " + std::to_string(line_no) +
                                    " is not 'eigenvalue,density' (two numbers)");
    h.eigenvalue.push_back(v[0]);
    h.density.push_back(v[1]);
  }
  return h;
}

bool is_basin_json(const nlohmann::json& j) { return j.is_object() && j.value("analysis", "") == "basin"; }

// A folder written by one lowbit command (a run, a study, a Hessian analysis), as opposed to a
// folder of such folders.
bool is_output_folder(const fs::path& dir) {
  return fs::is_regular_file(dir / "config.json") || fs::is_regular_file(dir / "metrics.jsonl") ||
         fs::is_regular_file(dir / "study.json") ||
         (fs::is_regular_file(dir / "summary.json") && fs::is_regular_file(dir / "density.csv"));
}

// Reads what `dir` holds itself; returns whether anything was recognised.
bool read_folder(const fs::path& dir, ReportInputs& in) {
  bool found = false;
  const bool has_config = fs::is_regular_file(dir / "config.json");
  const bool has_metrics = fs::is_regular_file(dir / "metrics.jsonl");
  if (has_config || has_metrics) {
    TrainingRun run;
    run.name = dir.filename().string();
    run.path = dir.string();
    if (has_config) run.config = parse_json_file(dir / "config.json");
    if (has_metrics) read_metrics(dir / "metrics.jsonl", run);
    if (fs::is_regular_file(dir / "ptq.json")) run.ptq = parse_json_file(dir / "ptq.json");
    in.runs.push_back(std::move(run));
    found = true;
  }
  if (fs::is_regular_file(dir / "study.json")) {
    StudyOutput s{dir.filename().string(), (dir / "study.json").string(), parse_json_file(dir / "study.json")};
    const std::string kind = s.data.is_object() ? s.data.value("study", "") : "";
    if (kind == "ptq-vs-qat") in.ptq_vs_qat.push_back(std::move(s)), found = true;
    else if (kind == "winq") in.winq.push_back(std::move(s)), found = true;
  }
  if (fs::is_regular_file(dir / "summary.json") && fs::is_regular_file(dir / "density.csv")) {
    in.hessian.push_back(read_hessian(dir));
    found = true;
  }
  // Model files and basin JSONs have user-chosen names: look at every .lbq / .json here.
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    if (f.extension() == ".lbq") {
      in.models.push_back(read_model_file(f));
      found = true;
    } else if (f.extension() == ".json" && f.filename() != "config.json" && f.filename() != "study.json" &&
               f.filename() != "summary.json" && f.filename() != "ptq.json") {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_whole_file(f.string()));
      } catch (const nlohmann::json::exception&) {
        continue;  // some other JSON of the user's: not ours to judge
      }
      if (is_basin_json(j)) {
        in.basin.push_back({f.stem().string(), f.string(), std::move(j)});
        found = true;
      }
    }
  }
  // The demo writes runs/cnn-w4a4.lbq beside the run folder runs/cnn-w4a4.
  const fs::path sibling = dir.string() + ".lbq";
  if (!dir.filename().empty() && fs::is_regular_file(sibling)) {
    in.models.push_back(read_model_file(sibling));
    found = true;
  }
  return found;
}

void add_path(const std::string& path, ReportInputs& in) {
  fs::path p(path);
  while (p.has_filename() == false && p.has_parent_path() && p != p.root_path()) p = p.parent_path();  // "runs/"
  LOWBIT_CHECK(fs::exists(p), "report: '" + path + "' does not exist");
  const std::string expected =
      "expected a run folder (config.json, metrics.jsonl), a study folder (study.json), a Hessian folder "
      "(summary.json and density.csv), a basin JSON (lowbit analyze basin --json) or an .lbq model file, "
      "or a folder holding such folders";
  if (fs::is_regular_file(p)) {
    if (p.extension() == ".lbq") {
      in.models.push_back(read_model_file(p));
      return;
    }
    // A basin result may have any name (`analyze basin --json FILE`); a .json file that does not
    // parse is an error, any other file that does not parse is simply not ours.
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_whole_file(p.string()));
    } catch (const nlohmann::json::exception& e) {
      LOWBIT_CHECK(p.extension() != ".json", "report: " + p.string() + " is not valid JSON (" + e.what() + ")");
    }
    if (is_basin_json(j)) {
      in.basin.push_back({p.stem().string(), p.string(), std::move(j)});
      return;
    }
    throw Error("report: nothing to report in file '" + path + "': " + expected);
  }
  bool found = read_folder(p, in);
  if (is_output_folder(p)) return;
  std::vector<fs::path> subdirs;
  for (const auto& e : fs::directory_iterator(p))
    if (e.is_directory()) subdirs.push_back(e.path());
  std::sort(subdirs.begin(), subdirs.end());
  for (const auto& d : subdirs) found = read_folder(d, in) || found;
  LOWBIT_CHECK(found, "report: nothing to report in '" + path + "': " + expected);
}

}  // namespace

bool ReportInputs::empty() const {
  return runs.empty() && models.empty() && ptq_vs_qat.empty() && winq.empty() && basin.empty() && hessian.empty();
}

ReportInputs load_report_inputs(const std::vector<std::string>& paths) {
  LOWBIT_CHECK(!paths.empty(), "report: give at least one run or study folder");
  ReportInputs in;
  for (const auto& p : paths) add_path(p, in);
  // A model file named twice (as a path and as a run folder's sibling) is listed once.
  std::vector<ModelFile> unique;
  for (auto& m : in.models) {
    const bool seen = std::any_of(unique.begin(), unique.end(), [&](const ModelFile& u) {
      return fs::weakly_canonical(u.path) == fs::weakly_canonical(m.path);
    });
    if (!seen) unique.push_back(std::move(m));
  }
  in.models = std::move(unique);
  return in;
}

}  // namespace lowbit::report
