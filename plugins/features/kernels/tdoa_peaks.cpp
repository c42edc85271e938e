#include "features/kernels/tdoa_peaks.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace w2p::features {

double parabolic_peak_offset(double y_minus, double y_zero, double y_plus) {
  // Parabola a t^2 + b t + c through the three points: a = (y- - 2 y0 + y+) / 2,
  // b = (y+ - y-) / 2; the vertex is at -b / (2 a).
  const double curvature = y_minus - 2.0 * y_zero + y_plus;
  if (!(curvature < 0.0)) return 0.0;  // flat or convex (or NaN): nothing to refine
  const double offset = 0.5 * (y_minus - y_plus) / curvature;
  // With y0 the largest of the three, the vertex lies within half a sample; the clamp only
  // guards against rounding.
  return std::clamp(offset, -0.5, 0.5);
}

TdoaPeak find_tdoa_peak(const float* cc, int num_lags, int max_tau) {
  if (max_tau < 0 || num_lags != 2 * max_tau + 1) {
    throw std::invalid_argument(
        "find_tdoa_peak: expected 2 * max_tau + 1 = " + std::to_string(2 * max_tau + 1) +
        " lags, got " + std::to_string(num_lags));
  }
  int best = 0;
  bool found = false;
  for (int i = 0; i < num_lags; ++i) {
    if (std::isnan(cc[i])) continue;
    if (!found || cc[i] > cc[best]) {  // strict: the first maximum wins
      best = i;
      found = true;
    }
  }
  TdoaPeak peak;
  peak.index = best;
  peak.value = cc[best];
  if (best > 0 && best < num_lags - 1) {
    peak.offset = parabolic_peak_offset(cc[best - 1], cc[best], cc[best + 1]);
  }
  peak.lag = static_cast<double>(best - max_tau) + peak.offset;
  return peak;
}

std::vector<TdoaPeak> find_tdoa_peaks(const float* cc, int rows, int max_tau) {
  const int lags = 2 * max_tau + 1;
  std::vector<TdoaPeak> peaks;
  peaks.reserve(static_cast<std::size_t>(std::max(rows, 0)));
  for (int r = 0; r < rows; ++r) {
    peaks.push_back(find_tdoa_peak(cc + static_cast<std::size_t>(r) * lags, lags, max_tau));
  }
  return peaks;
}

}  // namespace w2p::features
