// Full linear convolution of one signal with several filters, by FFT overlap-add (fftw3f).
#pragma once

#include <cstddef>
#include <vector>

namespace w2p::roomsim {

/// FFT size used by convolve_full_many for a signal of `signal_length` samples and filters up
/// to `filter_length` taps, shared by `n_filters` filters: the power of two minimising the
/// estimated work of overlap-add (one forward transform per block, one inverse per block and
/// filter).
std::size_t choose_fft_size(std::size_t signal_length, std::size_t filter_length,
                            std::size_t n_filters);

/// out[m][t] = sum_k signal[t - k] filters[m][k], t in [0, n + len(filters[m]) - 1), written
/// into row m of a row-major [filters.size(), out_length] buffer, zero beyond; samples past
/// out_length are dropped. Overlap-add with FFTs of choose_fft_size(); the spectrum of each
/// signal block is shared by all filters. Single precision throughout (relative error about
/// 1e-7 of the output scale).
///
/// Thread-safe: FFTW plans are created once per size under a mutex and cached for the life of
/// the process; execution uses FFTW's new-array interface on per-call buffers.
std::vector<float> convolve_full_many(const float* signal, std::size_t signal_length,
                                      const std::vector<std::vector<float>>& filters,
                                      std::size_t out_length);

}  // namespace w2p::roomsim
