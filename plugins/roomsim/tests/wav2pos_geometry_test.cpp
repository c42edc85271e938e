// wav2pos scenes: microphones one per face in the reference order, source uniform in the
// shrunk box.
#include "roomsim/kernels/wav2pos_geometry.hpp"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <stdexcept>

namespace w2p::roomsim {
namespace {

TEST(Wav2posGeometry, FaceOrderIsFloorCeilingY0X0X5Y5) {
  // Uniforms strictly inside (0, 1) keep the free coordinates off the edges, so each
  // microphone lies on exactly one face.
  std::array<double, 12> u{};
  for (std::size_t i = 0; i < u.size(); ++i) u[i] = 0.05 + 0.07 * static_cast<double>(i);
  const auto mics = face_microphones_from_uniforms(kWav2posRoomSize, u);
  const int axis[6] = {2, 2, 1, 0, 0, 1};
  const double plane[6] = {0.0, 2.0, 0.0, 0.0, 5.0, 5.0};
  for (int i = 0; i < 6; ++i) {
    for (int d = 0; d < 3; ++d) {
      if (d == axis[i]) {
        EXPECT_EQ(mics[i][d], plane[i]) << "microphone " << i;
      } else {
        EXPECT_GT(mics[i][d], 0.0);
        EXPECT_LT(mics[i][d], kWav2posRoomSize[d]);
      }
    }
  }
  // The uniforms are consumed face by face, free axes ascending.
  EXPECT_DOUBLE_EQ(mics[0][0], u[0] * 5.0);  // floor: x, y
  EXPECT_DOUBLE_EQ(mics[0][1], u[1] * 5.0);
  EXPECT_DOUBLE_EQ(mics[1][1], u[3] * 5.0);   // ceiling: x, y
  EXPECT_DOUBLE_EQ(mics[2][2], u[5] * 2.0);   // y = 0: x, z
  EXPECT_DOUBLE_EQ(mics[3][1], u[6] * 5.0);   // x = 0: y, z
  EXPECT_DOUBLE_EQ(mics[4][2], u[9] * 2.0);   // x = 5: y, z
  EXPECT_DOUBLE_EQ(mics[5][0], u[10] * 5.0);  // y = 5: x, z
}

TEST(Wav2posGeometry, SourceSpansTheReferenceBox) {
  const SourceMargins m;
  const Vec3 lo = source_from_uniforms(kWav2posRoomSize, m, {0.0, 0.0, 0.0});
  const Vec3 hi = source_from_uniforms(kWav2posRoomSize, m, {1.0, 1.0, 1.0});
  EXPECT_EQ(lo, (Vec3{0.5, 0.5, 0.25}));
  EXPECT_EQ(hi, (Vec3{4.5, 4.5, 1.75}));
  const Vec3 mid = source_from_uniforms(kWav2posRoomSize, m, {0.5, 0.25, 0.5});
  EXPECT_EQ(mid, (Vec3{2.5, 1.5, 1.0}));
}

TEST(Wav2posGeometry, RejectsBadUniformsAndMargins) {
  std::array<double, 12> u{};
  u[7] = 1.5;
  EXPECT_THROW(face_microphones_from_uniforms(kWav2posRoomSize, u), std::invalid_argument);
  EXPECT_THROW(source_from_uniforms(kWav2posRoomSize, {}, {0.1, -0.1, 0.1}), std::invalid_argument);
  SourceMargins wide;
  wide.low[2] = 1.0;
  wide.high[2] = 1.0;  // nothing left of the 2 m height
  EXPECT_THROW(validate_source_margins(kWav2posRoomSize, wide), std::invalid_argument);
  EXPECT_THROW(face_microphones_from_uniforms({5.0, 0.0, 2.0}, {}), std::invalid_argument);
}

// Drawn scenes: reproducible for a seed, within their boxes, and spread over them (sample
// means of 4000 uniform draws are within 5 standard errors of the box centre).
TEST(Wav2posGeometry, GeneratorDrawsAreDeterministicAndUniform) {
  std::mt19937_64 a(42), b(42);
  EXPECT_EQ(sample_face_microphones(kWav2posRoomSize, a),
            sample_face_microphones(kWav2posRoomSize, b));
  EXPECT_EQ(sample_source_position(kWav2posRoomSize, {}, a),
            sample_source_position(kWav2posRoomSize, {}, b));

  std::mt19937_64 gen(7);
  const int n = 4000;
  Vec3 sum{};
  Vec3 mic_sum{};
  for (int i = 0; i < n; ++i) {
    const Vec3 s = sample_source_position(kWav2posRoomSize, {}, gen);
    const auto mics = sample_face_microphones(kWav2posRoomSize, gen);
    for (int d = 0; d < 3; ++d) {
      sum[d] += s[d];
      mic_sum[d] += mics[0][d];
    }
    ASSERT_GE(s[0], 0.5);
    ASSERT_LE(s[0], 4.5);
    ASSERT_GE(s[2], 0.25);
    ASSERT_LE(s[2], 1.75);
    ASSERT_EQ(mics[0][2], 0.0);
    ASSERT_EQ(mics[4][0], 5.0);
  }
  const double se_xy = 4.0 / std::sqrt(12.0 * n);  // std error of the mean of U[0.5, 4.5]
  EXPECT_NEAR(sum[0] / n, 2.5, 5 * se_xy);
  EXPECT_NEAR(sum[1] / n, 2.5, 5 * se_xy);
  EXPECT_NEAR(sum[2] / n, 1.0, 5 * 1.5 / std::sqrt(12.0 * n));
  EXPECT_NEAR(mic_sum[0] / n, 2.5, 5 * 5.0 / std::sqrt(12.0 * n));
}

}  // namespace
}  // namespace w2p::roomsim
