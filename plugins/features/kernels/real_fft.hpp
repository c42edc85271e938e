// Real-input FFTs of a fixed length on top of FFTW (single precision), with a process-wide plan
// cache. Planning is serialised (FFTW's planner is not thread-safe); executing a plan is
// thread-safe, so one RealFft may be used from several threads at once.
#pragma once

#include <complex>
#include <cstddef>
#include <new>
#include <vector>

namespace w2p::features {

namespace detail {
struct RealFftPlans;  // FFTW plans of one length (real_fft.cpp)
}  // namespace detail

/// Allocator giving 64-byte aligned storage, so that buffers qualify for FFTW's SIMD plans.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::size_t kAlignment = 64;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>& /*other*/) noexcept {}  // NOLINT: rebind
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{kAlignment}));
  }
  void deallocate(T* p, std::size_t /*n*/) noexcept {
    ::operator delete (p, std::align_val_t{kAlignment});
  }
  template <typename U>
  bool operator==(const AlignedAllocator<U>& /*other*/) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>& /*other*/) const noexcept {
    return false;
  }
};

template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

/// Number of complex values to step between rows of `bins` spectra so that every row starts
/// 64-byte aligned (rows of 2049 complex<float> would otherwise alternate alignment).
std::size_t aligned_row_stride(std::size_t bins);

/// Unnormalised real FFT of length n (numpy/FFTW sign convention):
///   forward: X[k] = sum_t x[t] exp(-2 pi i k t / n), k = 0..n/2 (n/2 + 1 bins);
///   inverse: x[t] = sum over the Hermitian extension of X of X[k] exp(+2 pi i k t / n),
///            i.e. n times numpy's irfft (the imaginary parts of the DC and, for even n,
///            Nyquist bins are ignored, as in numpy and torch).
/// Any pointers may be used; SIMD-aligned ones (AlignedVector, malloc) run the SIMD plans.
class RealFft {
 public:
  /// Finds or creates the plans for length n (n >= 1). Throws std::invalid_argument for n < 1,
  /// std::runtime_error if FFTW cannot plan.
  explicit RealFft(int n);

  int size() const { return n_; }
  int bins() const { return n_ / 2 + 1; }

  /// in: n values, out: n/2 + 1 values. in and out must not overlap.
  void forward(const float* in, std::complex<float>* out) const;
  /// in: n/2 + 1 values, DESTROYED (FFTW's c2r overwrites its input); out: n values.
  void inverse(std::complex<float>* in, float* out) const;

 private:
  int n_;
  const detail::RealFftPlans* plans_;
};

}  // namespace w2p::features
