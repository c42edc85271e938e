#include "ngcc/model/spectral_conv.hpp"

#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/nn/functional/padding.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <stdexcept>
#include <vector>

#include "features/kernels/real_fft.hpp"
#include "ngcc/model/conv1d.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

// Fortran BLAS (the libblas.so.3 LibTorch loads: OpenBLAS through Debian's alternatives), called
// directly for the ~3,000 small GEMMs of one spectral product: ATen's own wrapper
// (cpublas::gemm) is not exported, and at::mm would add tensor dispatch to each call.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

namespace w2p::ngcc {
namespace {

namespace F = torch::nn::functional;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using Complex = std::complex<float>;

// Channels moved between the signal-major and the bin-major layout together: 16 floats fill one
// 64-byte line of the bin-major buffers.
constexpr int64_t kChannelBlock = 16;

struct Geometry {
  int64_t length;  // L: input and output samples
  int64_t fft;     // FFT length: L (circular) or >= L + K/2 (zero padding)
  int64_t kernel;  // K
  int64_t bins() const { return fft / 2 + 1; }
};

Geometry geometry(int64_t length, int64_t kernel, ConvPadding padding) {
  return {length, spectral_conv_fft_length(length, kernel, padding), kernel};
}

// Inside a parallel region, makes BLAS calls from this thread run single-threaded. OpenBLAS's
// OpenMP build sizes its team by omp_get_max_threads(), which a nested region still reports as
// the outer count; it then routes the call through its threaded path, which (built with
// NUM_PARALLEL=1) admits one caller at a time, and the other threads spin while they wait.
void single_threaded_blas_here() {
#ifdef _OPENMP
  if (omp_in_parallel()) omp_set_num_threads(1);
#endif
}

// Row-major C = op(A) op(B) + beta C (column-major BLAS: C^T = op(B)^T op(A)^T).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
  const int im = static_cast<int>(m), in = static_cast<int>(n), ik = static_cast<int>(k);
  const int ia = static_cast<int>(lda), ib = static_cast<int>(ldb), ic = static_cast<int>(ldc);
  const float one = 1.0f;
  sgemm_(&tb, &ta, &in, &im, &ik, &one, b, &ib, a, &ia, &beta, c, &ic);
}

// Spectra of the rows of x [R, S, L], each zero-padded to the FFT length, in bin-major planar
// form: [2 (re, im), bins, R, S], so that every bin is a pair of R x S matrices.
torch::Tensor bin_major_spectra(const torch::Tensor& x, const Geometry& g) {
  const int64_t rows = x.size(0), chans = x.size(1), bins = g.bins();
  auto spec = torch::empty({2, bins, rows, chans}, x.options());
  const float* in = x.data_ptr<float>();
  float* re = spec.data_ptr<float>();
  float* im = re + bins * rows * chans;
  const int64_t blocks = (chans + kChannelBlock - 1) / kChannelBlock;
  const features::RealFft fft(static_cast<int>(g.fft));
  const auto stride = static_cast<int64_t>(features::aligned_row_stride(static_cast<size_t>(bins)));
  at::parallel_for(0, rows * blocks, 1, [&](int64_t begin, int64_t end) {
    features::AlignedVector<float> padded(static_cast<size_t>(g.fft), 0.0f);
    features::AlignedVector<Complex> spectra(static_cast<size_t>(kChannelBlock * stride));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / blocks, c0 = item % blocks * kChannelBlock;
      const int64_t width = std::min(kChannelBlock, chans - c0);
      for (int64_t j = 0; j < width; ++j) {
        const float* src = in + (r * chans + c0 + j) * g.length;
        if (g.fft == g.length) {
          fft.forward(src, spectra.data() + j * stride);
        } else {
          std::copy(src, src + g.length, padded.data());  // the tail stays zero
          fft.forward(padded.data(), spectra.data() + j * stride);
        }
      }
      for (int64_t f = 0; f < bins; ++f) {
        float* dst_re = re + (f * rows + r) * chans + c0;
        float* dst_im = im + (f * rows + r) * chans + c0;
        for (int64_t j = 0; j < width; ++j) {
          const Complex v = spectra[static_cast<size_t>(j * stride + f)];
          dst_re[j] = v.real();
          dst_im[j] = v.imag();
        }
      }
    }
  });
  return spec;
}

