// FFT overlap-add convolution against direct convolution in double.
#include "roomsim/kernels/fft_convolution.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

namespace w2p::roomsim {
namespace {

std::vector<float> noise(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

std::vector<double> direct(const std::vector<float>& x, const std::vector<float>& h) {
  std::vector<double> y(x.size() + h.size() - 1, 0.0);
  for (std::size_t i = 0; i < x.size(); ++i) {
    for (std::size_t k = 0; k < h.size(); ++k) y[i + k] += static_cast<double>(x[i]) * h[k];
  }
  return y;
}

// Every output sample against the direct sum, relative to the output's peak; zeros past each
// filter's full length.
void expect_matches_direct(const std::vector<float>& x,
                           const std::vector<std::vector<float>>& filters, std::size_t out_len) {
  const std::vector<float> got = convolve_full_many(x.data(), x.size(), filters, out_len);
  ASSERT_EQ(got.size(), filters.size() * out_len);
  for (std::size_t m = 0; m < filters.size(); ++m) {
    const std::vector<double> want = direct(x, filters[m]);
    double peak = 0.0;
    for (double v : want) peak = std::max(peak, std::abs(v));
    double err = 0.0;
    for (std::size_t t = 0; t < out_len; ++t) {
      const double w = t < want.size() ? want[t] : 0.0;
      err = std::max(err, std::abs(got[m * out_len + t] - w));
    }
    EXPECT_LE(err, 2e-6 * peak) << "filter " << m << " of length " << filters[m].size()
                                << ", signal " << x.size() << ", out " << out_len;
  }
}

TEST(FftConvolution, MatchesDirectOverShapes) {
  unsigned seed = 1;
  for (std::size_t n : {1u, 5u, 100u, 1000u, 16000u}) {
    for (std::size_t lh : {1u, 3u, 82u, 300u, 5000u}) {
      std::vector<std::vector<float>> filters = {noise(lh, ++seed), noise(lh / 2 + 1, ++seed)};
      expect_matches_direct(noise(n, ++seed), filters, n + lh - 1 + (n + lh - 1) % 2);
    }
  }
}

TEST(FftConvolution, SixRoomSizedFiltersOfDifferentLengths) {
  std::vector<std::vector<float>> filters;
  for (std::size_t lh : {5000u, 5100u, 4900u, 5203u, 5050u, 4999u}) {
    filters.push_back(noise(lh, static_cast<unsigned>(lh)));
  }
  expect_matches_direct(noise(16000, 9), filters, 16000 + 5203 - 1);
}

TEST(FftConvolution, OutputLengthTruncatesOrZeroPads) {
  const auto x = noise(700, 4);
  const std::vector<std::vector<float>> filters = {noise(90, 5)};
  expect_matches_direct(x, filters, 300);   // truncated
  expect_matches_direct(x, filters, 1000);  // zero-padded past 789
}

TEST(FftConvolution, EmptyInputsGiveZeros) {
  const auto x = noise(10, 1);
  EXPECT_TRUE(convolve_full_many(x.data(), x.size(), {}, 20).empty());
  const auto y = convolve_full_many(x.data(), 0, {noise(3, 2)}, 5);
  EXPECT_EQ(y, std::vector<float>(5, 0.0f));
  const auto z = convolve_full_many(x.data(), x.size(), {std::vector<float>{}}, 4);
  EXPECT_EQ(z, std::vector<float>(4, 0.0f));
}

TEST(FftConvolution, FftSizeIsAPowerOfTwoHoldingTheFilter) {
  for (std::size_t n : {10u, 16000u, 40000u}) {
    for (std::size_t lh : {1u, 82u, 6000u, 13000u}) {
      const std::size_t size = choose_fft_size(n, lh, 6);
      EXPECT_EQ(size & (size - 1), 0u) << size;
      EXPECT_GE(size, 2 * lh) << n << " " << lh;
      // Never larger than needed for one block of everything or for twice the filter.
      EXPECT_LT(size / 2, std::max<std::size_t>({n + lh - 1, 2 * lh, 16})) << n << " " << lh;
    }
  }
}

// Plans are shared between threads; results must not depend on who created them.
TEST(FftConvolution, ConcurrentCallsGiveIdenticalResults) {
  const auto x = noise(9000, 11);
  const std::vector<std::vector<float>> filters = {noise(1234, 12), noise(777, 13)};
  const std::vector<float> serial = convolve_full_many(x.data(), x.size(), filters, 10232);
  std::vector<std::vector<float>> out(4);
  std::vector<std::thread> threads;
  for (auto& o : out) {
    threads.emplace_back([&] { o = convolve_full_many(x.data(), x.size(), filters, 10232); });
  }
  for (auto& t : threads) t.join();
  for (const auto& o : out) EXPECT_EQ(o, serial);
}

}  // namespace
}  // namespace w2p::roomsim
