// GCC-PHAT against the reference's golden output and against a direct-DFT implementation.
#include "features/kernels/gcc_phat.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "features/kernels/tdoa_peaks.hpp"
#include "support/fixture_h5.hpp"

namespace w2p::features {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Slow GCC-PHAT straight from the definition, in double: direct DFTs of the zero-padded signals
// (n = 2 L), PHAT weighting, and the inverse DFT evaluated only at the lags -max_tau..max_tau.
std::vector<double> brute_force_gcc_phat(const std::vector<float>& x, const std::vector<float>& y,
                                         int max_tau, double epsilon) {
  const std::size_t length = x.size();
  const std::size_t n = 2 * length;
  const std::size_t bins = n / 2 + 1;
  std::vector<std::complex<double>> twiddle(n);  // exp(-2 pi i m / n)
  for (std::size_t m = 0; m < n; ++m) {
    const double phase = -2.0 * kPi * static_cast<double>(m) / static_cast<double>(n);
    twiddle[m] = {std::cos(phase), std::sin(phase)};
  }
  std::vector<std::complex<double>> weighted(bins);
  for (std::size_t k = 0; k < bins; ++k) {
    std::complex<double> xk = 0.0, yk = 0.0;
    for (std::size_t t = 0; t < length; ++t) {  // samples length..n-1 are the zero padding
      xk += static_cast<double>(x[t]) * twiddle[(k * t) % n];
      yk += static_cast<double>(y[t]) * twiddle[(k * t) % n];
    }
    const std::complex<double> g = xk * std::conj(yk);
    weighted[k] = g / (std::abs(g) + epsilon);
  }
  std::vector<double> out;
  for (int lag = -max_tau; lag <= max_tau; ++lag) {
    const std::size_t t =
        static_cast<std::size_t>((lag + static_cast<long>(n)) % static_cast<long>(n));
    // irfft: Hermitian extension; DC and Nyquist counted once with their imaginary part dropped.
    double sum = weighted[0].real();
    for (std::size_t k = 1; k < bins - 1; ++k) {
      sum += 2.0 * (weighted[k] * std::conj(twiddle[(k * t) % n])).real();
    }
    sum += (weighted[bins - 1] * std::conj(twiddle[((bins - 1) * t) % n])).real();
    out.push_back(sum / static_cast<double>(n));
  }
  return out;
}

std::vector<float> white_noise(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(gen);
  return x;
}

std::vector<float> row(const test::Array<float>& a, std::int64_t r) {
  const std::int64_t cols = a.shape.at(1);
  return {a.values.begin() + r * cols, a.values.begin() + (r + 1) * cols};
}

TEST(GccPhat, MatchesReferenceFixtureForBothWindowSizes) {
  const test::H5Reader h5(test::fixture_path("reference/gcc_phat.h5"));
  const auto x = h5.read<float>("inputs/x");
  const auto y = h5.read<float>("inputs/y");
  const auto cases = h5.read_strings("inputs/case");
  const float epsilon = static_cast<float>(h5.attr_double("/", "epsilon"));
  ASSERT_FLOAT_EQ(epsilon, kGccPhatEpsilon);
  const std::int64_t pairs = x.shape.at(0);
  double worst_relative = 0.0;
  for (int max_tau : {342, 314}) {
    const std::string group = "max_tau_" + std::to_string(max_tau);
    const auto expected = h5.read<float>(group + "/cc");
    const auto expected_argmax = h5.read<std::int64_t>(group + "/argmax");
    ASSERT_EQ(expected.shape.at(1), gcc_phat_num_lags(max_tau));
    for (std::int64_t p = 0; p < pairs; ++p) {
      const std::vector<float> got = gcc_phat(row(x, p), row(y, p), max_tau);
      const std::vector<float> want = row(expected, p);
      ASSERT_EQ(got.size(), want.size());
      float peak = 0.0f;
      for (float v : want) peak = std::max(peak, std::abs(v));
      // Both sides are float32 FFTs of length 4096 (FFTW here, pocketfft in the reference):
      // rounding differences measured at 1.2e-6 of the peak. 1e-5 of the peak (the fixture README
      // targets 1e-4 relative) still catches any indexing, sign or scaling mistake.
      for (std::size_t i = 0; i < got.size(); ++i) {
        worst_relative = std::max(worst_relative, std::abs(double{got[i]} - want[i]) / peak);
        ASSERT_NEAR(got[i], want[i], 1e-5f * peak)
            << group << " pair " << p << " (" << cases[static_cast<std::size_t>(p)]
            << ") lag index " << i;
      }
      EXPECT_EQ(find_tdoa_peak(got.data(), static_cast<int>(got.size()), max_tau).index,
                expected_argmax.values[static_cast<std::size_t>(p)])
          << group << " pair " << p << " (" << cases[static_cast<std::size_t>(p)] << ")";
    }
  }
  std::cout << "[ measured ] gcc_phat.h5: worst |error| / peak " << worst_relative << "\n";
}

TEST(GccPhat, FixtureDelaysPeakAtMinusTheDelay) {
  // The fixture's own sign convention: y[t] ~ x[t - d] peaks at lag -d (integer delays inside the
  // window only; the 12.4 case is checked in TdoaPeak tests, the noise-only cases have no delay).
  const test::H5Reader h5(test::fixture_path("reference/gcc_phat.h5"));
  const auto argmax = h5.read<std::int64_t>("max_tau_342/argmax");
  const auto delay = h5.read<double>("inputs/delay");
  for (std::size_t p : {0u, 1u, 4u, 5u, 7u}) {
    EXPECT_EQ(argmax.values[p] - 342, -static_cast<std::int64_t>(delay.values[p])) << p;
  }
}

TEST(GccPhat, MatchesBruteForceDftImplementation) {
  struct Case {
    int length;
    int max_tau;
    float epsilon;
  };
  // Small lengths keep the O(n^2) reference fast; max_tau = 2 L - 1 is the widest window the
  // reference's slicing allows; epsilon 0 is plain PHAT.
  for (const Case& c : {Case{64, 10, 1e-3f}, Case{256, 100, 1e-3f}, Case{100, 199, 1e-3f},
                        Case{128, 0, 1e-3f}, Case{96, 30, 0.0f}, Case{256, 50, 10.0f}}) {
    const std::vector<float> x = white_noise(static_cast<std::size_t>(c.length), 1u + c.length);
    const std::vector<float> y = white_noise(static_cast<std::size_t>(c.length), 2u + c.max_tau);
    const std::vector<float> got = gcc_phat(x, y, c.max_tau, c.epsilon);
    const std::vector<double> want = brute_force_gcc_phat(x, y, c.max_tau, c.epsilon);
    ASSERT_EQ(got.size(), want.size());
    // Each output is a mean of n unit-magnitude terms computed in float32: error ~1e-7; 2e-6 is
    // an order of magnitude above that and far below the ~1/sqrt(n) size of the values.
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 2e-6)
          << "L=" << c.length << " max_tau=" << c.max_tau << " eps=" << c.epsilon << " index " << i;
    }
  }
}

