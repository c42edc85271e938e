#include "roomsim/kernels/shoebox.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

namespace w2p::roomsim {
namespace {

constexpr const char* kWallNames[kNumWalls] = {"west",  "east",  "south",
                                               "north", "floor", "ceiling"};
constexpr const char* kAxisNames[3] = {"x", "y", "z"};

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

std::string format_vec(const Vec3& v) {
  std::ostringstream out;
  out << "(" << v[0] << ", " << v[1] << ", " << v[2] << ")";
  return out.str();
}

}  // namespace

ShoeboxRoom ShoeboxRoom::uniform(const Vec3& size, double absorption, int max_order,
                                 int sample_rate, double c) {
  ShoeboxRoom room;
  room.size = size;
  room.absorption.fill(absorption);
  room.max_order = max_order;
  room.sample_rate = sample_rate;
  room.c = c;
  return room;
}

void validate_room(const ShoeboxRoom& room) {
  for (int d = 0; d < 3; ++d) {
    const double l = room.size[d];
    if (!(std::isfinite(l) && l > 0.0)) {
      std::ostringstream out;
      out << "room size along " << kAxisNames[d] << " must be positive and finite, got " << l
          << " m";
      fail(out.str());
    }
  }
  for (int w = 0; w < kNumWalls; ++w) {
    const double a = room.absorption[w];
    if (!(a >= 0.0 && a <= 1.0)) {
      std::ostringstream out;
      out << "energy absorption of the " << kWallNames[w] << " wall must be in [0, 1], got " << a;
      fail(out.str());
    }
  }
  if (room.max_order < 0) {
    fail("max_order must be >= 0, got " + std::to_string(room.max_order));
  }
  if (room.sample_rate <= 0) {
    fail("sample_rate must be positive, got " + std::to_string(room.sample_rate) + " Hz");
  }
  if (!(std::isfinite(room.c) && room.c > 0.0)) {
    std::ostringstream out;
    out << "speed of sound must be positive and finite, got " << room.c << " m/s";
    fail(out.str());
  }
}

void validate_inside(const ShoeboxRoom& room, const Vec3& point, const char* what) {
  for (int d = 0; d < 3; ++d) {
    const double p = point[d];
    if (!(p >= 0.0 && p <= room.size[d])) {
      std::ostringstream out;
      out << what << " at " << format_vec(point) << " is outside the room " << format_vec(room.size)
          << ": " << kAxisNames[d] << " = " << p << " not in [0, " << room.size[d] << "]";
      fail(out.str());
    }
  }
}

SabineParameters inverse_sabine(double t60, const Vec3& size, double c) {
  if (!(std::isfinite(t60) && t60 > 0.0)) {
    std::ostringstream out;
    out << "t60 must be positive, got " << t60 << " s";
    fail(out.str());
  }
  ShoeboxRoom probe;
  probe.size = size;
  probe.c = c;
  validate_room(probe);

  // Same operation order as the reference (numpy products over the dimension pairs).
  const double pairs[3][2] = {{size[0], size[1]}, {size[0], size[2]}, {size[1], size[2]}};
  double r_min = 0.0;
  double surface = 0.0;
  for (int i = 0; i < 3; ++i) {
    const double l1 = pairs[i][0];
    const double l2 = pairs[i][1];
    const double r = l1 * l2 / std::sqrt(l1 * l1 + l2 * l2);
    r_min = i == 0 ? r : std::min(r_min, r);
    surface += l1 * l2;
  }
  surface *= 2.0;
  const double volume = size[0] * size[1] * size[2];

  SabineParameters out;
  out.energy_absorption = 24.0 * std::log(10.0) * volume / (c * surface * t60);
  if (out.energy_absorption > 1.0) {
    std::ostringstream msg;
    // Absorption 1 gives the shortest reverberation Sabine's formula can express.
    msg << "t60 = " << t60 << " s is too short for a room of " << format_vec(size)
        << " m: Sabine's formula needs energy absorption " << out.energy_absorption
        << " > 1; the shortest reachable t60 is " << t60 * out.energy_absorption << " s";
    fail(msg.str());
  }
  out.max_order = static_cast<int>(std::ceil(c * t60 / r_min - 1.0));
  return out;
}

std::int64_t count_image_sources(int max_order) {
  const std::int64_t n = max_order;
  return (2 * n + 1) * (2 * n * n + 2 * n + 3) / 3;
}

ImageSources compute_image_sources(const ShoeboxRoom& room, const Vec3& source) {
  ImageSources images;
  compute_image_sources(room, source, images);
  return images;
}

void compute_image_sources(const ShoeboxRoom& room, const Vec3& source, ImageSources& images) {
  validate_room(room);
  validate_inside(room, source, "source");
  const int max_order = room.max_order;

  // The reference's engine works in single precision.
  float size[3];
  float src[3];
  for (int d = 0; d < 3; ++d) {
    size[d] = static_cast<float>(room.size[d]);
    src[d] = static_cast<float>(source[d]);
  }

  // Powers of the amplitude reflection factor, transmission[i][w] = sqrt(1 - a_w)^i, built by
  // repeated float multiplication as the reference does.
  std::vector<std::array<float, kNumWalls>> transmission(max_order + 1);
  transmission[0].fill(1.0f);
  if (max_order > 0) {
    for (int w = 0; w < kNumWalls; ++w) {
      transmission[1][w] = std::sqrt(1.0f - static_cast<float>(room.absorption[w]));
    }
  }
  for (int i = 2; i <= max_order; ++i) {
    for (int w = 0; w < kNumWalls; ++w) {
      transmission[i][w] = transmission[i - 1][w] * transmission[1][w];
    }
  }

  // Per axis and lattice index n in [-max_order, max_order]: the reflected coordinate and the
  // transmission of the low and high walls it hit (floor(n / 2) and ceil(n / 2) times for n > 0,
  // the other way round for n < 0).
  struct AxisImage {
    float position, low, high;
  };
  const std::size_t span = 2 * static_cast<std::size_t>(max_order) + 1;
  std::array<std::vector<AxisImage>, 3> axes;
  for (int d = 0; d < 3; ++d) {
    axes[d].resize(span);
    for (int n = -max_order; n <= max_order; ++n) {
      const float step = std::abs(n) % 2 == 1 ? size[d] - src[d] : src[d];
      const int low_hits = n > 0 ? n / 2 : std::abs((n - 1) / 2);
      const int high_hits = n > 0 ? (n + 1) / 2 : std::abs(n / 2);
      axes[d][n + max_order] = {static_cast<float>(n) * size[d] + step,
                                transmission[low_hits][2 * d], transmission[high_hits][2 * d + 1]};
    }
  }

  const auto n_total = static_cast<std::size_t>(count_image_sources(max_order));
  images.x.resize(n_total);
  images.y.resize(n_total);
  images.z.resize(n_total);
  images.attenuation.resize(n_total);
  images.order.resize(n_total);
  float* __restrict out_x = images.x.data();
  float* __restrict out_y = images.y.data();
  float* __restrict out_z = images.z.data();
  float* __restrict out_att = images.attenuation.data();
  std::int32_t* __restrict out_order = images.order.data();

  std::size_t i = 0;
  for (int nz = -max_order; nz <= max_order; ++nz) {
    const AxisImage& z = axes[2][nz + max_order];
    const int y_max = max_order - std::abs(nz);
    for (int ny = -y_max; ny <= y_max; ++ny) {
      const AxisImage& y = axes[1][ny + max_order];
      const int x_max = std::max(0, y_max - std::abs(ny));
      const int yz_order = std::abs(ny) + std::abs(nz);
      // One row of images along x: a vectorisable loop over the x table.
      const AxisImage* x = axes[0].data() + (max_order - x_max);
      const int count = 2 * x_max + 1;
      for (int k = 0; k < count; ++k) {
        // Same multiplication order as the reference: low wall, then high wall, per axis.
        float attenuation = x[k].low * x[k].high;
        attenuation *= y.low;
        attenuation *= y.high;
        attenuation *= z.low;
        attenuation *= z.high;
        out_x[i + k] = x[k].position;
        out_y[i + k] = y.position;
        out_z[i + k] = z.position;
        out_att[i + k] = attenuation;
        out_order[i + k] = std::abs(k - x_max) + yz_order;
      }
      i += static_cast<std::size_t>(count);
    }
  }
}

}  // namespace w2p::roomsim