// Inverse of bin_major_spectra without the 1/FFT-length (the weight spectra carry it):
// spec [2, bins, R, S] -> the first L samples of each row's inverse real FFT, [R, S, L], plus
// bias[s] where given; into `out` if it is defined.
torch::Tensor signals_from_spectra(const torch::Tensor& spec, const Geometry& g,
                                   const torch::Tensor& bias, torch::Tensor out = {}) {
  const int64_t bins = spec.size(1), rows = spec.size(2), chans = spec.size(3);
  if (!out.defined()) out = torch::empty({rows, chans, g.length}, spec.options());
  const float* re = spec.data_ptr<float>();
  const float* im = re + bins * rows * chans;
  float* o = out.data_ptr<float>();
  const auto b = bias.defined() ? bias.contiguous() : bias;
  const float* bias_data = b.defined() ? b.data_ptr<float>() : nullptr;
  const int64_t blocks = (chans + kChannelBlock - 1) / kChannelBlock;
  const features::RealFft fft(static_cast<int>(g.fft));
  const auto stride = static_cast<int64_t>(features::aligned_row_stride(static_cast<size_t>(bins)));
  at::parallel_for(0, rows * blocks, 1, [&](int64_t begin, int64_t end) {
    features::AlignedVector<float> signal(static_cast<size_t>(g.fft));
    features::AlignedVector<Complex> spectra(static_cast<size_t>(kChannelBlock * stride));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / blocks, c0 = item % blocks * kChannelBlock;
      const int64_t width = std::min(kChannelBlock, chans - c0);
      for (int64_t f = 0; f < bins; ++f) {
        const float* src_re = re + (f * rows + r) * chans + c0;
        const float* src_im = im + (f * rows + r) * chans + c0;
        for (int64_t j = 0; j < width; ++j) {
          spectra[static_cast<size_t>(j * stride + f)] = Complex(src_re[j], src_im[j]);
        }
      }
      for (int64_t j = 0; j < width; ++j) {
        float* dst = o + (r * chans + c0 + j) * g.length;
        const float shift = bias_data ? bias_data[c0 + j] : 0.0f;
        if (g.fft == g.length && shift == 0.0f) {
          fft.inverse(spectra.data() + j * stride, dst);
          continue;
        }
        fft.inverse(spectra.data() + j * stride, signal.data());
        for (int64_t t = 0; t < g.length; ++t) dst[t] = signal[static_cast<size_t>(t)] + shift;
      }
    }
  });
  return out;
}

// One factor of a per-bin complex matrix product: planar re/im at [2, bins, stored rows, stored
// cols], used as stored or transposed, and conjugated (imag_sign -1) or not.
struct Factor {
  const torch::Tensor& spec;
  bool transposed;
  float imag_sign;
};

// out[f] = op(P[f]) op(Q[f]) for every bin f, op(P) m x k, op(Q) k x n; out [2, bins, m, n].
// The 3M form: T1 = Pr Qr, T2 = Pi Qi, T3 = (Pr + sp Pi)(Qr + sq Qi); re = T1 - sp sq T2,
// im = T3 - T1 - sp sq T2 (three real GEMMs instead of four).
torch::Tensor spectral_products(const Factor& p, const Factor& q, int64_t m, int64_t n, int64_t k) {
  const int64_t bins = p.spec.size(1);
  auto out = torch::empty({2, bins, m, n}, p.spec.options());
  const float* p_re = p.spec.data_ptr<float>();
  const float* p_im = p_re + bins * m * k;
  const float* q_re = q.spec.data_ptr<float>();
  const float* q_im = q_re + bins * k * n;
  float* o_re = out.data_ptr<float>();
  float* o_im = o_re + bins * m * n;
  const int64_t ldp = p.transposed ? m : k;
  const int64_t ldq = q.transposed ? k : n;
  const float s = p.imag_sign * q.imag_sign;
  at::parallel_for(0, bins, 1, [&](int64_t begin, int64_t end) {
    single_threaded_blas_here();
    std::vector<float> p_sum(static_cast<size_t>(m * k)), q_sum(static_cast<size_t>(k * n));
    std::vector<float> t2(static_cast<size_t>(m * n));
    for (int64_t f = begin; f < end; ++f) {
      const float* pr = p_re + f * m * k;
      const float* pi = p_im + f * m * k;
      const float* qr = q_re + f * k * n;
      const float* qi = q_im + f * k * n;
      float* re = o_re + f * m * n;
      float* im = o_im + f * m * n;
      for (size_t i = 0; i < p_sum.size(); ++i) p_sum[i] = pr[i] + p.imag_sign * pi[i];
      for (size_t i = 0; i < q_sum.size(); ++i) q_sum[i] = qr[i] + q.imag_sign * qi[i];
      gemm(p.transposed, q.transposed, m, n, k, pr, ldp, qr, ldq, 0.0f, re, n);
      gemm(p.transposed, q.transposed, m, n, k, pi, ldp, qi, ldq, 0.0f, t2.data(), n);
      gemm(p.transposed, q.transposed, m, n, k, p_sum.data(), ldp, q_sum.data(), ldq, 0.0f, im, n);
      for (size_t i = 0; i < t2.size(); ++i) {
        const float t1 = re[i], st2 = s * t2[i];
        re[i] = t1 - st2;
        im[i] -= t1 + st2;
      }
    }
  });
  return out;
}

