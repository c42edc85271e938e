// Random wav2pos scenes (spec §1.2): one microphone uniform on each face of the room, and a
// source uniform in the room shrunk by a margin.
//
// Each scene is a pure function of explicit uniform numbers in [0, 1) (the *_from_uniforms
// functions), so callers choose the random stream (per-item generators, replayed tests); the
// generator overloads only draw those numbers, in the documented order.
#pragma once

#include <array>
#include <random>

#include "roomsim/kernels/shoebox.hpp"

namespace w2p::roomsim {

/// A face of the room: the plane coordinate `axis` = 0 (`high` false) or = size[axis].
struct Face {
  int axis;
  bool high;
};

/// Microphone faces in the reference's order: floor (z = 0), ceiling (z = Lz), wall y = 0,
/// wall x = 0, wall x = Lx, wall y = Ly.
inline constexpr std::array<Face, 6> kMicrophoneFaces = {
    Face{2, false}, Face{2, true}, Face{1, false}, Face{0, false}, Face{0, true}, Face{1, true}};

/// The wav2pos room, metres.
inline constexpr Vec3 kWav2posRoomSize = {5.0, 5.0, 2.0};

/// Uniform numbers consumed by one microphone layout: two free coordinates per face.
inline constexpr int kMicrophoneUniforms = 12;

/// Distance kept between the source and the walls, per axis, at the low and the high side.
/// The defaults give the reference's [0.5, 4.5] x [0.5, 4.5] x [0.25, 1.75] in a 5 x 5 x 2 room.
struct SourceMargins {
  Vec3 low{0.5, 0.5, 0.25};
  Vec3 high{0.5, 0.5, 0.25};
};

/// Six microphone positions (metres), microphone i on face kMicrophoneFaces[i]: the face's
/// coordinate fixed, each free coordinate d = u * size[d], the u taken in order face by face,
/// free axes ascending. Throws std::invalid_argument for a u outside [0, 1] or a bad room size.
std::array<Vec3, 6> face_microphones_from_uniforms(const Vec3& room_size,
                                                   const std::array<double, 12>& u);

/// The source at low_d + u_d (size_d - high_d - low_d) per axis. Throws std::invalid_argument
/// for a u outside [0, 1] or margins that leave an empty interval (validate_source_margins).
Vec3 source_from_uniforms(const Vec3& room_size, const SourceMargins& margins,
                          const std::array<double, 3>& u);

/// Throws std::invalid_argument unless 0 <= low_d, 0 <= high_d and low_d < size_d - high_d.
void validate_source_margins(const Vec3& room_size, const SourceMargins& margins);

/// Draws kMicrophoneUniforms numbers from `gen` (any UniformRandomBitGenerator) with
/// std::uniform_real_distribution<double>(0, 1) and calls face_microphones_from_uniforms.
template <typename Urbg>
std::array<Vec3, 6> sample_face_microphones(const Vec3& room_size, Urbg& gen) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::array<double, 12> u{};
  for (double& v : u) v = unit(gen);
  return face_microphones_from_uniforms(room_size, u);
}

/// Draws three numbers (x, y, z) from `gen` and calls source_from_uniforms.
template <typename Urbg>
Vec3 sample_source_position(const Vec3& room_size, const SourceMargins& margins, Urbg& gen) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::array<double, 3> u{};
  for (double& v : u) v = unit(gen);
  return source_from_uniforms(room_size, margins, u);
}

}  // namespace w2p::roomsim
