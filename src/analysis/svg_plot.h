// A small SVG line-plot writer for study and analysis figures: axes with ticks and labels, a
// linear or log10 y axis, several series with a legend. Plain text output, no dependencies.
#pragma once
#include <string>
#include <vector>

namespace lowbit::analysis {

struct PlotSeries {
  std::string label;
  std::vector<double> x, y;
  std::string color = "#1f77b4";
  bool dashed = false;
};

struct PlotOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_y = false;     // log10 axis; values <= 0 (or below y_floor) are drawn at the floor
  double y_floor = 0.0;   // log axis lower bound (0: from the data, at most 8 decades below the top)
  int width = 760;
  int height = 460;
};

// Throws lowbit::Error for a series whose x and y lengths differ or for no data at all.
std::string line_plot_svg(const std::vector<PlotSeries>& series, const PlotOptions& options);

// The colour of series i in a fixed palette (colour-blind friendly).
std::string plot_color(size_t i);

}  // namespace lowbit::analysis
