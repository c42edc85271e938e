// Time-delay estimates from a lag-indexed correlation (GCC-PHAT or NGCC-PHAT logits).
#pragma once

#include <vector>

namespace w2p::features {

/// The maximum of a correlation over lags -max_tau..max_tau (index i = lag i - max_tau).
struct TdoaPeak {
  int index = 0;        ///< argmax (first maximum on ties, as numpy/torch argmax)
  double lag = 0.0;     ///< refined lag in samples: index - max_tau + parabolic offset
  double offset = 0.0;  ///< parabolic sub-sample offset in [-0.5, 0.5] (0 at either end)
  double value = 0.0;   ///< correlation value at index
};

/// Vertex of the parabola through (-1, y_minus), (0, y_zero), (1, y_plus), in [-0.5, 0.5].
/// Returns 0 when the three points are not strictly concave (no maximum to interpolate).
double parabolic_peak_offset(double y_minus, double y_zero, double y_plus);

/// Argmax of cc[0..num_lags) with parabolic refinement around it; lag in samples.
/// num_lags must be 2 max_tau + 1. Throws std::invalid_argument otherwise.
/// NaN values are skipped (never chosen as the maximum; an all-NaN input gives index 0).
TdoaPeak find_tdoa_peak(const float* cc, int num_lags, int max_tau);

/// find_tdoa_peak for each row of a row-major [rows, 2 max_tau + 1] array.
std::vector<TdoaPeak> find_tdoa_peaks(const float* cc, int rows, int max_tau);

}  // namespace w2p::features
