// GCC-PHAT cross-correlation (spec §3), exactly as the reference's GCC class (filt 'phat').
#pragma once

#include <complex>
#include <vector>

#include "features/kernels/real_fft.hpp"

namespace w2p::features {

/// Regulariser of the PHAT weighting: G / (|G| + epsilon).
inline constexpr float kGccPhatEpsilon = 1e-3f;

/// Number of lags GCC-PHAT returns for a maximum lag max_tau: 2 max_tau + 1.
inline int gcc_phat_num_lags(int max_tau) { return 2 * max_tau + 1; }

/// An ordered channel pair (a, b): the correlation of channel a with channel b.
struct ChannelPair {
  int a = 0;
  int b = 0;
  bool operator==(const ChannelPair& other) const { return a == other.a && b == other.b; }
};

/// Every pair a < b of `channels` channels in the order (0,1), (0,2), ..., (1,2), ...
/// (channels (channels - 1) / 2 pairs).
std::vector<ChannelPair> all_channel_pairs(int channels);

/// GCC-PHAT of signals of a fixed length L, with reusable FFT workspace.
///
/// For a pair (x, y): n = 2 L, X = rfft(x, n), Y = rfft(y, n), G = X conj(Y),
/// cc = irfft(G / (|G| + epsilon), n), output [cc[n - max_tau:], cc[:max_tau + 1]]: value i is
/// the correlation at lag i - max_tau (2 max_tau + 1 values). Sign convention: if y is x delayed
/// by d samples (y[t] = x[t - d]) the peak is at lag -d. Computed in float32 like the reference.
///
/// Not thread-safe (the workspace is mutable): use one instance per thread.
class GccPhat {
 public:
  /// length L >= 1 of every signal, 0 <= max_tau < 2 L, epsilon >= 0.
  /// Throws std::invalid_argument otherwise.
  GccPhat(int length, int max_tau, float epsilon = kGccPhatEpsilon);

  int length() const { return length_; }
  int max_tau() const { return max_tau_; }
  int num_lags() const { return gcc_phat_num_lags(max_tau_); }

  /// One pair: x, y of length L; out receives num_lags() values.
  void correlate(const float* x, const float* y, float* out);

  /// Several pairs of one multi-channel signal, row-major [channels, L]. Each channel's FFT is
  /// computed once and reused by every pair it is in. out receives [pairs.size(), num_lags()].
  /// Throws std::invalid_argument for a channel index outside [0, channels).
  void correlate_pairs(const float* signals, int channels, const std::vector<ChannelPair>& pairs,
                       float* out);

 private:
  // PHAT-weights X conj(Y) into scratch_, inverse-transforms and writes the lag window to out.
  void cross_spectrum_to_lags(const std::complex<float>* x_spec, const std::complex<float>* y_spec,
                              float* out);

  int length_;
  int max_tau_;
  float epsilon_;
  int n_;
  RealFft fft_;
  std::size_t stride_;                          // complex values per spectrum row
  AlignedVector<float> padded_;                 // [n] zero-padded input
  AlignedVector<float> cc_;                     // [n] inverse FFT output
  AlignedVector<std::complex<float>> scratch_;  // [stride_] weighted cross spectrum
  AlignedVector<std::complex<float>> spectra_;  // [channels or 2, stride_] input spectra
};

/// Convenience: GCC-PHAT of one pair of length-L signals -> num_lags values.
std::vector<float> gcc_phat(const std::vector<float>& x, const std::vector<float>& y, int max_tau,
                            float epsilon = kGccPhatEpsilon);

/// Convenience: GCC-PHAT of the given pairs of a row-major [channels, length] signal
/// -> row-major [pairs.size(), 2 max_tau + 1].
std::vector<float> gcc_phat_pairs(const float* signals, int channels, int length,
                                  const std::vector<ChannelPair>& pairs, int max_tau,
                                  float epsilon = kGccPhatEpsilon);

}  // namespace w2p::features