// Phase tables of the kernel taps: the convolution is a circular one with u[(h - j) mod n] =
// w[j] (h = K/2), whose spectrum is U[f] = sum_j w[j] exp(-2 pi i f (h - j) / n). Returns
// (cos, -sin) of those phases divided by n, [bins, K] float: U / n = w-weighted sums of them.
std::pair<torch::Tensor, torch::Tensor> kernel_phases(const Geometry& g) {
  const int64_t bins = g.bins(), half = g.kernel / 2;
  auto cos_t = torch::empty({bins, g.kernel}, torch::kFloat64);
  auto sin_t = torch::empty({bins, g.kernel}, torch::kFloat64);
  auto c = cos_t.accessor<double, 2>();
  auto s = sin_t.accessor<double, 2>();
  for (int64_t f = 0; f < bins; ++f) {
    for (int64_t j = 0; j < g.kernel; ++j) {
      const int64_t turn = ((f * (half - j)) % g.fft + g.fft) % g.fft;  // exact phase index
      const double angle = 2.0 * M_PI * static_cast<double>(turn) / static_cast<double>(g.fft);
      c[f][j] = std::cos(angle) / static_cast<double>(g.fft);
      s[f][j] = -std::sin(angle) / static_cast<double>(g.fft);
    }
  }
  return {cos_t.to(torch::kFloat32), sin_t.to(torch::kFloat32)};
}

// weight [O, C, K] -> its spectra divided by the FFT length, bin-major [2, bins, C, O].
torch::Tensor weight_spectra(const torch::Tensor& weight, const Geometry& g) {
  const int64_t o = weight.size(0), c = weight.size(1);
  const auto [cos_t, sin_t] = kernel_phases(g);
  const auto taps = weight.detach().permute({2, 1, 0}).reshape({g.kernel, c * o});  // [K, C O]
  auto spec = torch::empty({2, g.bins(), c, o}, weight.options().requires_grad(false));
  auto re = spec[0].view({g.bins(), c * o});
  auto im = spec[1].view({g.bins(), c * o});
  torch::mm_out(re, cos_t, taps);
  torch::mm_out(im, sin_t, taps);
  return spec;
}

// The gradient of the weight from the spectra P [2, bins, C, O] of the circular correlations
// p[m] = sum_t g[t] x[t - m] (times the FFT length): dL/dw[o, c, j] = p[h - j] = the inverse
// real FFT of P at lag h - j, i.e. the phase tables weighted by the bins' multiplicities (1 for
// DC and Nyquist, 2 for the rest: the Hermitian half counts twice).
torch::Tensor weight_from_spectra(const torch::Tensor& spec, const Geometry& g) {
  const int64_t bins = spec.size(1), c = spec.size(2), o = spec.size(3);
  auto [cos_t, sin_t] = kernel_phases(g);
  auto multiplicity = torch::full({bins, 1}, 2.0f);
  multiplicity[0] = 1.0f;
  if (g.fft % 2 == 0) multiplicity[bins - 1] = 1.0f;
  cos_t.mul_(multiplicity);
  sin_t.mul_(multiplicity);
  auto taps = torch::mm(cos_t.t(), spec[0].view({bins, c * o}));  // [K, C O]
  taps.addmm_(sin_t.t(), spec[1].view({bins, c * o}));
  return taps.view({g.kernel, c, o}).permute({2, 1, 0}).contiguous();
}

torch::Tensor forward_spectral(const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, const Geometry& g,
                               torch::Tensor* x_spectra, const torch::Tensor& out = {}) {
  const int64_t n = x.size(0), c = x.size(1), o = weight.size(0);
  auto xs = bin_major_spectra(x.contiguous(), g);  // [2, bins, N, C]
  const auto us = weight_spectra(weight, g);       // [2, bins, C, O]
  const auto ys = spectral_products({xs, false, 1.0f}, {us, false, 1.0f}, n, o, c);
  if (x_spectra) *x_spectra = xs;
  return signals_from_spectra(ys, g, bias.defined() ? bias.detach() : bias, out);
}

