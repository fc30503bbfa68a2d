// A small SVG line-plot writer for reports, studies and analysis figures: axes with ticks and
// labels, a linear or log10 y axis, several series with a legend, optional point markers and
// horizontal reference lines. Plain text output (well-formed XML, so it can sit inside an HTML
// page or be a file of its own), no dependencies.
#pragma once
#include <string>
#include <vector>

namespace lowbit::report {

struct PlotSeries {
  std::string label;
  std::vector<double> x, y;
  std::string color = "#1f77b4";
  bool dashed = false;
  bool line = true;            // false: points only (e.g. single configurations beside a front)
  double marker_radius = 0.0;  // > 0: a dot of this radius at every point, whatever PlotOptions::markers
  bool bars = false;           // a bar from the axis (0, or the floor of a log axis) to each y; several
                               // bar series share each x slot side by side (per-layer values)
};

// A horizontal line across the plot (e.g. the FP32 accuracy a quantized model is compared with).
struct ReferenceLine {
  double y = 0.0;
  std::string label;
  std::string color = "#555555";
};

struct PlotOptions {
  std::string id;         // the <svg> element's id (empty: none), for links and tests
  std::string title;      // drawn above the plot and given as the SVG's <title>
  std::string x_label;
  std::string y_label;
  bool log_y = false;     // log10 axis; values <= 0 (or below y_floor) are drawn at the floor
  double y_floor = 0.0;   // log axis lower bound (0: from the data, at most 8 decades below the top)
  bool markers = false;   // a dot at every point (curves of a few epochs are otherwise unreadable)
  bool integer_x = false; // x ticks only at whole numbers (layer index, severity); on with bars
  std::vector<ReferenceLine> reference_lines;
  // Series longer than this are thinned to the minimum and maximum of equal x buckets, which keeps
  // spikes visible and the file small (a WinQ study has thousands of steps per curve).
  size_t max_points = 800;
  int width = 760;
  int height = 460;
};

// Throws lowbit::Error for a series whose x and y lengths differ or for no data at all.
std::string line_plot_svg(const std::vector<PlotSeries>& series, const PlotOptions& options);

// The colour of series i in a fixed palette (colour-blind friendly).
std::string plot_color(size_t i);

// Escapes &, <, >, " for XML/HTML text and attribute values.
std::string xml_escape(const std::string& s);

}  // namespace lowbit::report
