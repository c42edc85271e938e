// Peak picking with parabolic sub-sample refinement.
#include "features/kernels/tdoa_peaks.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "features/kernels/gcc_phat.hpp"
#include "support/fixture_h5.hpp"

namespace w2p::features {
namespace {

std::vector<float> sampled_parabola(int max_tau, double vertex_lag, double height) {
  std::vector<float> cc;
  for (int lag = -max_tau; lag <= max_tau; ++lag) {
    const double t = lag - vertex_lag;
    cc.push_back(static_cast<float>(height - 0.01 * t * t));
  }
  return cc;
}

TEST(TdoaPeak, RecoversTheVertexOfASampledParabola) {
  const int max_tau = 20;
  for (double vertex : {-7.3, -0.5001, 0.0, 0.25, 3.49, 12.0}) {
    const std::vector<float> cc = sampled_parabola(max_tau, vertex, 1.0);
    const TdoaPeak peak = find_tdoa_peak(cc.data(), static_cast<int>(cc.size()), max_tau);
    EXPECT_EQ(peak.index - max_tau, static_cast<int>(std::lround(vertex))) << vertex;
    // Three float32 samples of an exact parabola: the vertex formula is exact up to the float
    // rounding of the samples (~6e-8 relative on values ~1 with curvature 0.02): 1e-4 samples.
    EXPECT_NEAR(peak.lag, vertex, 1e-4) << vertex;
    EXPECT_NEAR(peak.value, cc[peak.index], 0.0);
  }
}

TEST(TdoaPeak, OffsetFormulaIsExactInDouble) {
  // y = -(t - 0.3)^2 at t = -1, 0, 1.
  EXPECT_NEAR(parabolic_peak_offset(-1.69, -0.09, -0.49), 0.3, 1e-12);
  EXPECT_EQ(parabolic_peak_offset(1.0, 1.0, 1.0), 0.0);  // flat: no refinement
  EXPECT_EQ(parabolic_peak_offset(2.0, 1.0, 2.0), 0.0);  // convex: no maximum
  EXPECT_LE(parabolic_peak_offset(0.0, 1.0, 1.0), 0.5);  // plateau on the right edge
  EXPECT_NEAR(parabolic_peak_offset(0.0, 1.0, 1.0), 0.5, 1e-12);
}

TEST(TdoaPeak, FirstMaximumWinsTies) {
  const std::vector<float> cc = {0.0f, 1.0f, 0.5f, 1.0f, 0.0f};
  const TdoaPeak peak = find_tdoa_peak(cc.data(), 5, 2);
  EXPECT_EQ(peak.index, 1);
}

TEST(TdoaPeak, PeakAtAnEndIsNotRefined) {
  const std::vector<float> rising = {0.0f, 0.1f, 0.2f, 0.3f, 0.9f};
  const TdoaPeak right = find_tdoa_peak(rising.data(), 5, 2);
  EXPECT_EQ(right.index, 4);
  EXPECT_EQ(right.lag, 2.0);
  const std::vector<float> falling = {0.9f, 0.3f, 0.2f, 0.1f, 0.0f};
  EXPECT_EQ(find_tdoa_peak(falling.data(), 5, 2).lag, -2.0);
}

TEST(TdoaPeak, NanValuesAreSkipped) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> cc = {nan, 0.2f, 0.7f, nan, 0.1f};
  EXPECT_EQ(find_tdoa_peak(cc.data(), 5, 2).index, 2);
  EXPECT_EQ(find_tdoa_peak(cc.data(), 5, 2).offset, 0.0);  // NaN neighbour: no refinement
}

TEST(TdoaPeak, RejectsAWindowOfTheWrongSize) {
  const std::vector<float> cc(6, 0.0f);
  EXPECT_THROW(find_tdoa_peak(cc.data(), 6, 2), std::invalid_argument);
  EXPECT_THROW(find_tdoa_peak(cc.data(), 1, -1), std::invalid_argument);
}

TEST(TdoaPeak, RowsAreHandledIndependently) {
  std::vector<float> cc = sampled_parabola(10, 2.2, 1.0);
  const std::vector<float> second = sampled_parabola(10, -4.6, 3.0);
  cc.insert(cc.end(), second.begin(), second.end());
  const std::vector<TdoaPeak> peaks = find_tdoa_peaks(cc.data(), 2, 10);
  ASSERT_EQ(peaks.size(), 2u);
  EXPECT_NEAR(peaks[0].lag, 2.2, 1e-4);
  EXPECT_NEAR(peaks[1].lag, -4.6, 1e-4);
}

TEST(TdoaPeak, FractionalFixtureDelayIsRefinedTowardsItsTrueValue) {
  // Fixture pair 2: y is x delayed by 12.4 samples (frequency-domain shift), so the correlation
  // peaks between lags -13 and -12, at -12.4. The PHAT peak is sinc-shaped, not parabolic, so the
  // parabolic estimate is biased; it must still move from the integer argmax (-12) towards -12.4.
  const test::H5Reader h5(test::fixture_path("reference/gcc_phat.h5"));
  const auto cc = h5.read<float>("max_tau_342/cc");
  const int lags = gcc_phat_num_lags(342);
  const TdoaPeak peak = find_tdoa_peak(cc.values.data() + 2 * lags, lags, 342);
  EXPECT_EQ(peak.index - 342, -12);
  EXPECT_LT(peak.lag, -12.1);
  EXPECT_GT(peak.lag, -12.5);
}

}  // namespace
}  // namespace w2p::features
