// RealFft against a direct DFT in double precision.
#include "features/kernels/real_fft.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace w2p::features {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<std::complex<double>> direct_rfft(const std::vector<float>& x) {
  const std::size_t n = x.size();
  std::vector<std::complex<double>> out(n / 2 + 1);
  for (std::size_t k = 0; k < out.size(); ++k) {
    std::complex<double> sum = 0.0;
    for (std::size_t t = 0; t < n; ++t) {
      const double phase = -2.0 * kPi * static_cast<double>((k * t) % n) / static_cast<double>(n);
      sum += static_cast<double>(x[t]) * std::complex<double>(std::cos(phase), std::sin(phase));
    }
    out[k] = sum;
  }
  return out;
}

std::vector<float> random_signal(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(gen);
  return x;
}

TEST(RealFft, ForwardMatchesDirectDftForEvenAndOddLengths) {
  for (int n : {1, 2, 7, 16, 100, 1023}) {
    const std::vector<float> x = random_signal(static_cast<std::size_t>(n), 10u + n);
    const RealFft fft(n);
    ASSERT_EQ(fft.bins(), n / 2 + 1);
    std::vector<std::complex<float>> spectrum(static_cast<std::size_t>(fft.bins()));
    fft.forward(x.data(), spectrum.data());
    const auto expected = direct_rfft(x);
    // float32 FFT: rounding grows like eps * log2(n) * sqrt(n) * rms(x); 1e-5 * sqrt(n) bounds it
    // with a wide margin for n <= 1023 (unit-variance input).
    const double tolerance = 1e-5 * std::sqrt(static_cast<double>(n));
    for (std::size_t k = 0; k < spectrum.size(); ++k) {
      EXPECT_NEAR(spectrum[k].real(), expected[k].real(), tolerance) << "n=" << n << " k=" << k;
      EXPECT_NEAR(spectrum[k].imag(), expected[k].imag(), tolerance) << "n=" << n << " k=" << k;
    }
  }
}

TEST(RealFft, InverseOfForwardIsNTimesTheInput) {
  const int n = 4096;
  const RealFft fft(n);
  const std::vector<float> x = random_signal(n, 3);
  AlignedVector<std::complex<float>> spectrum(static_cast<std::size_t>(fft.bins()));
  AlignedVector<float> back(n);
  fft.forward(x.data(), spectrum.data());
  fft.inverse(spectrum.data(), back.data());
  // Round trip in float32 for n = 4096: relative error a few 1e-7; 1e-5 absolute on unit-variance
  // data leaves room without hiding a wrong scale or sign (those give O(1) errors).
  for (int t = 0; t < n; ++t) EXPECT_NEAR(back[t] / n, x[t], 1e-5) << t;
}

TEST(RealFft, UnalignedPointersGiveTheSameSpectrumAsAlignedOnes) {
  const int n = 256;
  const RealFft fft(n);
  const std::vector<float> x = random_signal(n, 4);
  AlignedVector<float> aligned(x.begin(), x.end());
  AlignedVector<float> shifted(n + 1);
  std::copy(x.begin(), x.end(), shifted.begin() + 1);  // 4-byte offset: not SIMD-aligned
  AlignedVector<std::complex<float>> a(static_cast<std::size_t>(fft.bins()));
  AlignedVector<std::complex<float>> b(static_cast<std::size_t>(fft.bins()) + 1);
  fft.forward(aligned.data(), a.data());
  fft.forward(shifted.data() + 1, b.data() + 1);
  // Different plans (SIMD vs scalar) may round differently: 1e-4 on values of size ~sqrt(n)=16.
  for (int k = 0; k < fft.bins(); ++k) {
    EXPECT_NEAR(a[k].real(), b[k + 1].real(), 1e-4);
    EXPECT_NEAR(a[k].imag(), b[k + 1].imag(), 1e-4);
  }
}

TEST(RealFft, PlanningFromManyThreadsAtOnceIsSafe) {
  // Every thread plans several lengths concurrently and checks a round trip.
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([i, &failures] {
      for (int n : {48 + i, 64, 96 + 2 * i, 500 + i}) {
        const RealFft fft(n);
        std::vector<float> x = random_signal(static_cast<std::size_t>(n), 100u + i);
        std::vector<std::complex<float>> s(static_cast<std::size_t>(fft.bins()));
        std::vector<float> y(static_cast<std::size_t>(n));
        fft.forward(x.data(), s.data());
        fft.inverse(s.data(), y.data());
        for (int t = 0; t < n; ++t) {
          if (std::abs(y[t] / n - x[t]) > 1e-5f) ++failures[i];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(failures[i], 0) << "thread " << i;
}

TEST(RealFft, RejectsNonPositiveLength) {
  EXPECT_THROW(RealFft(0), std::invalid_argument);
  EXPECT_THROW(RealFft(-4), std::invalid_argument);
}

}  // namespace
}  // namespace w2p::features