class SpectralConv1dFunction : public torch::autograd::Function<SpectralConv1dFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               int64_t fft_length) {
    const Geometry g{x.size(2), fft_length, weight.size(2)};
    torch::Tensor xs;
    auto y = forward_spectral(x, weight, bias, g, &xs);
    ctx->save_for_backward({xs, weight});
    ctx->saved_data["fft"] = fft_length;
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& xs = saved[0];  // [2, bins, N, C]
    const auto& weight = saved[1];
    const auto grad = grads[0].contiguous();  // [N, O, L]
    const int64_t n = grad.size(0), o = grad.size(1), c = weight.size(1);
    const Geometry g{grad.size(2), ctx->saved_data["fft"].toInt(), weight.size(2)};
    const auto gs = bin_major_spectra(grad, g);  // [2, bins, N, O]
    torch::Tensor grad_x, grad_w, grad_b;
    if (ctx->needs_input_grad(0)) {
      // dL/dx: the correlation of g with the kernel, G conj(U) summed over outputs.
      // Recomputed, not saved by the forward: ~30 ms against 134 MB per 128x128 layer kept alive.
      const auto us = weight_spectra(weight, g);
      grad_x = signals_from_spectra(
          spectral_products({gs, false, 1.0f}, {us, true, -1.0f}, n, c, o), g, torch::Tensor());
    }
    if (ctx->needs_input_grad(1)) {
      // dL/dw: the correlation of g with x at the kernel's lags, conj(X)^T G per bin.
      grad_w =
          weight_from_spectra(spectral_products({xs, true, -1.0f}, {gs, false, 1.0f}, c, o, n), g);
    }
    if (ctx->needs_input_grad(2)) grad_b = grad.sum(torch::IntArrayRef{0, 2});
    return {grad_x, grad_w, grad_b, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor direct_conv1d(const torch::Tensor& x, const torch::Tensor& weight,
                            const torch::Tensor& bias, ConvPadding padding) {
  const int64_t half = weight.size(2) / 2;
  auto options = F::PadFuncOptions({half, half});
  if (padding == ConvPadding::kCircular) options.mode(torch::kCircular);
  return conv1d(F::pad(x, options), weight, bias);
}

int64_t spectral_conv_fft_length(int64_t length, int64_t kernel, ConvPadding padding) {
  if (padding == ConvPadding::kCircular) return length;
  // Zero padding: outputs 0..L-1 read x at -K/2..L-1+K/2; a period of n >= L + K/2 keeps the
  // wrapped-around part of the circular product in the zeros.
  for (int64_t n = length + kernel / 2;; ++n) {
    int64_t rest = n;
    for (const int64_t p : {2, 3, 5}) {
      while (rest % p == 0) rest /= p;
    }
    if (rest == 1) return n;
  }
}

torch::Tensor spectral_conv1d(const torch::Tensor& x, const torch::Tensor& weight,
                              const torch::Tensor& bias, ConvPadding padding,
                              const torch::Tensor& out) {
  if (x.dim() != 3 || weight.dim() != 3 || x.size(1) != weight.size(1) || weight.size(2) % 2 == 0) {
    throw std::invalid_argument(
        "spectral_conv1d: expected x [N, C, L] and weight [O, C, K] with K odd");
  }
  if (padding == ConvPadding::kCircular && weight.size(2) / 2 > x.size(2)) {
    throw std::invalid_argument("spectral_conv1d: circular padding wider than the signal");
  }
  if (!x.is_cpu() || x.scalar_type() != torch::kFloat32 ||
      weight.scalar_type() != torch::kFloat32) {
    auto y = direct_conv1d(x, weight, bias, padding);
    return out.defined() ? out.copy_(y) : y;
  }
  const Geometry g = geometry(x.size(2), weight.size(2), padding);
  const bool graph =
      torch::GradMode::is_enabled() &&
      (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  if (out.defined()) {
    const std::vector<int64_t> shape{x.size(0), weight.size(0), x.size(2)};
    if (graph || !out.is_contiguous() || out.sizes() != shape ||
        out.scalar_type() != x.scalar_type()) {
      throw std::invalid_argument(
          "spectral_conv1d: 'out' must be a contiguous tensor of the result's shape and type, "
          "and is only taken without a graph");
    }
  }
  if (!graph) return forward_spectral(x, weight, bias, g, nullptr, out);
  // LibTorch 1.13's custom functions take no undefined inputs.
  const auto b = bias.defined() ? bias : torch::zeros({weight.size(0)}, weight.options());
  return SpectralConv1dFunction::apply(x, weight, b, g.fft);
}

}  // namespace w2p::ngcc