TEST(GccPhat, PeakAtKnownIntegerDelay) {
  const int length = 2048;
  const int max_tau = 342;
  // |d| <= max_tau, so every window below stays inside the source.
  const std::vector<float> source = white_noise(length + 2 * max_tau, 7);
  for (int d : {0, 1, 25, -40, 200, -342, 342}) {
    // x[t] = s[t + max_tau], y[t] = s[t + max_tau - d] = x[t - d]: y is x delayed by d samples.
    std::vector<float> x(source.begin() + max_tau, source.begin() + max_tau + length);
    std::vector<float> y(source.begin() + max_tau - d, source.begin() + max_tau - d + length);
    const std::vector<float> cc = gcc_phat(x, y, max_tau);
    const TdoaPeak peak = find_tdoa_peak(cc.data(), static_cast<int>(cc.size()), max_tau);
    EXPECT_EQ(peak.index - max_tau, -d) << "delay " << d;
  }
}

TEST(GccPhat, SwappingThePairReversesTheLags) {
  // G(y, x) = conj(G(x, y)), so cc_yx[lag] = cc_xy[-lag]: what NGCC uses for the (b, a) pairs.
  const std::vector<float> x = white_noise(512, 11);
  const std::vector<float> y = white_noise(512, 12);
  const int max_tau = 100;
  const std::vector<float> xy = gcc_phat(x, y, max_tau);
  const std::vector<float> yx = gcc_phat(y, x, max_tau);
  // Different float32 rounding in the two inverse FFTs only: 1e-6 absolute.
  for (int i = 0; i < gcc_phat_num_lags(max_tau); ++i) {
    EXPECT_NEAR(yx[i], xy[2 * max_tau - i], 1e-6) << i;
  }
}

TEST(GccPhat, PairListReusesChannelSpectraWithIdenticalResults) {
  const int channels = 7;
  const int length = 2048;
  const int max_tau = 314;
  const std::vector<float> signals = white_noise(channels * length, 21);
  std::vector<ChannelPair> pairs = all_channel_pairs(channels);
  pairs.push_back({3, 1});  // reversed and repeated pairs are allowed
  pairs.push_back({2, 2});
  GccPhat gcc(length, max_tau);
  std::vector<float> batched(pairs.size() * gcc.num_lags());
  gcc.correlate_pairs(signals.data(), channels, pairs, batched.data());
  std::vector<float> single(gcc.num_lags());
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    gcc.correlate(signals.data() + pairs[p].a * length, signals.data() + pairs[p].b * length,
                  single.data());
    // The same plans on equally aligned buffers run the same floating-point operations, so the
    // two paths agree exactly.
    for (int i = 0; i < gcc.num_lags(); ++i) {
      ASSERT_EQ(batched[p * gcc.num_lags() + i], single[i]) << "pair " << p << " index " << i;
    }
  }
  const std::vector<float> convenience =
      gcc_phat_pairs(signals.data(), channels, length, pairs, max_tau);
  EXPECT_EQ(convenience, batched);
}

TEST(GccPhat, AllChannelPairsAreOrderedLexicographically) {
  const std::vector<ChannelPair> pairs = all_channel_pairs(7);
  ASSERT_EQ(pairs.size(), 21u);
  EXPECT_EQ(pairs.front(), (ChannelPair{0, 1}));
  EXPECT_EQ(pairs[6], (ChannelPair{1, 2}));
  EXPECT_EQ(pairs.back(), (ChannelPair{5, 6}));
  EXPECT_TRUE(all_channel_pairs(1).empty());
}

TEST(GccPhat, RejectsInvalidArguments) {
  EXPECT_THROW(GccPhat(0, 0), std::invalid_argument);
  EXPECT_THROW(GccPhat(16, -1), std::invalid_argument);
  EXPECT_THROW(GccPhat(16, 32), std::invalid_argument);  // max_tau must stay below n = 32
  EXPECT_NO_THROW(GccPhat(16, 31));
  EXPECT_THROW(GccPhat(16, 4, -1.0f), std::invalid_argument);
  EXPECT_THROW(gcc_phat(std::vector<float>(8), std::vector<float>(9), 2), std::invalid_argument);
  GccPhat gcc(8, 2);
  std::vector<float> signals(16), out(10);
  EXPECT_THROW(gcc.correlate_pairs(signals.data(), 2, {{0, 2}}, out.data()), std::invalid_argument);
}

}  // namespace
}  // namespace w2p::features
