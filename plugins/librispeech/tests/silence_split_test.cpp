// Silence split (librosa.effects.split as the reference's corpus filter calls it) against a
// brute-force transcription of librosa's steps, plus edge cases with known answers.
#include "librispeech/kernels/silence_split.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace w2p::librispeech {
namespace {

constexpr double kPi = 3.14159265358979323846;

// librosa.effects.split step by step, with the straightforward data layout: np.pad the signal,
// frame it, mean power per frame, amplitude_to_db(ref=max), threshold, then librosa's
// edge detection on np.diff of the non-silent mask.
std::vector<SampleInterval> brute_force_split(const std::vector<float>& y,
                                              const SilenceSplitOptions& options) {
  const std::int64_t n = static_cast<std::int64_t>(y.size());
  const std::int64_t half = options.frame_length / 2;
  std::vector<double> padded;
  for (std::int64_t i = -half; i < n + half; ++i) {
    if (i >= 0 && i < n) {
      padded.push_back(y[static_cast<std::size_t>(i)]);
    } else if (options.pad_mode == PadMode::kConstant) {
      padded.push_back(0.0);
    } else {  // 'reflect' for pads shorter than the signal: mirror about the end samples
      const std::int64_t j = i < 0 ? -i : 2 * (n - 1) - i;
      padded.push_back(y[static_cast<std::size_t>(j)]);
    }
  }
  const std::int64_t frames =
      1 + (static_cast<std::int64_t>(padded.size()) - options.frame_length) / options.hop_length;
  std::vector<double> rms;
  for (std::int64_t k = 0; k < frames; ++k) {
    double power = 0.0;
    for (int t = 0; t < options.frame_length; ++t) {
      const double v = padded[static_cast<std::size_t>(k * options.hop_length + t)];
      power += v * v;
    }
    rms.push_back(std::sqrt(power / options.frame_length));
  }
  const double ref = *std::max_element(rms.begin(), rms.end());
  std::vector<int> non_silent;
  for (double r : rms) {
    const double db =
        10.0 * std::log10(std::max(1e-10, r * r)) - 10.0 * std::log10(std::max(1e-10, ref * ref));
    non_silent.push_back(db > -options.top_db ? 1 : 0);
  }
  std::vector<std::int64_t> edges;
  if (non_silent.front()) edges.push_back(0);
  for (std::size_t k = 1; k < non_silent.size(); ++k) {
    if (non_silent[k] != non_silent[k - 1]) edges.push_back(static_cast<std::int64_t>(k));
  }
  if (non_silent.back()) edges.push_back(static_cast<std::int64_t>(non_silent.size()));
  std::vector<SampleInterval> intervals;
  for (std::size_t e = 0; e + 1 < edges.size(); e += 2) {
    intervals.push_back({std::min(edges[e] * options.hop_length, n),
                         std::min(edges[e + 1] * options.hop_length, n)});
  }
  return intervals;
}

// Noise with a piecewise-constant envelope: loud, quiet and near-threshold stretches.
std::vector<float> speech_like(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> level_db(-45.0f, 0.0f);
  std::uniform_int_distribution<int> segment(200, 6000);
  std::vector<float> y(n);
  std::size_t i = 0;
  while (i < n) {
    const float gain = std::pow(10.0f, level_db(gen) / 20.0f);
    const std::size_t end = std::min(n, i + static_cast<std::size_t>(segment(gen)));
    for (; i < end; ++i) y[i] = gain * normal(gen);
  }
  return y;
}

std::vector<float> tone(std::size_t n, double amplitude, double freq_hz, double fs) {
  std::vector<float> y(n);
  for (std::size_t t = 0; t < n; ++t) {
    y[t] = static_cast<float>(amplitude * std::sin(2.0 * kPi * freq_hz * t / fs));
  }
  return y;
}

TEST(SilenceSplit, MatchesBruteForceLibrosaSteps) {
  // Lengths: multiples of the hop (last frame clipped to an empty interval possible), odd ones,
  // shorter than a frame, shorter than a hop.
  for (std::size_t n : {std::size_t{160000}, std::size_t{48000}, std::size_t{33333},
                        std::size_t{2047}, std::size_t{1500}, std::size_t{511}}) {
    for (unsigned seed = 0; seed < 5; ++seed) {
      const std::vector<float> y = speech_like(n, 100 * seed + static_cast<unsigned>(n % 97));
      for (double top_db : {20.0, 35.0}) {
        SilenceSplitOptions options;
        options.top_db = top_db;
        // Both sides accumulate the same products in the same order, so results agree exactly.
        EXPECT_EQ(split_on_silence(y.data(), static_cast<std::int64_t>(n), options),
                  brute_force_split(y, options))
            << "n=" << n << " seed=" << seed << " top_db=" << top_db;
      }
    }
  }
}

TEST(SilenceSplit, ReflectPaddingMatchesBruteForce) {
  SilenceSplitOptions options;
  options.pad_mode = PadMode::kReflect;
  for (unsigned seed = 0; seed < 5; ++seed) {
    const std::vector<float> y = speech_like(40000 + 77 * seed, seed);
    EXPECT_EQ(split_on_silence(y.data(), static_cast<std::int64_t>(y.size()), options),
              brute_force_split(y, options))
        << seed;
  }
}

TEST(SilenceSplit, ReflectPaddingRepeatsTheMirrorForSignalsShorterThanThePad) {
  // np.pad([1, 2, 3], 4, mode='reflect') = [1 2 3 2 | 1 2 3 | 2 1 2 3] (checked with numpy).
  // Frame length 8 (pad 4), hop 8: one frame [1 2 3 2 1 2 3 2], mean square 36 / 8 = 4.5.
  const std::vector<float> y = {1.0f, 2.0f, 3.0f};
  const std::vector<double> rms = frame_rms(y.data(), 3, 8, 8, PadMode::kReflect);
  ASSERT_EQ(rms.size(), 1u);
  EXPECT_NEAR(rms[0], std::sqrt(4.5), 1e-12);
}

TEST(SilenceSplit, FrameRmsHasOnePlusNOverHopCentredFrames) {
  const std::vector<float> y(5000, 1.0f);
  const std::vector<double> rms = frame_rms(y.data(), 5000, 2048, 512);
  ASSERT_EQ(rms.size(), 1u + 5000u / 512u);
  // Frame 0 covers samples [-1024, 1024): half zeros -> mean square 0.5.
  EXPECT_NEAR(rms[0], std::sqrt(0.5), 1e-12);
  // Frame 2 covers [0, 2048): all ones.
  EXPECT_NEAR(rms[2], 1.0, 1e-12);
  // Last frame (k = 9) covers [3584, 5632): 1416 ones.
  EXPECT_NEAR(rms[9], std::sqrt(1416.0 / 2048.0), 1e-12);
}

TEST(SilenceSplit, ToneBurstsAtKnownPositions) {
  const double fs = 16000.0;
  std::vector<float> y(160000, 0.0f);
  // Burst A: amplitude 0.5 on [32000, 48000); burst B: 0.25 (-6 dB) on [80000, 88000);
  // burst C: 0.04 (-21.9 dB, below the 20 dB threshold) on [120000, 136000).
  auto add_burst = [&](std::size_t begin, std::size_t end, double amplitude) {
    const std::vector<float> t = tone(end - begin, amplitude, 1000.0, fs);
    std::copy(t.begin(), t.end(), y.begin() + static_cast<std::ptrdiff_t>(begin));
  };
  add_burst(32000, 48000, 0.5);
  add_burst(80000, 88000, 0.25);
  add_burst(120000, 136000, 0.04);
  // Frame k covers [512 k - 1024, 512 k + 1024). With burst edges at odd multiples of 256, a
  // frame overlaps a burst by 0 or >= 256 samples; 256 samples of burst A are -9 dB and of B
  // -15 dB relative to a full frame of A, so every overlapping frame is non-silent.
  // A: first frame k = 61 (ends at 32256), last k = 95 (starts at 47616) -> [31232, 49152).
  // B: k = 155 .. 173 -> [79360, 89088).
  const std::vector<SampleInterval> expected = {{31232, 49152}, {79360, 89088}};
  EXPECT_EQ(split_on_silence(y.data(), static_cast<std::int64_t>(y.size())), expected);
  EXPECT_EQ(brute_force_split(y, {}), expected);
  EXPECT_NEAR(voiced_duration_seconds(y.data(), static_cast<std::int64_t>(y.size()), fs),
              (17920.0 + 9728.0) / fs, 1e-12);
}

TEST(SilenceSplit, AllZeroSignalIsOneNonSilentInterval) {
  // QUIRK(spec §1.1): levels are relative to the loudest frame, and every frame sits at the
  // amin floor, so every frame is 0 dB: librosa keeps the whole signal.
  const std::vector<float> y(10000, 0.0f);
  const std::vector<SampleInterval> expected = {{0, 10000}};
  EXPECT_EQ(split_on_silence(y.data(), 10000), expected);
  EXPECT_EQ(brute_force_split(y, {}), expected);
}

TEST(SilenceSplit, ConstantLevelSignalIsOneNonSilentInterval) {
  // Uniform low-level noise is "silent" only relative to something louder.
  std::vector<float> y = tone(20000, 1e-3, 440.0, 16000.0);
  EXPECT_EQ(split_on_silence(y.data(), 20000), (std::vector<SampleInterval>{{0, 20000}}));
}

TEST(SilenceSplit, SignalShorterThanAFrameGivesClippedIntervals) {
  const std::vector<float> y = tone(300, 0.3, 500.0, 16000.0);  // one frame: 1 + 300 / 512
  EXPECT_EQ(split_on_silence(y.data(), 300), (std::vector<SampleInterval>{{0, 300}}));
  const std::vector<float> longer = tone(1000, 0.3, 500.0, 16000.0);  // two frames
  EXPECT_EQ(split_on_silence(longer.data(), 1000), (std::vector<SampleInterval>{{0, 1000}}));
}

TEST(SilenceSplit, EmptySignalHasNoVoicedSamples) {
  // librosa: one all-zero frame, non-silent, [0, 512] clipped to [0, 0].
  EXPECT_EQ(split_on_silence(nullptr, 0), (std::vector<SampleInterval>{{0, 0}}));
  EXPECT_EQ(voiced_duration_seconds(nullptr, 0, 16000.0), 0.0);
}

TEST(SilenceSplit, VoicedDurationIsTheConcatenatedLength) {
  const std::vector<SampleInterval> intervals = {{0, 100}, {300, 350}, {1000, 1000}};
  EXPECT_EQ(total_samples(intervals), 150);
}

TEST(SilenceSplit, KeepUtteranceRequiresStrictlyMoreThanTheMinimum) {
  EXPECT_FALSE(keep_utterance(2.0));
  EXPECT_TRUE(keep_utterance(2.0 + 1.0 / 16000.0));
  EXPECT_FALSE(keep_utterance(1.5));
  EXPECT_TRUE(keep_utterance(1.5, 1.0));
}

TEST(SilenceSplit, RejectsInvalidOptions) {
  const std::vector<float> y(100, 0.1f);
  SilenceSplitOptions bad_hop;
  bad_hop.hop_length = 0;
  EXPECT_THROW(split_on_silence(y.data(), 100, bad_hop), std::invalid_argument);
  SilenceSplitOptions bad_frame;
  bad_frame.frame_length = 0;
  EXPECT_THROW(split_on_silence(y.data(), 100, bad_frame), std::invalid_argument);
  SilenceSplitOptions bad_db;
  bad_db.top_db = std::nan("");
  EXPECT_THROW(split_on_silence(y.data(), 100, bad_db), std::invalid_argument);
  EXPECT_THROW(split_on_silence(y.data(), -1), std::invalid_argument);
  EXPECT_THROW(voiced_duration_seconds(y.data(), 100, 0.0), std::invalid_argument);
}

}  // namespace
}  // namespace w2p::librispeech
