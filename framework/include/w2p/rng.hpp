// w2p::Rng: the per-item random generator the runtime hands to nodes.
//
// Seeded from (run seed, node name, epoch, item index) by the runtime, so a node's random
// draws for an item do not depend on thread count or scheduling order: outputs are identical
// with 1 or N threads. Rng is a C++ UniformRandomBitGenerator (xoshiro256**, seeded through
// SplitMix64), so kernels templated on a generator accept it directly.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

namespace w2p {

class Rng {
 public:
  using result_type = std::uint64_t;
  explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

  /// Stream for (seed, name, epoch, index): what the runtime uses for per-item randomness.
  static Rng for_item(std::uint64_t seed, std::string_view name, std::uint64_t epoch,
                      std::uint64_t index) {
    std::uint64_t h = splitmix(seed ^ 0x77327020726e6721ULL);
    for (char c : name) h = splitmix(h ^ static_cast<unsigned char>(c));
    h = splitmix(h ^ epoch);
    h = splitmix(h ^ (index * 0x9e3779b97f4a7c15ULL));
    return Rng(h);
  }

  void reseed(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (auto& s : s_) {
      x += 0x9e3779b97f4a7c15ULL;
      s = splitmix(x);
    }
  }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }
  result_type operator()() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform integer in [0, n) (n > 0), without modulo bias.
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = max() - max() % n;
    std::uint64_t r;
    do {
      r = (*this)();
    } while (r >= limit);
    return r % n;
  }
  /// Standard normal (Box-Muller; one value per call, platform-independent).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  std::uint64_t s_[4] = {};
};

}  // namespace w2p
