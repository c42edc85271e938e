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

  ImageSources images;
  const auto n_total = static_cast<std::size_t>(count_image_sources(max_order));
  images.x.reserve(n_total);
  images.y.reserve(n_total);
  images.z.reserve(n_total);
  images.attenuation.reserve(n_total);
  images.order.reserve(n_total);

  // Reflected coordinate and the number of hits on the low/high wall for lattice index n.
  auto axis = [&](int d, int n, float& position, int& low_hits, int& high_hits) {
    const float step = std::abs(n) % 2 == 1 ? size[d] - src[d] : src[d];
    position = static_cast<float>(n) * size[d] + step;
    if (n > 0) {
      low_hits = n / 2;
      high_hits = (n + 1) / 2;
    } else if (n < 0) {
      low_hits = std::abs((n - 1) / 2);
      high_hits = std::abs(n / 2);
    } else {
      low_hits = 0;
      high_hits = 0;
    }
  };

  for (int nz = -max_order; nz <= max_order; ++nz) {
    const int y_max = max_order - std::abs(nz);
    for (int ny = -y_max; ny <= y_max; ++ny) {
      const int x_max = std::max(0, y_max - std::abs(ny));
      for (int nx = -x_max; nx <= x_max; ++nx) {
        const int n[3] = {nx, ny, nz};
        float pos[3];
        float attenuation = 1.0f;
        for (int d = 0; d < 3; ++d) {
          int low = 0;
          int high = 0;
          axis(d, n[d], pos[d], low, high);
          // Same multiplication order as the reference: low wall, then high wall, per axis.
          attenuation *= transmission[low][2 * d];
          attenuation *= transmission[high][2 * d + 1];
        }
        images.x.push_back(pos[0]);
        images.y.push_back(pos[1]);
        images.z.push_back(pos[2]);
        images.attenuation.push_back(attenuation);
        images.order.push_back(std::abs(nx) + std::abs(ny) + std::abs(nz));
      }
    }
  }
  return images;
}

}  // namespace w2p::roomsim
