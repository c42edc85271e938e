#include "roomsim/kernels/rir_builder.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace w2p::roomsim {
namespace {

constexpr float kPiF = 3.14159265358979323846f;

// The polyphase dot products run over a multiple of this many floats (two 8-float vectors).
constexpr std::size_t kDotStep = 16;

// Phases per grid row: 0..granularity. An arrival at phase q has weight x at phase q + 1, and
// q == granularity only with x == 0, so that weight may land on phase 0 of the next row.
std::size_t grid_row(int granularity) { return static_cast<std::size_t>(granularity) + 1; }

// Length of the polyphase dot product: length grid rows, padded.
std::size_t polyphase_taps(int length, int granularity) {
  const std::size_t taps = static_cast<std::size_t>(length) * grid_row(granularity);
  return (taps + kDotStep - 1) / kDotStep * kDotStep;
}

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

  // Polyphase bank: windowed sinc of phases 0..granularity, taps reversed so that one output
  // sample is a single dot product with the grid.
  const std::size_t row = grid_row(granularity);
  polyphase_.assign(polyphase_taps(length, granularity), 0.0f);
  for (int r = 0; r < length; ++r) {
    const int k = length - 1 - r;
    for (std::size_t p = 0; p < row; ++p) {
      polyphase_[r * row + p] = hann_[k] * sinc_[p + static_cast<std::size_t>(granularity) * k];
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

// Where one arrival lands: the first output sample of its filter, the table phase q in
// [0, granularity] and the offset x in [0, 1) towards phase q + 1, with the reference's
// float/double mix ((1. - frac) * granularity evaluated in double, stored as float).
struct Landing {
  int first;
  int q;
  float x_off;
};

// Positions are positive (they include the filter delay), so the int conversions are floor and
// the loops over arrivals vectorise without SSE4.1.
inline Landing land(float sample_position, int granularity, int half) {
  const int whole = static_cast<int>(sample_position);
  const float frac = sample_position - static_cast<float>(whole);
  const auto offset_frac = static_cast<float>((1.0 - static_cast<double>(frac)) *
                                              static_cast<double>(static_cast<float>(granularity)));
  const int offset = static_cast<int>(offset_frac);
  return {whole - half, offset, offset_frac - static_cast<float>(offset)};
}

// One arrival's taps. Every tap keeps the reference's operation order, so vectorising does not
// change bits.
inline void accumulate_one(const TableView& t, float sample_position, float amplitude, float* out) {
  const Landing at = land(sample_position, t.granularity, t.half);
  const float x_off = at.x_off;
  const float* __restrict value = t.value + at.q * t.stride;
  const float* __restrict slope = t.slope + at.q * t.stride;
  const float* __restrict window = t.window;
  float* __restrict dst = out + at.first;
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

// The polyphase grid: arrival i adds amplitude (1 - x) at phase q and amplitude x at phase
// q + 1 of row first + length - 1 (the first length - 1 rows stay zero, so that the dot
// products of polyphase_fir need no bounds). Cells and weights of a batch are computed first
// (a vector loop), then scattered with the cell kAhead arrivals on prefetched: the grid (~0.5 MB
// for a wav2pos RIR) hardly fits L2 and images in enumeration order hit it all over.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target_clones("avx2", "default")))
#endif
void deposit_arrivals(const TableView& t, const float* positions, const float* amplitudes,
                      std::size_t n, float* grid) {
  constexpr std::size_t kBatch = 256;
  constexpr std::size_t kAhead = 16;
  const int row = static_cast<int>(grid_row(t.granularity));
  std::int32_t cell[kBatch];
  float low[kBatch];
  float high[kBatch];
  const int granularity = t.granularity;
  const int half = t.half;
  const int row_offset = (t.length - 1) * row;
  for (std::size_t begin = 0; begin < n; begin += kBatch) {
    const std::size_t m = std::min(kBatch, n - begin);
    const float* __restrict position = positions + begin;
    const float* __restrict amplitude = amplitudes + begin;
    for (std::size_t i = 0; i < m; ++i) {
      const Landing at = land(position[i], granularity, half);
      cell[i] = at.first * row + row_offset + at.q;
      low[i] = amplitude[i] * (1.0f - at.x_off);
      high[i] = amplitude[i] * at.x_off;
    }
    for (std::size_t i = 0; i < m; ++i) {
      __builtin_prefetch(grid + cell[std::min(i + kAhead, m - 1)], 1);
      grid[cell[i]] += low[i];
      grid[cell[i] + 1] += high[i];
    }
  }
}

// 8 floats; GCC and Clang lower it to two SSE halves where AVX is missing. Loaded with memcpy
// (unaligned) into named variables, which stay in registers (arrays of them do not).
using Lanes = float __attribute__((vector_size(32)));
constexpr std::size_t kLanes = sizeof(Lanes) / sizeof(float);
static_assert(kDotStep == 2 * kLanes);

inline float horizontal_sum(const Lanes& v) {
  float sum = 0.0f;
  for (std::size_t l = 0; l < kLanes; ++l) sum += v[l];
  return sum;
}

// out[i] += dot(grid + i row, bank, taps) for i in [0, count): the dense part of PolyphaseGrid.
// Four outputs share every load of the bank and each keeps two partial sums, enough
// independent chains for two FMA units. Rounding differs from the reference anyway, so the
// clone uses FMA.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target_clones("fma", "default")))
#endif
void polyphase_fir(const float* grid, std::size_t row, const float* bank, std::size_t taps,
                   float* out, std::size_t count) {
  for (std::size_t i = 0; i < count; i += 4) {
    const float* g0 = grid + i * row;
    const float* g1 = g0 + row;
    const float* g2 = g1 + row;
    const float* g3 = g2 + row;
    Lanes a0{}, a1{}, a2{}, a3{}, b0{}, b1{}, b2{}, b3{};
    for (std::size_t k = 0; k < taps; k += kDotStep) {
      Lanes h, l;
      std::memcpy(&h, bank + k, sizeof(Lanes));
      std::memcpy(&l, bank + k + kLanes, sizeof(Lanes));
      const auto accumulate_row = [&](const float* g, Lanes& a, Lanes& b) {
        Lanes v;
        std::memcpy(&v, g + k, sizeof(Lanes));
        a += v * h;
        std::memcpy(&v, g + k + kLanes, sizeof(Lanes));
        b += v * l;
      };
      accumulate_row(g0, a0, b0);
      accumulate_row(g1, a1, b1);
      accumulate_row(g2, a2, b2);
      accumulate_row(g3, a3, b3);
    }
    const float sums[4] = {horizontal_sum(a0 + b0), horizontal_sum(a1 + b1),
                           horizontal_sum(a2 + b2), horizontal_sum(a3 + b3)};
    for (std::size_t o = 0; o < 4 && i + o < count; ++o) out[i + o] += sums[o];
  }
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

void FractionalDelayTable::accumulate_polyphase(const float* sample_positions,
                                                const float* amplitudes, std::size_t n, float* out,
                                                std::size_t out_size) const {
  PolyphaseGrid grid(*this, out_size);
  grid.add(sample_positions, amplitudes, n);
  grid.add_to(out);
}

// Rows: length - 1 of leading zeros, one per output sample, and the tail that the last four
// (padded) dot products read.
PolyphaseGrid::PolyphaseGrid(const FractionalDelayTable& table, std::size_t out_size)
    : table_(table),
      out_size_(out_size),
      grid_((out_size + table.length()) * grid_row(table.granularity()) + table.polyphase_.size(),
            0.0f) {}

void PolyphaseGrid::add(const float* sample_positions, const float* amplitudes, std::size_t n) {
  const FractionalDelayTable& t = table_;
  const TableView view{
      t.phase_value_.data(), t.phase_slope_.data(), t.hann_.data(), t.stride_, t.length_,
      t.granularity_,        t.half_length()};
  deposit_arrivals(view, sample_positions, amplitudes, n, grid_.data());
}

void PolyphaseGrid::add_to(float* out) const {
  polyphase_fir(grid_.data(), grid_row(table_.granularity()), table_.polyphase_.data(),
                table_.polyphase_.size(), out, out_size_);
}

std::size_t rir_length_for(double t_max_seconds, int sample_rate, int half_length) {
  return static_cast<std::size_t>(std::ceil(t_max_seconds * sample_rate + half_length + 1)) + 1;
}

namespace {

// Smallest and largest squared distance from the microphone over the images (exact: min and
// max do not round, so their order is free).
struct DistanceRange {
  double min_sq, max_sq;
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target_clones("avx2", "default")))
#endif
DistanceRange
distance_range(const ImageSources& images, const Vec3& mic) {
  const float* __restrict px = images.x.data();
  const float* __restrict py = images.y.data();
  const float* __restrict pz = images.z.data();
  const double mx = mic[0], my = mic[1], mz = mic[2];
  double lo = std::numeric_limits<double>::infinity();
  double hi = 0.0;
#pragma omp simd reduction(min : lo) reduction(max : hi)
  for (std::size_t i = 0; i < images.size(); ++i) {
    const double dx = static_cast<double>(px[i]) - mx;
    const double dy = static_cast<double>(py[i]) - my;
    const double dz = static_cast<double>(pz[i]) - mz;
    const double sq = dx * dx + dy * dy + dz * dz;
    lo = std::min(lo, sq);
    hi = std::max(hi, sq);
  }
  return {lo, hi};
}

// Arrival position (samples, with the filter delay) and amplitude of images [begin, end), in
// double as the reference's numpy code, rounded to float for the interpolator, which scales
// the time to samples in float. sqrt and division round correctly in every clone; no FMA, so
// dx dx + dy dy + dz dz rounds as the reference's. With `float_amplitude` the amplitude is
// divided in float (8 lanes instead of 4, within 1.5 float ulps): only for the polyphase sum,
// which does not reproduce the reference's rounding anyway. The position keeps the reference's
// arithmetic there too: one float ulp of time moves a late arrival by ~5e-4 samples.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target_clones("avx2", "default")))
#endif
void image_arrivals(const ImageSources& images, std::size_t begin, std::size_t end,
                    const Vec3& mic, double c, double delay, float fs, bool float_amplitude,
                    float* __restrict position, float* __restrict amplitude) {
  const float* __restrict px = images.x.data() + begin;
  const float* __restrict py = images.y.data() + begin;
  const float* __restrict pz = images.z.data() + begin;
  const float* __restrict att = images.attenuation.data() + begin;
  const double mx = mic[0], my = mic[1], mz = mic[2];
  for (std::size_t i = 0; i < end - begin; ++i) {
    const double dx = static_cast<double>(px[i]) - mx;
    const double dy = static_cast<double>(py[i]) - my;
    const double dz = static_cast<double>(pz[i]) - mz;
    const double dist = std::sqrt(dx * dx + dy * dy + dz * dz);
    position[i] = fs * static_cast<float>(dist / c + delay);
    amplitude[i] = float_amplitude ? att[i] / static_cast<float>(dist)
                                   : static_cast<float>(static_cast<double>(att[i]) / dist);
  }
}

}  // namespace

std::vector<float> build_rir(const ImageSources& images, const Vec3& mic, int sample_rate, double c,
                             const FractionalDelayTable& table, bool exact_summation) {
  const std::size_t n = images.size();
  if (n == 0) return {};
  const int half = table.half_length();
  const double delay = static_cast<double>(half) / sample_rate;

  const DistanceRange range = distance_range(images, mic);
  if (!(range.min_sq > 0.0)) {
    std::ostringstream out;
    out << "microphone at (" << mic[0] << ", " << mic[1] << ", " << mic[2]
        << ") coincides with an image source (distance 0): the impulse response is undefined";
    throw std::invalid_argument(out.str());
  }
  // sqrt, / c and + delay are monotonic: the latest arrival time to the last bit.
  const double t_max = std::sqrt(range.max_sq) / c + delay;
  std::vector<float> rir(rir_length_for(t_max, sample_rate, half), 0.0f);

  // The grid's FIR costs about granularity + 1 filters per output sample, so it pays off only
  // when arrivals outnumber output samples; with fewer (anechoic rooms, low orders) the exact
  // sum is also the faster one.
  std::optional<PolyphaseGrid> grid;
  if (!exact_summation && n >= rir.size()) grid.emplace(table, rir.size());
  // Arrivals in batches that stay in L1, added in image order.
  constexpr std::size_t kBatch = 1024;
  float position[kBatch];
  float amplitude[kBatch];
  for (std::size_t begin = 0; begin < n; begin += kBatch) {
    const std::size_t end = std::min(n, begin + kBatch);
    image_arrivals(images, begin, end, mic, c, delay, static_cast<float>(sample_rate),
                   grid.has_value(), position, amplitude);
    if (grid) {
      grid->add(position, amplitude, end - begin);
    } else {
      // The reference's summation order, so float rounding matches too.
      table.accumulate_many(position, amplitude, end - begin, rir.data());
    }
  }
  if (grid) grid->add_to(rir.data());
  return rir;
}

}  // namespace w2p::roomsim
