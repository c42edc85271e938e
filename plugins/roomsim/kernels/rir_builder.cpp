#include "roomsim/kernels/rir_builder.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace w2p::roomsim {
namespace {

constexpr float kPiF = 3.14159265358979323846f;

}  // namespace

FractionalDelayTable::FractionalDelayTable(int length, int granularity)
    : length_(length), granularity_(granularity) {
  if (length < 3 || length % 2 != 1) {
    throw std::invalid_argument("fractional delay length must be odd and >= 3, got " +
                                std::to_string(length));
  }
  if (granularity < 1) {
    throw std::invalid_argument("sinc table granularity must be >= 1, got " +
                                std::to_string(granularity));
  }
  const int half = half_length();

  // Sinc table exactly as the reference fills it: the argument advances by float steps of
  // 1/granularity from -half - 1, so its rounding drift is part of the table.
  const std::size_t table_size = static_cast<std::size_t>(length + 2) * granularity;
  sinc_.resize(table_size);
  const float delta = 1.0f / static_cast<float>(granularity);
  float n = -static_cast<float>(half) - 1.0f;
  for (std::size_t i = 0; i < table_size; n += delta, ++i) {
    sinc_[i] = n == 0.0f ? 1.0f : std::sin(kPiF * n) / (kPiF * n);
  }

  hann_.resize(length);
  for (int k = 0; k < length; ++k) {
    hann_[k] =
        0.5f - 0.5f * std::cos((kPiF * static_cast<float>(2 * k)) / static_cast<float>(length - 1));
  }

  // Phase q (0..granularity) reads entries q + granularity * k and q + granularity * k + 1.
  stride_ = (length + 3) / 4 * 4;
  const std::size_t rows = static_cast<std::size_t>(granularity) + 1;
  phase_value_.assign(rows * stride_, 0.0f);
  phase_slope_.assign(rows * stride_, 0.0f);
  for (std::size_t q = 0; q < rows; ++q) {
    for (int k = 0; k < length; ++k) {
      const std::size_t pos = q + static_cast<std::size_t>(granularity) * k;
      phase_value_[q * stride_ + k] = sinc_[pos];
      phase_slope_[q * stride_ + k] = sinc_[pos + 1] - sinc_[pos];
    }
  }
}

const FractionalDelayTable& FractionalDelayTable::reference() {
  static const FractionalDelayTable table(81, 20);
  return table;
}

namespace {

// The phase tables of a FractionalDelayTable, as plain pointers for the loops below.
struct TableView {
  const float* value;
  const float* slope;
  const float* window;
  int stride, length, granularity, half;
};

// One arrival: integer and fractional parts and the table phase with the reference's
// float/double mix ((1. - frac) * granularity evaluated in double, stored as float), then the
// taps. Every tap keeps the reference's operation order, so vectorising does not change bits.
inline void accumulate_one(const TableView& t, float sample_position, float amplitude, float* out) {
  const float whole = std::floor(sample_position);
  const float frac = sample_position - whole;
  const auto offset_frac = static_cast<float>(
      (1.0 - static_cast<double>(frac)) * static_cast<double>(static_cast<float>(t.granularity)));
  const float offset = std::floor(offset_frac);
  const float x_off = offset_frac - offset;
  const auto q = static_cast<std::size_t>(offset);
  const int first = static_cast<int>(whole) - t.half;

  const float* __restrict value = t.value + q * t.stride;
  const float* __restrict slope = t.slope + q * t.stride;
  const float* __restrict window = t.window;
  float* __restrict dst = out + first;
  for (int k = 0; k < t.length; ++k) {
    dst[k] += amplitude * window[k] * (value[k] + x_off * slope[k]);
  }
}

// All arrivals of one RIR, in order. On x86-64 an AVX2 clone is picked at load time where the
// CPU has it (1.5x); it has no FMA, so it rounds exactly like the baseline build.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target_clones("avx2", "default")))
#endif
void accumulate_arrivals(const TableView& t, const float* positions, const float* amplitudes,
                         std::size_t n, float* out) {
  for (std::size_t i = 0; i < n; ++i) accumulate_one(t, positions[i], amplitudes[i], out);
}

}  // namespace

void FractionalDelayTable::accumulate(float sample_position, float amplitude, float* out) const {
  accumulate_many(&sample_position, &amplitude, 1, out);
}

void FractionalDelayTable::accumulate_many(const float* sample_positions, const float* amplitudes,
                                           std::size_t n, float* out) const {
  const TableView view{phase_value_.data(), phase_slope_.data(), hann_.data(), stride_, length_,
                       granularity_,        half_length()};
  accumulate_arrivals(view, sample_positions, amplitudes, n, out);
}

std::size_t rir_length_for(double t_max_seconds, int sample_rate, int half_length) {
  return static_cast<std::size_t>(std::ceil(t_max_seconds * sample_rate + half_length + 1)) + 1;
}

std::vector<float> build_rir(const ImageSources& images, const Vec3& mic, int sample_rate, double c,
                             const FractionalDelayTable& table) {
  const std::size_t n = images.size();
  if (n == 0) return {};
  const int half = table.half_length();
  const double delay = static_cast<double>(half) / sample_rate;

  // Pass 1: arrival time (s, with the filter delay) and amplitude of every image, in double as
  // the reference's numpy code, rounded to float for the interpolator, which scales the time to
  // samples in float.
  const auto fs = static_cast<float>(sample_rate);
  std::vector<float> position(n);
  std::vector<float> amplitude(n);
  double t_max = -std::numeric_limits<double>::infinity();
  double d_min = std::numeric_limits<double>::infinity();
  const float* __restrict px = images.x.data();
  const float* __restrict py = images.y.data();
  const float* __restrict pz = images.z.data();
  const float* __restrict att = images.attenuation.data();
  for (std::size_t i = 0; i < n; ++i) {
    const double dx = static_cast<double>(px[i]) - mic[0];
    const double dy = static_cast<double>(py[i]) - mic[1];
    const double dz = static_cast<double>(pz[i]) - mic[2];
    const double dist = std::sqrt(dx * dx + dy * dy + dz * dz);
    const double t = dist / c + delay;
    t_max = std::max(t_max, t);
    d_min = std::min(d_min, dist);
    position[i] = fs * static_cast<float>(t);
    amplitude[i] = static_cast<float>(static_cast<double>(att[i]) / dist);
  }
  if (!(d_min > 0.0)) {
    std::ostringstream out;
    out << "microphone at (" << mic[0] << ", " << mic[1] << ", " << mic[2]
        << ") coincides with an image source (distance 0): the impulse response is undefined";
    throw std::invalid_argument(out.str());
  }

  // Pass 2: the fractional-delay filters, added in image order (the reference's summation
  // order, so float rounding matches too).
  std::vector<float> rir(rir_length_for(t_max, sample_rate, half), 0.0f);
  table.accumulate_many(position.data(), amplitude.data(), n, rir.data());
  return rir;
}

}  // namespace w2p::roomsim
