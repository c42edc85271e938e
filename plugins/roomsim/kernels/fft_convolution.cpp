#include "roomsim/kernels/fft_convolution.hpp"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>

namespace w2p::roomsim {
namespace {

// A forward/inverse real FFT pair of one size. Created under the planner mutex (FFTW's planner
// is not thread-safe) and never destroyed: the cache lives until the process exits.
struct PlanPair {
  fftwf_plan forward = nullptr;
  fftwf_plan inverse = nullptr;
};

// FFTW_ESTIMATE keeps plans (and so results) independent of timing measurements: the same
// input gives bit-identical output on every run.
const PlanPair& plans_for(std::size_t n) {
  static std::mutex mutex;
  static auto* cache = new std::map<std::size_t, PlanPair>();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache->find(n);
  if (it != cache->end()) return it->second;
  float* real = fftwf_alloc_real(n);
  fftwf_complex* spec = fftwf_alloc_complex(n / 2 + 1);
  if (real == nullptr || spec == nullptr) throw std::bad_alloc();
  const int size = static_cast<int>(n);
  PlanPair p;
  p.forward = fftwf_plan_dft_r2c_1d(size, real, spec, FFTW_ESTIMATE);
  p.inverse = fftwf_plan_dft_c2r_1d(size, spec, real, FFTW_ESTIMATE);
  fftwf_free(real);
  fftwf_free(spec);
  return cache->emplace(n, p).first->second;
}

// fftwf_malloc'd buffer: the new-array execute functions need the planner's alignment.
template <typename T>
struct FftwBuffer {
  explicit FftwBuffer(std::size_t count)
      : data(static_cast<T*>(fftwf_malloc(sizeof(T) * std::max<std::size_t>(count, 1)))) {
    if (data == nullptr) throw std::bad_alloc();
  }
  ~FftwBuffer() { fftwf_free(data); }
  FftwBuffer(const FftwBuffer&) = delete;
  FftwBuffer& operator=(const FftwBuffer&) = delete;
  T* data;
};

}  // namespace

std::size_t choose_fft_size(std::size_t signal_length, std::size_t filter_length,
                            std::size_t n_filters) {
  const std::size_t lh = std::max<std::size_t>(filter_length, 1);
  const std::size_t n = std::max<std::size_t>(signal_length, 1);
  const std::size_t full = n + lh - 1;
  std::size_t best = 0;
  double best_cost = 0.0;
  // Smallest candidate: twice the filter (block >= lh); largest: one block for everything.
  std::size_t size = 16;
  while (size < 2 * lh) size *= 2;
  for (;; size *= 2) {
    const std::size_t block = size - lh + 1;
    const std::size_t blocks = (n + block - 1) / block;
    const double log_n = std::log2(static_cast<double>(size));
    // Transforms: filters once, one forward and n_filters inverse per block; plus products.
    const double transforms = static_cast<double>(n_filters + blocks * (1 + n_filters));
    const double cost = transforms * size * log_n +
                        static_cast<double>(blocks * n_filters) * static_cast<double>(size);
    if (best == 0 || cost < best_cost) {
      best = size;
      best_cost = cost;
    }
    if (size >= full) break;
  }
  return best;
}

std::vector<float> convolve_full_many(const float* signal, std::size_t signal_length,
                                      const std::vector<std::vector<float>>& filters,
                                      std::size_t out_length) {
  const std::size_t n_filters = filters.size();
  std::vector<float> out(n_filters * out_length, 0.0f);
  if (n_filters == 0 || signal_length == 0 || out_length == 0) return out;
  std::size_t lh = 0;
  for (const auto& h : filters) lh = std::max(lh, h.size());
  if (lh == 0) return out;

  const std::size_t size = choose_fft_size(signal_length, lh, n_filters);
  const std::size_t bins = size / 2 + 1;
  const std::size_t block = size - lh + 1;
  const PlanPair& plans = plans_for(size);

  // Rows of the filter spectra start 64-byte aligned: the new-array execute functions require
  // the alignment of the arrays the plan was made with.
  const std::size_t row = (bins + 7) / 8 * 8;
  FftwBuffer<float> time(size);
  FftwBuffer<fftwf_complex> spectra(row * n_filters);
  FftwBuffer<fftwf_complex> block_spec(bins);
  FftwBuffer<fftwf_complex> product(bins);

  // Filter spectra, with the 1/size of the unnormalised inverse folded in.
  const float scale = 1.0f / static_cast<float>(size);
  for (std::size_t m = 0; m < n_filters; ++m) {
    const auto& h = filters[m];
    std::fill(time.data, time.data + size, 0.0f);
    for (std::size_t k = 0; k < h.size(); ++k) time.data[k] = h[k] * scale;
    fftwf_execute_dft_r2c(plans.forward, time.data, spectra.data + m * row);
  }

  for (std::size_t start = 0; start < signal_length; start += block) {
    const std::size_t len = std::min(block, signal_length - start);
    std::memcpy(time.data, signal + start, len * sizeof(float));
    std::fill(time.data + len, time.data + size, 0.0f);
    fftwf_execute_dft_r2c(plans.forward, time.data, block_spec.data);
    for (std::size_t m = 0; m < n_filters; ++m) {
      const fftwf_complex* h = spectra.data + m * row;
      const fftwf_complex* x = block_spec.data;
      fftwf_complex* y = product.data;
      for (std::size_t b = 0; b < bins; ++b) {
        const float re = x[b][0] * h[b][0] - x[b][1] * h[b][1];
        const float im = x[b][0] * h[b][1] + x[b][1] * h[b][0];
        y[b][0] = re;
        y[b][1] = im;
      }
      fftwf_execute_dft_c2r(plans.inverse, product.data, time.data);
      // This block's contribution covers [start, start + len + len(h) - 1).
      const std::size_t valid = len + filters[m].size() - 1;
      if (start >= out_length) continue;
      const std::size_t count = std::min(valid, out_length - start);
      float* dst = out.data() + m * out_length + start;
      const float* src = time.data;
      for (std::size_t t = 0; t < count; ++t) dst[t] += src[t];
    }
  }
  return out;
}

}  // namespace w2p::roomsim
