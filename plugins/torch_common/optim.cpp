#include "torch_common/optim.hpp"

#include <algorithm>
#include <cmath>

namespace w2p::torch_common {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ParamGroups split_weight_decay(
    const torch::OrderedDict<std::string, torch::Tensor>& named_parameters,
    const std::vector<std::string>& no_decay_names) {
  ParamGroups groups;
  for (const auto& item : named_parameters) {
    const auto& name = item.key();
    const auto& param = item.value();
    if (!param.requires_grad()) continue;  // as timm: frozen parameters join no group
    const bool listed =
        std::find(no_decay_names.begin(), no_decay_names.end(), name) != no_decay_names.end();
    if (param.dim() <= 1 || ends_with(name, ".bias") || listed) {
      groups.no_decay_names.push_back(name);
      groups.no_decay.push_back(param);
    } else {
      groups.decay_names.push_back(name);
      groups.decay.push_back(param);
    }
  }
  return groups;
}

std::vector<std::string> reference_no_decay_names() {
  // QUIRK(spec §3): "mask_token" and "norm" match no full parameter name.
  return {"enc_audio_modality", "enc_loc_modality", "dec_audio_modality",
          "dec_loc_modality",   "mask_token",       "norm"};
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const ParamGroups& groups,
                                                const AdamWConfig& config) {
  auto options = [&config](double weight_decay) {
    return torch::optim::AdamWOptions(config.lr)
        .betas({config.beta1, config.beta2})
        .eps(config.eps)
        .weight_decay(weight_decay)
        .amsgrad(false);
  };
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  param_groups.emplace_back(groups.no_decay,
                            std::make_unique<torch::optim::AdamWOptions>(options(0.0)));
  param_groups.emplace_back(
      groups.decay, std::make_unique<torch::optim::AdamWOptions>(options(config.weight_decay)));
  return std::make_unique<torch::optim::AdamW>(std::move(param_groups),
                                               options(config.weight_decay));
}

double reference_lr(int epoch, double base_lr, int warmup, int total, double min_ratio) {
  if (epoch <= warmup) return warmup > 0 ? base_lr * epoch / warmup : base_lr;
  const double eta_min = base_lr * min_ratio;
  const double pi = std::acos(-1.0);
  return eta_min + (base_lr - eta_min) * (1.0 + std::cos(pi * (epoch - warmup - 1) / total)) / 2.0;
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

double learning_rate(const torch::optim::Optimizer& optimizer, size_t group) {
  return optimizer.param_groups().at(group).options().get_lr();
}

}  // namespace w2p::torch_common
