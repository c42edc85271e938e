// The optional RIR high-pass: filter design against the textbook bilinear formula, its
// frequency response, and zero-phase filtering against a plainly written reference.
#include "roomsim/kernels/rir_high_pass.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <random>
#include <stdexcept>
#include <vector>

namespace w2p::roomsim {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::complex<double> response(const Biquad& s, double f, double fs) {
  const std::complex<double> z1 = std::polar(1.0, -2.0 * kPi * f / fs);  // z^-1
  return (s.b0 + s.b1 * z1 + s.b2 * z1 * z1) / (1.0 + s.a1 * z1 + s.a2 * z1 * z1);
}

// 2nd-order Butterworth high-pass by the bilinear transform with pre-warping, K = tan(pi fc/fs).
TEST(HighPass, DesignMatchesBilinearButterworthFormula) {
  for (double fs : {8000.0, 16000.0, 44100.0}) {
    for (double fc : {10.0, 100.0, 1000.0}) {
      const Biquad s = butterworth_high_pass(fc, fs);
      const double k = std::tan(kPi * fc / fs);
      const double norm = 1.0 + std::sqrt(2.0) * k + k * k;
      EXPECT_NEAR(s.b0, 1.0 / norm, 1e-12);
      EXPECT_NEAR(s.b1, -2.0 / norm, 1e-12);
      EXPECT_NEAR(s.b2, 1.0 / norm, 1e-12);
      EXPECT_NEAR(s.a1, 2.0 * (k * k - 1.0) / norm, 1e-12);
      EXPECT_NEAR(s.a2, (1.0 - std::sqrt(2.0) * k + k * k) / norm, 1e-12);
    }
  }
}

TEST(HighPass, ResponseIsMinus3dBAtCutoffZeroAtDcOneAtNyquist) {
  const Biquad s = butterworth_high_pass(10.0, 16000.0);
  EXPECT_NEAR(std::abs(response(s, 10.0, 16000.0)), 1.0 / std::sqrt(2.0), 1e-9);
  EXPECT_NEAR(std::abs(response(s, 0.0, 16000.0)), 0.0, 1e-12);
  EXPECT_NEAR(std::abs(response(s, 8000.0, 16000.0)), 1.0, 1e-9);
  EXPECT_NEAR(std::abs(response(s, 1000.0, 16000.0)), 1.0, 1e-6);
}

TEST(HighPass, RejectsCutoffOutsideTheBand) {
  EXPECT_THROW(butterworth_high_pass(0.0, 16000.0), std::invalid_argument);
  EXPECT_THROW(butterworth_high_pass(8000.0, 16000.0), std::invalid_argument);
  EXPECT_THROW(filtfilt(butterworth_high_pass(10.0, 16000.0), std::vector<double>(9, 1.0)),
               std::invalid_argument);
}

// scipy's sosfiltfilt written out plainly: odd extension by 9, direct form I with the
// steady-state start found by running the filter on a long constant input, forwards, then
// backwards, extension removed.
std::vector<double> reference_filtfilt(const Biquad& s, const std::vector<double>& x) {
  const std::size_t n = x.size();
  const std::size_t pad = 9;
  std::vector<double> ext;
  for (std::size_t i = pad; i >= 1; --i) ext.push_back(2.0 * x[0] - x[i]);
  ext.insert(ext.end(), x.begin(), x.end());
  for (std::size_t i = 1; i <= pad; ++i) ext.push_back(2.0 * x[n - 1] - x[n - 1 - i]);

  // Direct form I started as if the input had been constant at in[0] forever: past inputs
  // in[0], past outputs the steady-state response to a constant (0 for a high-pass at DC,
  // written generally as the DC gain times in[0]).
  auto run = [&](std::vector<double> in) {
    const double dc = (s.b0 + s.b1 + s.b2) / (1.0 + s.a1 + s.a2);
    double x1 = in[0], x2 = in[0], y1 = dc * in[0], y2 = dc * in[0];
    for (double& v : in) {
      const double y = s.b0 * v + s.b1 * x1 + s.b2 * x2 - s.a1 * y1 - s.a2 * y2;
      x2 = x1;
      x1 = v;
      y2 = y1;
      y1 = y;
      v = y;
    }
    return in;
  };
  std::vector<double> fwd = run(ext);
  std::vector<double> rev(fwd.rbegin(), fwd.rend());
  std::vector<double> back = run(rev);
  std::vector<double> y(n);
  for (std::size_t i = 0; i < n; ++i) y[i] = back[back.size() - 1 - pad - i];
  return y;
}

TEST(HighPass, FiltfiltMatchesPlainReference) {
  std::mt19937 gen(3);
  std::normal_distribution<double> noise(0.0, 1.0);
  for (double fc : {10.0, 300.0}) {
    const Biquad s = butterworth_high_pass(fc, 16000.0);
    std::vector<double> x(3000);
    for (double& v : x) v = 0.7 + noise(gen);  // with a DC offset for the filter to remove
    const std::vector<double> got = filtfilt(s, x);
    const std::vector<double> want = reference_filtfilt(s, x);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-9) << i;
  }
}

// Zero phase: an impulse in the middle stays symmetric about itself and loses its DC.
TEST(HighPass, FiltfiltIsZeroPhase) {
  const Biquad s = butterworth_high_pass(300.0, 16000.0);
  std::vector<double> x(4001, 0.0);
  x[2000] = 1.0;
  const std::vector<double> y = filtfilt(s, x);
  for (std::size_t k = 1; k < 1500; ++k) EXPECT_NEAR(y[2000 + k], y[2000 - k], 1e-12) << k;
  double sum = 0.0;
  for (double v : y) sum += v;
  EXPECT_NEAR(sum, 0.0, 1e-6);
  EXPECT_GT(y[2000], 0.9);
}

TEST(HighPass, RirHighPassRemovesDcAndKeepsTheImpulse) {
  std::vector<float> rir(8000, 0.0f);
  for (std::size_t i = 0; i < rir.size(); ++i) rir[i] = 0.01f;  // a DC offset
  rir[300] += 1.0f;
  high_pass_rir(rir, 10.0, 16000.0);
  EXPECT_NEAR(rir[300], 1.0f, 0.02f);
  double tail = 0.0;  // far from the edges the offset is gone
  for (std::size_t i = 3000; i < 5000; ++i) tail = std::max(tail, std::abs(double(rir[i])));
  EXPECT_LT(tail, 2e-3);
}

}  // namespace
}  // namespace w2p::roomsim
