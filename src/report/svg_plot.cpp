#include "report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "base/error.h"

namespace lowbit::report {
namespace {

std::string fmt(double v) {
  std::ostringstream s;
  s << std::setprecision(4) << v;
  return s.str();
}

// "Nice" linear ticks covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
  const double span = hi - lo;
  if (!(span > 0)) return {lo};
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) ticks.push_back(std::abs(t) < 1e-12 * step ? 0.0 : t);
  return ticks;
}


// Indices of the points drawn for a series of n points: all of them up to max_points, else the
// first and last point and, in each of max_points / 2 equal index buckets, the lowest and the
// highest point in index order (a thinned curve keeps its spikes and its envelope).
std::vector<size_t> thinned_indices(const std::vector<double>& y, size_t max_points) {
  std::vector<size_t> idx;
  const size_t n = y.size();
  if (n <= max_points || max_points < 4) {
    for (size_t i = 0; i < n; ++i) idx.push_back(i);
    return idx;
  }
  const size_t buckets = max_points / 2;
  idx.push_back(0);
  for (size_t b = 0; b < buckets; ++b) {
    const size_t lo = b * n / buckets, hi = (b + 1) * n / buckets;
    size_t imin = lo, imax = lo;
    for (size_t i = lo; i < hi; ++i) {
      if (!std::isfinite(y[i])) continue;
      if (!std::isfinite(y[imin]) || y[i] < y[imin]) imin = i;
      if (!std::isfinite(y[imax]) || y[i] > y[imax]) imax = i;
    }
    idx.push_back(std::min(imin, imax));
    if (imax != imin) idx.push_back(std::max(imin, imax));
  }
  idx.push_back(n - 1);
  return idx;
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string plot_color(size_t i) {
  // Okabe and Ito's colour-blind-safe palette, with a wine red for its yellow (unreadable on white).
  static const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#882255"};
  return kPalette[i % 8];
}

std::string line_plot_svg(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const auto& s : series) {
    LOWBIT_CHECK(s.x.size() == s.y.size(), "plot: series '" + s.label + "' has " + std::to_string(s.x.size()) +
                                               " x values and " + std::to_string(s.y.size()) + " y values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      if (o.log_y && s.y[i] <= 0) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  }
  LOWBIT_CHECK(std::isfinite(xmin) && std::isfinite(ymin), "plot '" + o.title + "': no finite data to draw");
  // Reference lines widen the y range so that they are always visible.
  for (const auto& r : o.reference_lines) {
    if (!std::isfinite(r.y) || (o.log_y && r.y <= 0)) continue;
    ymin = std::min(ymin, r.y);
    ymax = std::max(ymax, r.y);
  }
  // Bars: the series with bars share each x slot side by side; the slot is 80% of the smallest
  // gap between distinct x values (1 when there is a single x).
  std::vector<const PlotSeries*> bar_series;
  std::vector<double> bar_x;
  for (const auto& ser : series)
    if (ser.bars) {
      bar_series.push_back(&ser);
      for (double x : ser.x)
        if (std::isfinite(x)) bar_x.push_back(x);
    }
  std::sort(bar_x.begin(), bar_x.end());
  double gap = std::numeric_limits<double>::infinity();
  for (size_t i = 1; i < bar_x.size(); ++i)
    if (bar_x[i] > bar_x[i - 1]) gap = std::min(gap, bar_x[i] - bar_x[i - 1]);
  if (!std::isfinite(gap)) gap = 1.0;
  if (!bar_series.empty()) {
    // Room for the outermost bars, and bars start at 0 on a linear axis.
    xmin -= 0.5 * gap;
    xmax += 0.5 * gap;
    if (!o.log_y) ymin = std::min(ymin, 0.0), ymax = std::max(ymax, 0.0);
    // Headroom above the tallest bar for the legend box, which would otherwise hide its top.
    ymax = o.log_y ? ymax * 3.0 : ymax + 0.15 * (ymax - ymin);
  }
  if (xmax == xmin) {
    xmin -= 0.5;
    xmax += 0.5;
  }
  auto ty = [&](double y) { return o.log_y ? std::log10(y) : y; };
  double ylo, yhi;
  if (o.log_y) {
    yhi = std::ceil(std::log10(ymax));
    ylo = o.y_floor > 0 ? std::log10(o.y_floor) : std::floor(std::log10(ymin));
    ylo = std::max(ylo, yhi - 8.0);
    if (yhi <= ylo) yhi = ylo + 1.0;
  } else {
    const double pad = ymax > ymin ? 0.05 * (ymax - ymin) : 0.5 * std::max(1e-12, std::abs(ymax));
    ylo = ymin - pad;
    yhi = ymax + pad;
  }
  const double left = 84, right = 24, top = 40, bottom = 58;
  const double pw = o.width - left - right, ph = o.height - top - bottom;
  auto px = [&](double x) { return left + (x - xmin) / (xmax - xmin) * pw; };
  auto py = [&](double y) {
    double v = ty(y);
    if (o.log_y && !(y > 0)) v = ylo;
    v = std::min(std::max(v, ylo), yhi);
    return top + (1.0 - (v - ylo) / (yhi - ylo)) * ph;
  };

  std::ostringstream s;
  s << std::fixed << std::setprecision(2);
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\"";
  if (!o.id.empty()) s << " id=\"" << xml_escape(o.id) << "\"";
  s << " width=\"" << o.width << "\" height=\"" << o.height << "\" viewBox=\"0 0 " << o.width << " " << o.height
    << "\" role=\"img\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<title>" << xml_escape(o.title) << "</title>\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << o.width / 2.0 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << xml_escape(o.title) << "</text>\n";
  // Grid and ticks.
  const bool integer_x = o.integer_x || !bar_series.empty();
  for (double t : nice_ticks(xmin, xmax)) {
    if (integer_x && t != std::round(t)) continue;
    s << "<line x1=\"" << px(t) << "\" y1=\"" << top << "\" x2=\"" << px(t) << "\" y2=\"" << top + ph
      << "\" stroke=\"#e5e5e5\"/>\n";
    s << "<text x=\"" << px(t) << "\" y=\"" << top + ph + 16 << "\" text-anchor=\"middle\">" << fmt(t) << "</text>\n";
  }
  std::vector<double> yticks;
  if (o.log_y) {
    const int step = yhi - ylo > 6 ? 2 : 1;
    for (double e = std::ceil(ylo); e <= yhi + 1e-9; e += step) yticks.push_back(e);
  } else {
    yticks = nice_ticks(ylo, yhi);
  }
  for (double t : yticks) {
    const double y = top + (1.0 - (t - ylo) / (yhi - ylo)) * ph;
    s << "<line x1=\"" << left << "\" y1=\"" << y << "\" x2=\"" << left + pw << "\" y2=\"" << y << "\" stroke=\"#e5e5e5\"/>\n";
    s << "<text x=\"" << left - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">"
      << (o.log_y ? "1e" + std::to_string(static_cast<int>(std::lround(t))) : fmt(t)) << "</text>\n";
  }
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"black\"/>\n";
  s << "<text x=\"" << left + pw / 2 << "\" y=\"" << o.height - 14 << "\" text-anchor=\"middle\">" << xml_escape(o.x_label)
    << "</text>\n";
  s << "<text transform=\"translate(18," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">" << xml_escape(o.y_label)
    << "</text>\n";
  for (const auto& r : o.reference_lines) {
    if (!std::isfinite(r.y) || (o.log_y && r.y <= 0)) continue;
    s << "<line x1=\"" << left << "\" y1=\"" << py(r.y) << "\" x2=\"" << left + pw << "\" y2=\"" << py(r.y)
      << "\" stroke=\"" << r.color << "\" stroke-width=\"1.2\" stroke-dasharray=\"2,3\"/>\n";
    s << "<text x=\"" << left + 6 << "\" y=\"" << py(r.y) - 4 << "\" fill=\"" << r.color << "\">" << xml_escape(r.label)
      << "</text>\n";
  }
  const double slot = 0.8 * gap * pw / (xmax - xmin);
  const double bar_w = bar_series.empty() ? 0.0 : slot / static_cast<double>(bar_series.size());
  const double base_y = py(o.log_y ? std::pow(10.0, ylo) : std::min(std::max(0.0, ylo), yhi));
  // Series.
  for (const auto& ser : series) {
    const auto idx = ser.bars ? std::vector<size_t>() : thinned_indices(ser.y, o.max_points);
    if (ser.bars) {
      const size_t k = static_cast<size_t>(std::find(bar_series.begin(), bar_series.end(), &ser) - bar_series.begin());
      for (size_t i = 0; i < ser.x.size(); ++i) {
        if (!std::isfinite(ser.x[i]) || !std::isfinite(ser.y[i])) continue;
        const double x0 = px(ser.x[i]) - slot / 2 + bar_w * static_cast<double>(k), y1 = py(ser.y[i]);
        s << "<rect x=\"" << x0 << "\" y=\"" << std::min(y1, base_y) << "\" width=\"" << std::max(0.5, bar_w - 1)
          << "\" height=\"" << std::abs(base_y - y1) << "\" fill=\"" << ser.color << "\"/>\n";
      }
      continue;
    }
    if (ser.line) {
      s << "<polyline fill=\"none\" stroke=\"" << ser.color << "\" stroke-width=\"1.6\""
        << (ser.dashed ? " stroke-dasharray=\"6,4\"" : "") << " points=\"";
      for (size_t i : idx) {
        if (!std::isfinite(ser.x[i]) || !std::isfinite(ser.y[i])) continue;
        s << px(ser.x[i]) << "," << py(ser.y[i]) << " ";
      }
      s << "\"/>\n";
    }
    const double r = ser.marker_radius > 0 ? ser.marker_radius : (o.markers || !ser.line ? 3.0 : 0.0);
    if (r > 0) {
      for (size_t i : idx) {
        if (!std::isfinite(ser.x[i]) || !std::isfinite(ser.y[i])) continue;
        s << "<circle cx=\"" << px(ser.x[i]) << "\" cy=\"" << py(ser.y[i]) << "\" r=\"" << r << "\" fill=\""
          << ser.color << "\"/>\n";
      }
    }
  }
  // Legend (top right, inside the plot, on a white box so that curves under it do not hide it).
  size_t longest = 0, labelled = 0;
  for (const auto& ser : series)
    if (!ser.label.empty()) {
      longest = std::max(longest, ser.label.size());
      ++labelled;
    }
  if (labelled > 0) {
    const double lw = 42 + 6.8 * static_cast<double>(longest);
    const double lx = std::max(left + 4, left + pw - lw - 6);
    s << "<rect x=\"" << lx - 4 << "\" y=\"" << top + 4 << "\" width=\"" << lw << "\" height=\"" << 16.0 * labelled + 6
      << "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#cccccc\"/>\n";
    double ly = top + 18;
    for (const auto& ser : series) {
      if (ser.label.empty()) continue;
      if (ser.bars)
        s << "<rect x=\"" << lx + 6 << "\" y=\"" << ly - 10 << "\" width=\"12\" height=\"10\" fill=\"" << ser.color << "\"/>\n";
      else if (!ser.line)
        s << "<circle cx=\"" << lx + 12 << "\" cy=\"" << ly - 4 << "\" r=\""
          << (ser.marker_radius > 0 ? ser.marker_radius : 3.0) << "\" fill=\"" << ser.color << "\"/>\n";
      else
        s << "<line x1=\"" << lx << "\" y1=\"" << ly - 4 << "\" x2=\"" << lx + 24 << "\" y2=\"" << ly - 4 << "\" stroke=\""
          << ser.color << "\" stroke-width=\"2\"" << (ser.dashed ? " stroke-dasharray=\"6,4\"" : "") << "/>\n";
      s << "<text x=\"" << lx + 30 << "\" y=\"" << ly << "\">" << xml_escape(ser.label) << "</text>\n";
      ly += 16;
    }
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace lowbit::report
