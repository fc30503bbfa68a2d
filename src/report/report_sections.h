// The sections of a `lowbit report` page. Each returns an HTML fragment (well-formed XHTML-style
// markup: every element closed) or "" when the inputs hold nothing for it, so that a report shows
// exactly what the given folders contain.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "report/report_inputs.h"

namespace lowbit::report {

// One colour per name for the whole page: the same run is the same colour in its table row and
// in the loss and accuracy plots, the same method the same colour in every study plot.
class ColorMap {
 public:
  const std::string& color(const std::string& key);

 private:
  std::map<std::string, std::string> colors_;
};

std::string runs_summary_section(const std::vector<TrainingRun>& runs, ColorMap& colors);
std::string training_curves_section(const std::vector<TrainingRun>& runs, ColorMap& colors);
std::string deployment_section(const std::vector<ModelFile>& models);
std::string ptq_vs_qat_section(const std::vector<StudyOutput>& studies, ColorMap& colors);
std::string basin_section(const std::vector<StudyOutput>& basins, ColorMap& colors);
std::string winq_section(const std::vector<StudyOutput>& studies, ColorMap& colors);
std::string hessian_section(const std::vector<HessianOutput>& analyses, ColorMap& colors);
// gpt-tiny runs: bits per byte and next-byte accuracy per evaluation interval (image runs' plots
// leave them out: a loss per byte of text is not comparable with a loss per image).
std::string language_model_section(const std::vector<TrainingRun>& runs, ColorMap& colors);
// `lowbit eval --shift --out`: accuracy against severity per corruption, one colour per model.
std::string robustness_section(const std::vector<StudyOutput>& results, ColorMap& colors);
// Per-layer sensitivity (sensitivity.json): loss increase per layer and setting, Hessian trace.
std::string sensitivity_section(const std::vector<StudyOutput>& results, ColorMap& colors);
// Mixed-precision search (mixed_search.json): front, uniform points, choice, bit allocation.
std::string mixed_precision_section(const std::vector<StudyOutput>& results, ColorMap& colors);
// `lowbit bench --profile --json`: time per op of the integer graph.
std::string profile_section(const std::vector<StudyOutput>& results, ColorMap& colors);

// A figure: the plot's SVG inline, with a caption; `id` names it for links and tests.
std::string figure(const std::string& id, const std::string& svg, const std::string& caption);

}  // namespace lowbit::report
