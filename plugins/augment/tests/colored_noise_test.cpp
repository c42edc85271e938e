// Coloured-noise augmentation against the reference's golden data (reference/colored_noise.h5,
// same white-noise draw injected) and against a direct-DFT implementation written here.
#include "augment/kernels/colored_noise.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <random>
#include <stdexcept>
#include <vector>

#include "support/fixture_h5.hpp"

namespace w2p::augment {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<float> row(const test::Array<float>& a, std::int64_t r) {
  const std::int64_t cols = a.shape.at(1);
  return {a.values.begin() + r * cols, a.values.begin() + (r + 1) * cols};
}

// Distance in units in the last place between two finite floats of the same sign.
std::int64_t ulp_distance(float a, float b) {
  std::int32_t ia = 0, ib = 0;
  std::memcpy(&ia, &a, sizeof(float));
  std::memcpy(&ib, &b, sizeof(float));
  return std::abs(static_cast<std::int64_t>(ia) - static_cast<std::int64_t>(ib));
}

class ColoredNoiseFixture : public ::testing::Test {
 protected:
  ColoredNoiseFixture() : h5_(test::fixture_path("reference/colored_noise.h5")) {}
  test::H5Reader h5_;
};

TEST_F(ColoredNoiseFixture, FrequencyBaseIsTorchLinspaceBitForBit) {
  const auto want = h5_.read<float>("outputs/freq_base");
  const std::vector<float> got = colored_noise_frequency_base(16000);
  ASSERT_EQ(got.size(), want.values.size());
  for (std::size_t k = 0; k < got.size(); ++k) ASSERT_EQ(got[k], want.values[k]) << "bin " << k;
}

TEST_F(ColoredNoiseFixture, GainMatchesReference) {
  const auto base = h5_.read<float>("outputs/freq_base");
  const auto f_decay = h5_.read<float>("cases/f_decay");
  const auto want = h5_.read<float>("outputs/gain");
  std::int64_t worst = 0;
  for (std::int64_t c = 0; c < f_decay.numel(); ++c) {
    std::vector<float> got(base.values.size());
    colored_noise_gain(base.values.data(), got.size(), f_decay.values[static_cast<std::size_t>(c)],
                       got.data());
    const std::vector<float> expected = row(want, c);
    for (std::size_t k = 0; k < got.size(); ++k) {
      const std::int64_t d = ulp_distance(got[k], expected[k]);
      worst = std::max(worst, d);
      // powf here vs torch's (possibly SIMD) pow: both within about an ulp of the true value.
      ASSERT_LE(d, 2) << "case " << c << " bin " << k << ": " << got[k] << " vs " << expected[k];
    }
  }
  std::cout << "[ measured ] gain: worst " << worst << " ulp\n";
}

TEST_F(ColoredNoiseFixture, ShapedNoiseAndNoisySignalMatchReference) {
  const auto white = h5_.read<float>("inputs/white");
  const auto signal = h5_.read<float>("inputs/signal");
  const auto f_decay = h5_.read<float>("cases/f_decay");
  const auto snr_db = h5_.read<float>("cases/snr_db");
  const auto want_noise = h5_.read<float>("outputs/noise");
  const auto want_scale = h5_.read<float>("outputs/noise_scale");
  const auto want_noisy = h5_.read<float>("outputs/noisy");
  const std::int64_t n = signal.numel();
  ColoredNoiseShaper shaper(16000);
  std::vector<float> noise(16000), noisy(static_cast<std::size_t>(n));
  double worst_noise = 0.0, worst_scale = 0.0, worst_noisy = 0.0;
  for (std::int64_t c = 0; c < f_decay.numel(); ++c) {
    const float decay = f_decay.values[static_cast<std::size_t>(c)];
    const float snr = snr_db.values[static_cast<std::size_t>(c)];
    shaper.shape(white.values.data(), decay, noise.data());
    const std::vector<float> expected_noise = row(want_noise, c);
    // Unit-RMS noise through two float32 FFTs of length 16000 (FFTW here, pocketfft there):
    // rounding differences of a few 1e-6 absolute; 5e-5 leaves margin (values are O(1)).
    for (std::size_t t = 0; t < noise.size(); ++t) {
      worst_noise = std::max(worst_noise, std::abs(double{noise[t]} - expected_noise[t]));
      ASSERT_NEAR(noise[t], expected_noise[t], 5e-5) << "case " << c << " sample " << t;
    }
    const float scale = colored_noise_scale(signal.values.data(), n, snr);
    const float expected_scale = want_scale.values[static_cast<std::size_t>(c)];
    worst_scale = std::max(worst_scale, std::abs(double{scale} / expected_scale - 1.0));
    // A mean of squares and a power of ten in float32: a few ulp relative.
    ASSERT_NEAR(scale, expected_scale, 1e-6 * expected_scale) << "case " << c;
    shaper.apply(signal.values.data(), n, white.values.data(), snr, decay, noisy.data());
    const std::vector<float> expected_noisy = row(want_noisy, c);
    for (std::int64_t t = 0; t < n; ++t) {
      const std::size_t i = static_cast<std::size_t>(t);
      worst_noisy = std::max(worst_noisy, std::abs(double{noisy[i]} - expected_noisy[i]));
      ASSERT_NEAR(noisy[i], expected_noisy[i], 5e-5 * std::max(1.0f, expected_scale))
          << "case " << c << " sample " << t;
    }
  }
  std::cout << "[ measured ] noise max abs " << worst_noise << ", scale max rel " << worst_scale
            << ", noisy max abs " << worst_noisy << "\n";
}

// The whole row from the definition in double: direct DFT of the white noise, gain from the
// float32 base, inverse DFT (Hermitian extension), unit RMS, tile, add at the SNR.
// `base` is the shaping axis g (fs/2 + 1 values).
std::vector<double> brute_force_row(const std::vector<float>& signal,
                                    const std::vector<float>& white, float snr_db, float f_decay,
                                    const std::vector<double>& base) {
  const std::size_t fs = white.size();
  const std::size_t bins = fs / 2 + 1;
  std::vector<std::complex<double>> spec(bins);
  for (std::size_t k = 0; k < bins; ++k) {
    std::complex<double> sum = 0.0;
    for (std::size_t t = 0; t < fs; ++t) {
      sum += double{white[t]} * std::polar(1.0, -2.0 * kPi * double((k * t) % fs) / double(fs));
    }
    spec[k] = sum / std::pow(base[k], double{f_decay});
  }
  std::vector<double> noise(fs);
  double power = 0.0;
  for (std::size_t t = 0; t < fs; ++t) {
    double v = spec[0].real() + spec[bins - 1].real() * ((t % 2) ? -1.0 : 1.0);
    for (std::size_t k = 1; k + 1 < bins; ++k) {
      v += 2.0 * (spec[k] * std::polar(1.0, 2.0 * kPi * double((k * t) % fs) / double(fs))).real();
    }
    noise[t] = v / double(fs);
    power += noise[t] * noise[t];
  }
  const double rms = std::sqrt(power / double(fs));
  double signal_power = 0.0;
  for (float s : signal) signal_power += double{s} * s;
  const double scale =
      std::sqrt(signal_power / double(signal.size())) / std::pow(10.0, snr_db / 20.0);
  std::vector<double> out(signal.size());
  for (std::size_t t = 0; t < signal.size(); ++t) {
    out[t] = signal[t] + scale * noise[t % fs] / (rms + 1e-8);
  }
  return out;
}

TEST(ColoredNoise, MatchesDirectDftDefinitionAndTilesLongSignals) {
  const int fs = 64;
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> white(fs), signal(150);  // 150 = 2 full periods + 22 samples
  for (float& v : white) v = normal(gen);
  for (float& v : signal) v = 0.5f * normal(gen);
  // Reference axis: the kernel's linspace (pinned bit for bit by the fixture test above);
  // fixed axis: sqrt of linspace(1, fs/2) computed here.
  const std::vector<float> linspace = colored_noise_frequency_base(fs);
  std::vector<double> reference_axis(linspace.begin(), linspace.end());
  std::vector<double> sqrt_axis(fs / 2 + 1);
  for (int k = 0; k <= fs / 2; ++k)
    sqrt_axis[k] = std::sqrt(1.0 + (fs / 2.0 - 1.0) * k / (fs / 2.0));
  for (ShapingAxis axis : {ShapingAxis::kReferenceLinspace, ShapingAxis::kSqrtFrequency}) {
    ColoredNoiseShaper shaper(fs, axis);
    const std::vector<double>& base =
        axis == ShapingAxis::kReferenceLinspace ? reference_axis : sqrt_axis;
    for (float f_decay : {-2.0f, -0.7f, 0.0f, 1.0f, 2.0f}) {
      for (float snr : {0.0f, 12.5f, 30.0f}) {
        std::vector<float> got(signal.size());
        shaper.apply(signal.data(), static_cast<std::int64_t>(signal.size()), white.data(), snr,
                     f_decay, got.data());
        const std::vector<double> want = brute_force_row(signal, white, snr, f_decay, base);
        // float32 pipeline vs double: a few float ulps of O(1) values.
        for (std::size_t t = 0; t < got.size(); ++t) {
          ASSERT_NEAR(got[t], want[t], 2e-5)
              << "axis " << int(axis) << " f_decay " << f_decay << " snr " << snr << " t " << t;
        }
      }
    }
  }
}

TEST(ColoredNoise, SqrtFrequencyAxisGivesPinkPowerForDecayOne) {
  // With the fix, f_decay = 1 scales bin power by 1 / (1 + (fs/2 - 1) k / (fs/2)): 1/f.
  const int fs = 16000;
  const std::vector<float> base = colored_noise_frequency_base(fs, ShapingAxis::kSqrtFrequency);
  std::vector<float> gain(base.size());
  colored_noise_gain(base.data(), base.size(), 1.0f, gain.data());
  for (std::size_t k = 0; k < gain.size(); ++k) {
    const double frequency_axis = 1.0 + (fs / 2.0 - 1.0) * double(k) / (fs / 2.0);
    ASSERT_NEAR(double{gain[k]} * gain[k] * frequency_axis, 1.0, 1e-6) << k;
  }
}

TEST(ColoredNoise, ZeroDecayKeepsWhiteNoiseUpToScale) {
  // f_decay = 0: gain 1, so the shaped noise is the white noise divided by its RMS.
  const int fs = 256;
  std::mt19937 gen(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> white(fs), noise(fs);
  for (float& v : white) v = normal(gen);
  ColoredNoiseShaper shaper(fs);
  shaper.shape(white.data(), 0.0f, noise.data());
  const float rms = root_mean_square(white.data(), fs);
  for (int t = 0; t < fs; ++t) EXPECT_NEAR(noise[t], white[t] / rms, 1e-5) << t;
}

TEST(ColoredNoise, AchievesTheRequestedSnrOverAWholePeriod) {
  const int fs = 1000;
  std::mt19937 gen(4);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> white(fs), signal(fs), out(fs), diff(fs);
  for (float& v : white) v = normal(gen);
  for (float& v : signal) v = 0.3f * normal(gen);
  ColoredNoiseShaper shaper(fs);
  for (float snr : {0.0f, 7.0f, 30.0f}) {
    shaper.apply(signal.data(), fs, white.data(), snr, 1.3f, out.data());
    for (int t = 0; t < fs; ++t) diff[t] = out[t] - signal[t];
    const double measured =
        20.0 * std::log10(root_mean_square(signal.data(), fs) / root_mean_square(diff.data(), fs));
    EXPECT_NEAR(measured, snr, 1e-3) << snr;
  }
}

TEST(ColoredNoise, GeneratorConvenienceDrawsInTheReferenceOrder) {
  const int rows = 3;
  const std::int64_t n = 300;
  const int fs = 128;
  std::vector<float> clean(rows * n);
  for (std::size_t i = 0; i < clean.size(); ++i) clean[i] = std::sin(0.01f * float(i));
  std::vector<float> augmented = clean;
  ColoredNoiseShaper shaper(fs);
  std::mt19937_64 gen(77);
  const std::vector<ColoredNoiseDraw> draws =
      add_colored_noise(augmented.data(), rows, n, gen, shaper);
  ASSERT_EQ(draws.size(), std::size_t{rows});
  // Replay: all SNRs, then all decays, then fs white samples per row, through the explicit API.
  std::mt19937_64 replay(77);
  std::uniform_real_distribution<float> snr(0.0f, 30.0f), decay(-2.0f, 2.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> snrs(rows), decays(rows);
  for (float& v : snrs) v = snr(replay);
  for (float& v : decays) v = decay(replay);
  std::vector<float> white(fs), expected(n);
  for (int r = 0; r < rows; ++r) {
    EXPECT_EQ(draws[r].snr_db, snrs[r]);
    EXPECT_EQ(draws[r].f_decay, decays[r]);
    EXPECT_GE(draws[r].snr_db, 0.0f);
    EXPECT_LT(draws[r].snr_db, 30.0f);
    EXPECT_GE(draws[r].f_decay, -2.0f);
    EXPECT_LT(draws[r].f_decay, 2.0f);
    for (float& v : white) v = normal(replay);
    shaper.apply(clean.data() + r * n, n, white.data(), snrs[r], decays[r], expected.data());
    for (std::int64_t t = 0; t < n; ++t) ASSERT_EQ(augmented[r * n + t], expected[t]) << r;
  }
}

TEST(ColoredNoise, RejectsOddOrTooSmallSampleRates) {
  EXPECT_THROW(ColoredNoiseShaper(15999), std::invalid_argument);
  EXPECT_THROW(ColoredNoiseShaper(0), std::invalid_argument);
  EXPECT_THROW(colored_noise_frequency_base(7), std::invalid_argument);
  std::vector<float> x(4);
  EXPECT_THROW(add_scaled_noise(x.data(), 4, x.data(), 0, 1.0f, x.data()), std::invalid_argument);
}

}  // namespace
}  // namespace w2p::augment
