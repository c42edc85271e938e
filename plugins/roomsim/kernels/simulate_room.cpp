#include "roomsim/kernels/simulate_room.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "roomsim/kernels/fft_convolution.hpp"
#include "roomsim/kernels/rir_high_pass.hpp"

namespace w2p::roomsim {

std::int64_t mic_signal_length(const std::vector<std::vector<float>>& rirs,
                               std::size_t signal_length) {
  std::size_t longest = 0;
  for (const auto& h : rirs) longest = std::max(longest, h.size());
  if (longest == 0 || signal_length == 0) return 0;
  auto length = static_cast<std::int64_t>(longest + signal_length - 1);
  if (length % 2 == 1) ++length;
  return length;
}

ShoeboxSimulator::ShoeboxSimulator(const RirOptions& options)
    : options_(options), table_(options.frac_delay_length, options.lut_granularity) {
  if (options_.high_pass && !(options_.high_pass_cutoff_hz > 0.0)) {
    throw std::invalid_argument("high-pass cutoff must be positive, got " +
                                std::to_string(options_.high_pass_cutoff_hz) + " Hz");
  }
}

std::vector<std::vector<float>> ShoeboxSimulator::compute_rirs(
    const ShoeboxRoom& room, const Vec3& source, const std::vector<Vec3>& mics) const {
  validate_room(room);
  validate_inside(room, source, "source");
  for (std::size_t m = 0; m < mics.size(); ++m) {
    const std::string what = "microphone " + std::to_string(m);
    validate_inside(room, mics[m], what.c_str());
  }
  // Per-thread storage reused across rooms: a reverberant room's ~10 MB of images, allocated
  // anew, would be page-faulted in again for every room (a fifth of its time).
  thread_local ImageSources images;
  compute_image_sources(room, source, images);
  std::vector<std::vector<float>> rirs;
  rirs.reserve(mics.size());
  for (const Vec3& mic : mics) {
    rirs.push_back(
        build_rir(images, mic, room.sample_rate, room.c, table_, options_.exact_summation));
    if (options_.high_pass) {
      high_pass_rir(rirs.back(), options_.high_pass_cutoff_hz, room.sample_rate);
    }
  }
  return rirs;
}

MicSignals ShoeboxSimulator::simulate(const ShoeboxRoom& room, const Vec3& source,
                                      const std::vector<Vec3>& mics, const float* signal,
                                      std::size_t n,
                                      std::vector<std::vector<float>>* rirs_out) const {
  std::vector<std::vector<float>> rirs = compute_rirs(room, source, mics);
  MicSignals out;
  out.channels = static_cast<std::int64_t>(mics.size());
  out.length = mic_signal_length(rirs, n);
  out.samples = convolve_full_many(signal, n, rirs, static_cast<std::size_t>(out.length));
  if (rirs_out != nullptr) *rirs_out = std::move(rirs);
  return out;
}

}  // namespace w2p::roomsim
