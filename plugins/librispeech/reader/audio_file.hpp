// Reading one utterance file: libsndfile decoding, channel selection, libsoxr resampling.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace w2p::librispeech {

/// What to do with a file that is not what LibriSpeech ships (16 kHz mono).
struct AudioReadOptions {
  int sample_rate = 16000;         ///< rate of the returned samples
  bool allow_resample = true;      ///< false: a file at another rate is an error
  bool allow_multichannel = true;  ///< true: keep the first channel; false: error
};

struct AudioData {
  std::vector<float> samples;  ///< mono, at AudioReadOptions::sample_rate
  int file_rate = 0;           ///< the file's own sample rate
  int file_channels = 0;
  std::int64_t file_frames = 0;
  bool resampled = false;  ///< file_rate differed from the requested rate
};

/// Decodes `path`. Throws w2p::Error (kIo for an unreadable file, kData for a corrupt one or a
/// rate/channel count the options refuse), naming the file and what was expected.
AudioData read_audio(const std::string& path, const AudioReadOptions& options);

/// Resamples mono float audio with libsoxr (HQ quality, the library's default).
std::vector<float> resample(const std::vector<float>& in, int from_rate, int to_rate);

}  // namespace w2p::librispeech
