#include "features/kernels/real_fft.hpp"

#include <fftw3.h>

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace w2p::features {

namespace detail {

struct RealFftPlans {
  // Plans made on 64-byte aligned arrays (SIMD) and with FFTW_UNALIGNED for any other pointer:
  // the new-array execute functions require the alignment the plan was made for.
  fftwf_plan r2c_aligned = nullptr;
  fftwf_plan c2r_aligned = nullptr;
  fftwf_plan r2c_unaligned = nullptr;
  fftwf_plan c2r_unaligned = nullptr;
};

}  // namespace detail

namespace {

std::mutex& planner_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Plans live for the whole process: they are few (one set per FFT length) and small, and
// destroying them at exit would race with other static destructors.
std::map<int, std::unique_ptr<detail::RealFftPlans>>& plan_cache() {
  static auto* cache = new std::map<int, std::unique_ptr<detail::RealFftPlans>>();
  return *cache;
}

// FFTW's own test: a pointer may use a SIMD plan if its offset modulo the SIMD alignment equals
// that of the arrays the plan was made for (ours are 64-byte aligned, offset 0).
bool is_aligned(float* p) { return fftwf_alignment_of(p) == 0; }
bool is_aligned(fftwf_complex* p) { return fftwf_alignment_of(reinterpret_cast<float*>(p)) == 0; }

}  // namespace

std::size_t aligned_row_stride(std::size_t bins) {
  constexpr std::size_t kPerLine =
      AlignedAllocator<float>::kAlignment / sizeof(std::complex<float>);
  return (bins + kPerLine - 1) / kPerLine * kPerLine;
}

RealFft::RealFft(int n) : n_(n), plans_(nullptr) {
  if (n < 1) {
    throw std::invalid_argument("RealFft: length must be >= 1, got " + std::to_string(n));
  }
  std::lock_guard<std::mutex> lock(planner_mutex());
  // Other code in the process (another plugin with its own copy of this cache, a library) may
  // plan with FFTW too; this makes FFTW's planner take its own global lock as well.
  static const bool kThreadSafePlanner = [] {
    fftwf_make_planner_thread_safe();
    return true;
  }();
  (void)kThreadSafePlanner;
  auto& cache = plan_cache();
  auto it = cache.find(n);
  if (it == cache.end()) {
    auto plans = std::make_unique<detail::RealFftPlans>();
    AlignedVector<float> real(static_cast<std::size_t>(n));
    AlignedVector<std::complex<float>> spectrum(static_cast<std::size_t>(n / 2 + 1));
    auto* c = reinterpret_cast<fftwf_complex*>(spectrum.data());
    // FFTW_ESTIMATE: planning does not time candidate algorithms, so the chosen algorithm (and
    // therefore every rounding) is the same on every run; it also leaves the arrays untouched.
    const unsigned flags = FFTW_ESTIMATE;
    plans->r2c_aligned = fftwf_plan_dft_r2c_1d(n, real.data(), c, flags);
    plans->c2r_aligned = fftwf_plan_dft_c2r_1d(n, c, real.data(), flags);
    plans->r2c_unaligned = fftwf_plan_dft_r2c_1d(n, real.data(), c, flags | FFTW_UNALIGNED);
    plans->c2r_unaligned = fftwf_plan_dft_c2r_1d(n, c, real.data(), flags | FFTW_UNALIGNED);
    if (!plans->r2c_aligned || !plans->c2r_aligned || !plans->r2c_unaligned ||
        !plans->c2r_unaligned) {
      throw std::runtime_error("RealFft: FFTW could not plan a real FFT of length " +
                               std::to_string(n));
    }
    it = cache.emplace(n, std::move(plans)).first;
  }
  plans_ = it->second.get();
}

void RealFft::forward(const float* in, std::complex<float>* out) const {
  // FFTW's r2c does not modify its input; the cast only satisfies its C signature.
  auto* src = const_cast<float*>(in);
  auto* dst = reinterpret_cast<fftwf_complex*>(out);
  const bool aligned = is_aligned(src) && is_aligned(dst);
  fftwf_execute_dft_r2c(aligned ? plans_->r2c_aligned : plans_->r2c_unaligned, src, dst);
}

void RealFft::inverse(std::complex<float>* in, float* out) const {
  auto* src = reinterpret_cast<fftwf_complex*>(in);
  const bool aligned = is_aligned(src) && is_aligned(out);
  fftwf_execute_dft_c2r(aligned ? plans_->c2r_aligned : plans_->c2r_unaligned, src, out);
}

}  // namespace w2p::features
