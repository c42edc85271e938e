// The reference's optimiser: AdamW with two parameter groups, and its learning-rate schedule.
#pragma once

#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>
#include <torch/ordered_dict.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace w2p::torch_common {

/// Parameters split as timm's param_groups_weight_decay does (spec §3).
struct ParamGroups {
  std::vector<std::string> no_decay_names;  ///< group 0, weight decay 0
  std::vector<torch::Tensor> no_decay;
  std::vector<std::string> decay_names;  ///< group 1, weight decay `weight_decay`
  std::vector<torch::Tensor> decay;
};

/// No decay for parameters with ndim <= 1, names ending in ".bias" and names EXACTLY equal to an
/// entry of `no_decay_names`; the rest decays. Parameters with requires_grad == false are left
/// out (as timm does). Order within a group = order of `named_parameters`.
/// QUIRK(spec §3): the reference's list holds "mask_token", which equals no parameter name, so
/// mask_token_* are decayed; pass the list unchanged to keep that.
ParamGroups split_weight_decay(
    const torch::OrderedDict<std::string, torch::Tensor>& named_parameters,
    const std::vector<std::string>& no_decay_names = {});

/// The no-decay list of the reference's main.py.
std::vector<std::string> reference_no_decay_names();

struct AdamWConfig {
  double lr = 1e-3;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

/// AdamW with group 0 = no_decay (weight decay 0) and group 1 = decay, as the reference.
std::unique_ptr<torch::optim::AdamW> make_adamw(const ParamGroups& groups,
                                                const AdamWConfig& config = {});

/// Learning rate the reference uses DURING epoch `epoch` (0-based): GradualWarmupScheduler
/// (multiplier 1, `warmup` epochs) wrapping CosineAnnealingLR(T_max = total, eta_min =
/// base_lr * min_ratio), stepped once per epoch. Closed form: e <= warmup: base_lr e / warmup;
/// else eta_min + (base_lr - eta_min) (1 + cos(pi (e - warmup - 1) / total)) / 2.
/// QUIRK(spec §3): epoch 0 runs at lr 0 and epochs warmup and warmup + 1 both run at base_lr.
double reference_lr(int epoch, double base_lr = 1e-3, int warmup = 5, int total = 30,
                    double min_ratio = 0.01);

/// Sets the learning rate of every parameter group (AdamW, Adam, SGD options).
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

/// Learning rate of group `group`.
double learning_rate(const torch::optim::Optimizer& optimizer, size_t group = 0);

}  // namespace w2p::torch_common
