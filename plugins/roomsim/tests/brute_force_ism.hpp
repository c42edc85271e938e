// A deliberately slow image-source reference for the tests, written from the physics rather
// than from the kernel: images are built by successive mirror reflections, their wall hits
// counted one reflection at a time, and the RIR is summed in double with the fractional delay
// evaluated sample by sample.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "roomsim/kernels/shoebox.hpp"

namespace w2p::roomsim::test {

struct BruteImage {
  Vec3 position{};
  std::array<int, kNumWalls> hits{};  // reflections on each wall (Wall order)
  double attenuation = 1.0;           // prod over walls of sqrt(1 - a_w)^hits_w
};

/// Images with |n_x| + |n_y| + |n_z| <= max_order, n_z outermost then n_y then n_x, ascending.
inline std::vector<BruteImage> brute_force_images(const ShoeboxRoom& room, const Vec3& source) {
  const int order = room.max_order;
  std::vector<BruteImage> images;
  for (int nz = -order; nz <= order; ++nz) {
    for (int ny = -order; ny <= order; ++ny) {
      for (int nx = -order; nx <= order; ++nx) {
        if (std::abs(nx) + std::abs(ny) + std::abs(nz) > order) continue;
        const int n[3] = {nx, ny, nz};
        BruteImage im;
        for (int d = 0; d < 3; ++d) {
          const double l = room.size[d];
          double p = source[d];
          // Mirror across the planes between the room and cell n: k l for k = 1..n when n > 0,
          // k = 0, -1, .., n + 1 when n < 0. Even k are copies of the wall at 0, odd of the wall
          // at l.
          const int step = n[d] > 0 ? 1 : -1;
          for (int k = (n[d] > 0 ? 1 : 0); k != (n[d] > 0 ? n[d] + 1 : n[d]); k += step) {
            p = 2.0 * k * l - p;
            ++im.hits[2 * d + (std::abs(k) % 2)];
          }
          im.position[d] = p;
        }
        for (int w = 0; w < kNumWalls; ++w) {
          im.attenuation *= std::pow(std::sqrt(1.0 - room.absorption[w]), im.hits[w]);
        }
        images.push_back(im);
      }
    }
  }
  return images;
}

/// sinc(x) = sin(pi x) / (pi x) in double.
inline double exact_sinc(double x) {
  constexpr double kPi = 3.14159265358979323846;
  return x == 0.0 ? 1.0 : std::sin(kPi * x) / (kPi * x);
}

/// The reference's sinc table as a function: sinc sampled every 1/20 sample from -41 and read
/// with linear interpolation. QUIRK of the reference: the grid argument is accumulated in float
/// (n += 1/20 per entry), so entry i sits at a drifted argument near -41 + i/20; this drift
/// (up to 4.6e-4 of the peak in the sinc values) is reproduced here, the values taken in double.
inline double table_sinc(double x) {
  static const std::vector<double> table = [] {
    std::vector<double> t(83 * 20);
    float n = -41.0f;
    for (double& v : t) {
      v = exact_sinc(static_cast<double>(n));
      n += 1.0f / 20.0f;
    }
    return t;
  }();
  const double g = (x + 41.0) * 20.0;
  const double lo = std::floor(g);
  const auto i = static_cast<std::size_t>(lo);
  if (i + 1 >= table.size()) return table.back();  // the last entry itself
  return table[i] + (g - lo) * (table[i + 1] - table[i]);
}

/// The RIR at `mic` from `images` in double: each image adds attenuation / r times the
/// Hann-windowed (table or exact) sinc centred at 40 + fs r / c, over the 81 samples from
/// floor(centre) - 40. Length ceil(fs t_max + 41) + 1 with t_max the latest centre in seconds.
/// `reference_precision` rounds where the reference does (image coordinates, the arrival time
/// in seconds and fs times it are float there); otherwise every step is double.
inline std::vector<double> brute_force_rir(const std::vector<BruteImage>& images, const Vec3& mic,
                                           int fs, double c, bool table = true,
                                           bool reference_precision = true) {
  constexpr int kHalf = 40;
  constexpr double kPi = 3.14159265358979323846;
  auto distance = [&](const BruteImage& im) {
    double sq = 0.0;
    for (int d = 0; d < 3; ++d) {
      const double p = reference_precision ? static_cast<float>(im.position[d]) : im.position[d];
      sq += (p - mic[d]) * (p - mic[d]);
    }
    return std::sqrt(sq);
  };
  double t_max = 0.0;
  for (const auto& im : images) {
    t_max = std::max(t_max, distance(im) / c + static_cast<double>(kHalf) / fs);
  }
  std::vector<double> rir(static_cast<std::size_t>(std::ceil(t_max * fs + kHalf + 1)) + 1, 0.0);
  for (const auto& im : images) {
    const double r = distance(im);
    const double t = r / c + static_cast<double>(kHalf) / fs;
    const double centre =
        reference_precision ? static_cast<float>(fs) * static_cast<float>(t) : fs * t;
    const auto first = static_cast<long>(std::floor(centre)) - kHalf;
    for (int k = 0; k <= 2 * kHalf; ++k) {
      const double x = static_cast<double>(first + k) - centre;
      const double window = 0.5 - 0.5 * std::cos(2.0 * kPi * k / (2 * kHalf));
      const double s = table ? table_sinc(x) : exact_sinc(x);
      rir[static_cast<std::size_t>(first + k)] += im.attenuation / r * window * s;
    }
  }
  return rir;
}

}  // namespace w2p::roomsim::test
