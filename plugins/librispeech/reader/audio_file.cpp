#include "librispeech/reader/audio_file.hpp"

#include <sndfile.h>
#include <soxr.h>

#include <cmath>
#include <memory>

#include "w2p/error.hpp"

namespace w2p::librispeech {

namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};

}  // namespace

std::vector<float> resample(const std::vector<float>& in, int from_rate, int to_rate) {
  if (from_rate == to_rate || in.empty()) return in;
  const double ratio = static_cast<double>(to_rate) / from_rate;
  std::vector<float> out(static_cast<std::size_t>(std::ceil(in.size() * ratio)) + 16);
  std::size_t done = 0;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  const soxr_error_t err = soxr_oneshot(from_rate, to_rate, 1, in.data(), in.size(), nullptr,
                                        out.data(), out.size(), &done, &io, &quality, nullptr);
  if (err != nullptr) {
    throw Error(ErrorKind::kInternal, std::string("libsoxr resampling failed: ") + err);
  }
  // soxr flushes its filter at the end, so the output has round(n * ratio) samples.
  out.resize(done);
  return out;
}

AudioData read_audio(const std::string& path, const AudioReadOptions& options) {
  SF_INFO info{};
  std::unique_ptr<SNDFILE, SndfileCloser> file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) {
    throw Error(ErrorKind::kData,
                "cannot decode audio file '" + path + "': " + sf_strerror(nullptr))
        .note("expected a FLAC (or other libsndfile-readable) file of 16 kHz mono speech");
  }
  AudioData a;
  a.file_rate = info.samplerate;
  a.file_channels = info.channels;
  a.file_frames = info.frames;
  if (info.channels < 1 || info.samplerate < 1 || info.frames < 0) {
    throw Error(ErrorKind::kData, "audio file '" + path + "' has an invalid header (" +
                                      std::to_string(info.channels) + " channels, " +
                                      std::to_string(info.samplerate) + " Hz)");
  }
  if (info.channels > 1 && !options.allow_multichannel) {
    throw Error(ErrorKind::kData,
                "audio file '" + path + "' has " + std::to_string(info.channels) + " channels")
        .note("expected mono; set option multichannel: first to use the first channel");
  }
  if (info.samplerate != options.sample_rate && !options.allow_resample) {
    throw Error(ErrorKind::kData,
                "audio file '" + path + "' is at " + std::to_string(info.samplerate) + " Hz")
        .note("expected " + std::to_string(options.sample_rate) +
              " Hz; set option resample: soxr to resample it");
  }
  std::vector<float> interleaved(static_cast<std::size_t>(info.frames) *
                                 static_cast<std::size_t>(info.channels));
  const sf_count_t got = sf_readf_float(file.get(), interleaved.data(), info.frames);
  if (got != info.frames || sf_error(file.get()) != SF_ERR_NO_ERROR) {
    throw Error(ErrorKind::kData, "audio file '" + path + "' is truncated or corrupt: decoded " +
                                      std::to_string(got) + " of " + std::to_string(info.frames) +
                                      " frames (" + sf_strerror(file.get()) + ")");
  }
  std::vector<float> mono(static_cast<std::size_t>(info.frames));
  for (std::size_t i = 0; i < mono.size(); ++i) {
    mono[i] = interleaved[i * static_cast<std::size_t>(info.channels)];  // first channel
  }
  if (info.samplerate != options.sample_rate) {
    a.samples = resample(mono, info.samplerate, options.sample_rate);
    a.resampled = true;
  } else {
    a.samples = std::move(mono);
  }
  return a;
}

}  // namespace w2p::librispeech
