#include "ngcc/model/conv1d.hpp"

#include <ATen/ops/convolution_backward.h>
#include <torch/autograd.h>
#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/padding.h>

namespace w2p::ngcc {
namespace {

namespace F = torch::nn::functional;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class Conv1dFunction : public torch::autograd::Function<Conv1dFunction> {
 public:
  // The bias inside the convolution, as torch::conv1d adds it: the same forward rounding (the
  // PHAT weighting downstream amplifies any difference in the backbone's gradients).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias) {
    ctx->save_for_backward({x, weight});
    return F::conv1d(x, weight, F::Conv1dFuncOptions().bias(bias));
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    const auto g = grads[0].contiguous();  // [N, O, T]
    const int64_t k = weight.size(2);
    torch::Tensor grad_x, grad_w;
    if (ctx->needs_input_grad(0)) {
      // d x[n, c, s] = sum_o sum_j w[o, c, j] g[n, o, s - j]: a full convolution.
      grad_x = F::conv1d(F::pad(g, F::PadFuncOptions({k - 1, k - 1})),
                         weight.flip(2).transpose(0, 1).contiguous());
    }
    if (ctx->needs_input_grad(1)) {
      // LibTorch's own weight gradient: as fast as a per-example GEMM here, and its summation
      // keeps the reference's accuracy (BatchNorm makes the output gradient zero-mean, so the
      // sum cancels heavily).
      grad_w = std::get<1>(at::convolution_backward(g, x, weight, c10::nullopt, {1}, {0}, {1},
                                                    false, {0}, 1, {false, true, false}));
    }
    torch::Tensor grad_b;
    if (ctx->needs_input_grad(2)) grad_b = g.sum(torch::IntArrayRef{0, 2});
    return {grad_x, grad_w, grad_b};
  }
};

}  // namespace

torch::Tensor conv1d(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias) {
  // LibTorch 1.13's custom functions take no undefined inputs.
  if (!bias.defined()) return torch::conv1d(x, weight);
  return Conv1dFunction::apply(x, weight, bias);
}

}  // namespace w2p::ngcc
