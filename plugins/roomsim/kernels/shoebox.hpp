// Shoebox room geometry for the image-source method: the room description, its validation,
// Sabine's formula inverted, and the enumeration of image sources.
//
// The arithmetic follows the pyroomacoustics ShoeBox simulator that the wav2pos reference calls
// (spec §1.3), including its single-precision image positions and attenuations, so that the
// impulse responses built from these images agree with the reference to float rounding.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace w2p::roomsim {

/// A point or size in metres, (x, y, z).
using Vec3 = std::array<double, 3>;

/// The six walls of a shoebox, in pyroomacoustics' order. Wall 2d is the plane coordinate_d = 0,
/// wall 2d + 1 the plane coordinate_d = size_d.
enum class Wall : int {
  kWest = 0,     ///< x = 0
  kEast = 1,     ///< x = Lx
  kSouth = 2,    ///< y = 0
  kNorth = 3,    ///< y = Ly
  kFloor = 4,    ///< z = 0
  kCeiling = 5,  ///< z = Lz
};
inline constexpr int kNumWalls = 6;

/// Speed of sound used by the reference, m/s.
inline constexpr double kSpeedOfSound = 343.0;

/// A rectangular room [0, Lx] x [0, Ly] x [0, Lz] with per-wall energy absorption.
struct ShoeboxRoom {
  Vec3 size{5.0, 5.0, 2.0};  ///< metres, all > 0
  /// Energy absorption of each wall in [0, 1], indexed by Wall. A reflection on wall w scales
  /// the amplitude by sqrt(1 - absorption[w]).
  std::array<double, kNumWalls> absorption{1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
  int max_order = 0;         ///< largest |n_x| + |n_y| + |n_z| of the image lattice
  int sample_rate = 16000;   ///< Hz
  double c = kSpeedOfSound;  ///< m/s

  /// All walls with the same energy absorption.
  static ShoeboxRoom uniform(const Vec3& size, double absorption, int max_order,
                             int sample_rate = 16000, double c = kSpeedOfSound);
};

/// Throws std::invalid_argument (naming the bad value) unless the room has positive finite
/// dimensions, absorptions in [0, 1], max_order >= 0, sample_rate > 0 and c > 0.
void validate_room(const ShoeboxRoom& room);

/// Throws std::invalid_argument unless `point` lies inside the room or on its boundary.
/// `what` names the point in the message ("source", "microphone 3").
void validate_inside(const ShoeboxRoom& room, const Vec3& point, const char* what);

/// Result of Sabine's formula inverted (pyroomacoustics `inverse_sabine`).
struct SabineParameters {
  double energy_absorption = 0.0;  ///< uniform wall energy absorption in (0, 1]
  int max_order = 0;               ///< image-source order reaching c * t60
};

/// Wall absorption and image order for a target reverberation time (spec §1.3):
/// absorption = 24 ln(10) V / (c S t60); max_order = ceil(c t60 / R - 1) with R the smallest
/// l_a l_b / sqrt(l_a^2 + l_b^2) over the pairs of dimensions. Throws std::invalid_argument
/// when t60 <= 0 or the room is too large for the requested t60 (absorption > 1; the message
/// gives the shortest reachable t60, 24 ln(10) V / (c S)).
SabineParameters inverse_sabine(double t60, const Vec3& size, double c = kSpeedOfSound);

/// Number of image sources up to `max_order` in 3-D: the lattice points of the L1 ball,
/// (2N + 1)(2N^2 + 2N + 3) / 3.
std::int64_t count_image_sources(int max_order);

/// Image sources of one real source, structure of arrays, in pyroomacoustics' enumeration order
/// (n_z outermost, then n_y, then n_x, each ascending). Positions and attenuations are single
/// precision as in the reference's engine.
struct ImageSources {
  std::vector<float> x, y, z;       ///< image positions, metres
  std::vector<float> attenuation;   ///< product of sqrt(1 - absorption) over the reflections
  std::vector<std::int32_t> order;  ///< number of reflections, |n_x| + |n_y| + |n_z|
  std::size_t size() const { return x.size(); }
};

/// All image sources of `source` with reflection order <= room.max_order. Image n = (n_x, n_y,
/// n_z) sits at n_d L_d + (s_d if n_d even else L_d - s_d); it has reflected floor(n_d / 2)
/// times on wall 2d and ceil(n_d / 2) times on wall 2d + 1 when n_d > 0 (the other way round
/// when n_d < 0). Validates the room and the source position.
ImageSources compute_image_sources(const ShoeboxRoom& room, const Vec3& source);
/// compute_image_sources() into `images`, reusing its storage: no allocation once it has held
/// as many images.
void compute_image_sources(const ShoeboxRoom& room, const Vec3& source, ImageSources& images);

}  // namespace w2p::roomsim
