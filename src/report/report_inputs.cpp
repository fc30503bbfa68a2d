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
    e.train_bits_per_byte = number_or_nan(j, "train_bits_per_byte");
    e.val_bits_per_byte = number_or_nan(j, "val_bits_per_byte");
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

// Analysis results have user-chosen names; they are recognised by their content. Returns the
// kind ("basin", "robustness", "sensitivity", "mixed-precision", "profile") or "".
std::string analysis_kind(const nlohmann::json& j) {
  if (!j.is_object()) return "";
  const auto a = j.find("analysis");
  if (a != j.end() && a->is_string()) {
    const std::string k = a->get<std::string>();
    for (const char* known : {"basin", "robustness", "sensitivity", "mixed-precision", "profile"})
      if (k == known) return k;
    return "";
  }
  // `lowbit bench --profile --json` writes no "analysis" key: its "profile" array is the mark.
  const auto p = j.find("profile");
  return p != j.end() && p->is_array() && j.contains("isa") ? "profile" : "";
}

// Checks the keys a section reads, so that a malformed file fails naming the file and the key
// instead of drawing an empty or wrong plot.
class Checker {
 public:
  Checker(const fs::path& file, const std::string& what) : file_(file.string()), what_(what) {}
  const nlohmann::json& need(const nlohmann::json& j, const std::string& key, nlohmann::json::value_t type,
                             const std::string& where = "") const {
    const auto it = j.is_object() ? j.find(key) : j.end();
    using T = nlohmann::json::value_t;
    const bool ok = it != j.end() && (it->type() == type || (type == T::number_float && it->is_number()) ||
                                      (type == T::number_integer && it->is_number_integer()));
    if (!ok) {
      const char* kind = type == nlohmann::json::value_t::array    ? "an array"
                         : type == nlohmann::json::value_t::object ? "an object"
                         : type == nlohmann::json::value_t::string ? "a string"
                         : type == nlohmann::json::value_t::number_integer ? "an integer"
                                                                   : "a number";
      throw Error("report: " + file_ + " (" + what_ + "): " + (where.empty() ? "" : where + " ") + "'" + key +
                  "' is missing or not " + kind + "; rewrite the file with the lowbit command that makes it "
                  "or leave it out (docs/report.md lists the format)");
    }
    return *it;
  }

 private:
  std::string file_, what_;
};

void check_points(const Checker& c, const nlohmann::json& points, const std::string& where) {
  using T = nlohmann::json::value_t;
  for (size_t i = 0; i < points.size(); ++i) {
    const std::string w = where + "[" + std::to_string(i) + "]";
    c.need(points[i], "bits_per_param", T::number_float, w);
    c.need(points[i], "predicted_delta_loss", T::number_float, w);
    for (const auto& l : c.need(points[i], "layers", T::array, w)) {
      c.need(l, "name", T::string, w + ".layers[]");
      c.need(l, "weight_bits", T::number_float, w + ".layers[]");
      c.need(l, "act_bits", T::number_float, w + ".layers[]");
    }
  }
}

void validate_analysis(const std::string& kind, const fs::path& file, const nlohmann::json& j) {
  using T = nlohmann::json::value_t;
  const Checker c(file, kind);
  if (kind == "robustness") {
    c.need(c.need(j, "clean", T::object), "accuracy", T::number_float, "clean");
    for (const auto& s : c.need(j, "shifted", T::array)) {
      c.need(s, "corruption", T::string, "shifted[]");
      c.need(s, "severity", T::number_float, "shifted[]");
      c.need(s, "accuracy", T::number_float, "shifted[]");
    }
  } else if (kind == "sensitivity") {
    for (const auto& l : c.need(j, "layers", T::array)) {
      c.need(l, "name", T::string, "layers[]");
      for (const auto& w : c.need(l, "weights", T::array, "layers[]")) {
        c.need(w, "format", T::string, "layers[].weights[]");
        c.need(w, "delta_loss", T::number_float, "layers[].weights[]");
      }
      for (const auto& a : l.value("activations", nlohmann::json::array())) {
        c.need(a, "bits", T::number_float, "layers[].activations[]");
        c.need(a, "delta_loss", T::number_float, "layers[].activations[]");
      }
    }
  } else if (kind == "mixed-precision") {
    // "choice" is null when no assignment fits the budget (the search still writes its front).
    LOWBIT_CHECK(j.contains("choice"), "report: " + file.string() +
                                           " (mixed-precision): 'choice' is missing; rewrite the file with the lowbit "
                                           "command that makes it (docs/report.md lists the format)");
    if (!j["choice"].is_null()) check_points(c, nlohmann::json::array({c.need(j, "choice", T::object)}), "choice");
    check_points(c, j.value("uniform", nlohmann::json::array()), "uniform");
    const nlohmann::json& front = c.need(j, "front", T::array);
    check_points(c, front, "front");
    for (const auto& q : j.value("pareto_qat", nlohmann::json::array())) {
      const auto& point = c.need(q, "point", T::number_integer, "pareto_qat[]");
      c.need(q, "accuracy", T::number_float, "pareto_qat[]");
      LOWBIT_CHECK(point.get<int64_t>() >= 0 && point.get<int64_t>() < static_cast<int64_t>(front.size()),
                   "report: " + file.string() + " (mixed-precision): pareto_qat[].point " + point.dump() +
                       " is not an index into 'front' (" + std::to_string(front.size()) + " points)");
    }
  } else if (kind == "profile") {
    for (const auto& b : c.need(j, "profile", T::array)) {
      c.need(b, "batch", T::number_float, "profile[]");
      for (const auto& op : c.need(b, "ops", T::array, "profile[]")) {
        c.need(op, "node", T::string, "profile[].ops[]");
        c.need(op, "ms", T::number_float, "profile[].ops[]");
      }
    }
  }
}

// Adds a recognised analysis JSON to its section; returns false for a JSON that is none.
bool add_analysis(const fs::path& file, nlohmann::json j, ReportInputs& in) {
  const std::string kind = analysis_kind(j);
  if (kind.empty()) return false;
  validate_analysis(kind, file, j);
  StudyOutput s{file.stem().string(), file.string(), std::move(j)};
  if (kind == "basin") in.basin.push_back(std::move(s));
  else if (kind == "robustness") in.robustness.push_back(std::move(s));
  else if (kind == "sensitivity") in.sensitivity.push_back(std::move(s));
  else if (kind == "mixed-precision") in.mixed_precision.push_back(std::move(s));
  else in.profile.push_back(std::move(s));
  return true;
}

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
  // Model files and analysis JSONs have user-chosen names: look at every .lbq / .json here.
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
      found = add_analysis(f, std::move(j), in) || found;
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
      "(summary.json and density.csv), an analysis JSON (lowbit analyze basin --json, lowbit eval --shift --out, "
      "a sensitivity or mixed-precision result, lowbit bench --profile --json) or an .lbq model file, "
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
    if (add_analysis(p, std::move(j), in)) return;
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
  return runs.empty() && models.empty() && ptq_vs_qat.empty() && winq.empty() && basin.empty() && hessian.empty() &&
         robustness.empty() && sensitivity.empty() && mixed_precision.empty() && profile.empty();
}

bool TrainingRun::language_model() const {
  if (config.is_object() && config.value("model", "") == "gpt-tiny") return true;
  return std::any_of(epochs.begin(), epochs.end(), [](const EpochPoint& e) {
    return std::isfinite(e.val_bits_per_byte) || std::isfinite(e.train_bits_per_byte);
  });
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
