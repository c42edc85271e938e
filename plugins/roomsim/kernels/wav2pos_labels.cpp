#include "roomsim/kernels/wav2pos_labels.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace w2p::roomsim {
namespace {

// Copies src[first, first + count) into dst; `what` names the input in the error raised when
// the window leaves [0, src_length).
void copy_window(const float* src, std::int64_t src_length, std::int64_t first, std::int64_t count,
                 float* dst, const char* what) {
  if (first < 0 || first + count > src_length) {
    std::ostringstream out;
    out << what << " has " << src_length << " samples, the crop needs [" << first << ", "
        << first + count << ")";
    throw std::invalid_argument(out.str());
  }
  std::copy(src + first, src + first + count, dst);
}

}  // namespace

std::vector<double> tdoa_matrix(const Vec3& source, const std::vector<Vec3>& mics,
                                double sample_rate, double c) {
  const std::size_t k = mics.size() + 1;
  std::vector<double> toa(k, 0.0);
  for (std::size_t m = 0; m < mics.size(); ++m) {
    const double dx = source[0] - mics[m][0];
    const double dy = source[1] - mics[m][1];
    const double dz = source[2] - mics[m][2];
    toa[m + 1] = std::sqrt(dx * dx + dy * dy + dz * dz) * sample_rate / c;
  }
  std::vector<double> t(k * k);
  for (std::size_t a = 0; a < k; ++a) {
    for (std::size_t b = 0; b < k; ++b) t[a * k + b] = toa[a] - toa[b];
  }
  return t;
}

std::vector<float> crop_item_audio(const float* dry, std::size_t dry_length,
                                   const float* mic_samples, std::int64_t channels,
                                   std::int64_t mic_length, const CropOptions& options) {
  if (options.length <= 0) {
    throw std::invalid_argument("crop length must be positive, got " +
                                std::to_string(options.length));
  }
  if (channels < 0 || mic_length < 0) {
    throw std::invalid_argument("microphone signals must have a non-negative shape, got [" +
                                std::to_string(channels) + ", " + std::to_string(mic_length) + "]");
  }
  const std::int64_t len = options.length;
  std::vector<float> audio(static_cast<std::size_t>((channels + 1) * len));
  copy_window(dry, static_cast<std::int64_t>(dry_length), options.start, len, audio.data(),
              "dry signal");
  const std::int64_t mic_start = options.start + options.mic_offset();
  for (std::int64_t m = 0; m < channels; ++m) {
    copy_window(mic_samples + m * mic_length, mic_length, mic_start, len,
                audio.data() + (m + 1) * len, "microphone signal");
  }
  return audio;
}

std::vector<float> crop_item_audio(const float* dry, std::size_t dry_length, const MicSignals& mics,
                                   const CropOptions& options) {
  return crop_item_audio(dry, dry_length, mics.samples.data(), mics.channels, mics.length, options);
}

}  // namespace w2p::roomsim
