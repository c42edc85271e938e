// wav2pos items: the TOA/TDOA matrix and the 7-channel crop with its one-sample quirk.
#include "roomsim/kernels/wav2pos_labels.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "roomsim/kernels/simulate_room.hpp"
#include "roomsim/kernels/wav2pos_geometry.hpp"

namespace w2p::roomsim {
namespace {

TEST(Wav2posLabels, TdoaMatrixFollowsTheGeometry) {
  std::mt19937_64 gen(5);
  for (int trial = 0; trial < 20; ++trial) {
    const auto face = sample_face_microphones(kWav2posRoomSize, gen);
    const std::vector<Vec3> mics(face.begin(), face.end());
    const Vec3 s = sample_source_position(kWav2posRoomSize, {}, gen);
    const std::vector<double> t = tdoa_matrix(s, mics);
    ASSERT_EQ(t.size(), 49u);
    auto dist = [&](int i) {
      return std::hypot(s[0] - mics[i][0], s[1] - mics[i][1], s[2] - mics[i][2]);
    };
    EXPECT_EQ(t[0], 0.0);
    for (int i = 1; i <= 6; ++i) {
      EXPECT_NEAR(t[i * 7 + 0], dist(i - 1) * 16000.0 / 343.0, 1e-9);  // TOA
      EXPECT_EQ(t[0 * 7 + i], -t[i * 7 + 0]);
      for (int j = 1; j <= 6; ++j) {
        EXPECT_NEAR(t[i * 7 + j], (dist(i - 1) - dist(j - 1)) * 16000.0 / 343.0, 1e-9);
        EXPECT_EQ(t[i * 7 + j], -t[j * 7 + i]);
      }
    }
  }
  // Other rates, speeds and microphone counts.
  const std::vector<double> t = tdoa_matrix({0, 0, 0}, {{3, 4, 0}}, 8000.0, 300.0);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_DOUBLE_EQ(t[2], 5.0 * 8000.0 / 300.0);
}

// An anechoic room with microphones at whole-sample delays D: microphone m is the dry signal
// delayed by 40 + D samples, scaled by 1/r. The reference's crop at +41 makes it appear D - 1
// samples after channel 0 while its label says D (QUIRK); fix_alignment (+40) restores D.
TEST(Wav2posLabels, CropQuirkShiftsMicrophonesOneSampleEarly) {
  const ShoeboxRoom room = ShoeboxRoom::uniform(kWav2posRoomSize, 1.0, 0);
  const Vec3 source{1.0, 2.5, 1.0};
  const int delays[2] = {60, 173};
  std::vector<Vec3> mics;
  for (int d : delays) mics.push_back({1.0 + d * 343.0 / 16000.0, 2.5, 1.0});
  std::mt19937 gen(1);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::vector<float> dry(30000);
  for (float& v : dry) v = noise(gen);
  const MicSignals sig = ShoeboxSimulator().simulate(room, source, mics, dry.data(), dry.size());
  const std::vector<double> labels = tdoa_matrix(source, mics);

  for (bool fix : {false, true}) {
    CropOptions crop;
    crop.fix_alignment = fix;
    EXPECT_EQ(crop.mic_offset(), fix ? 40 : 41);
    const std::vector<float> audio = crop_item_audio(dry.data(), dry.size(), sig, crop);
    ASSERT_EQ(audio.size(), 3u * 16000u);
    for (int t = 0; t < 16000; ++t) ASSERT_EQ(audio[t], dry[8000 + t]);
    for (int m = 0; m < 2; ++m) {
      const double r = delays[m] * 343.0 / 16000.0;
      EXPECT_NEAR(labels[(m + 1) * 3], delays[m], 1e-9);
      const int shift = fix ? delays[m] : delays[m] - 1;  // where channel 0 shows up
      for (int t = shift; t < 16000; ++t) {
        // Tolerance: the table's side lobes (<= 1e-3 of the peak per tap) over 81 taps of
        // unit-variance noise; a one-sample misalignment would be off by O(1).
        ASSERT_NEAR(audio[(m + 1) * 16000 + t], audio[t - shift] / r, 5e-3)
            << "fix " << fix << " mic " << m << " t " << t;
      }
    }
  }
}

TEST(Wav2posLabels, CropRejectsShortInputs) {
  std::vector<float> dry(20000, 1.0f);  // shorter than 0.5 s + 1 s
  std::vector<float> mic(30000, 1.0f);
  EXPECT_THROW(crop_item_audio(dry.data(), dry.size(), mic.data(), 1, 30000),
               std::invalid_argument);
  std::vector<float> long_dry(24000, 1.0f);  // exactly enough
  EXPECT_NO_THROW(crop_item_audio(long_dry.data(), long_dry.size(), mic.data(), 1, 30000));
  EXPECT_THROW(crop_item_audio(long_dry.data(), long_dry.size(), mic.data(), 1, 24040),
               std::invalid_argument);  // microphone needs [8041, 24041)
  CropOptions bad;
  bad.length = 0;
  EXPECT_THROW(crop_item_audio(long_dry.data(), long_dry.size(), mic.data(), 1, 30000, bad),
               std::invalid_argument);
}

}  // namespace
}  // namespace w2p::roomsim
