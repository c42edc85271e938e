// wav2pos model: shapes of every module, the set-to-set property (any number of microphones,
// predictions follow a permutation of the microphones), the frozen NGCC and its two QUIRK
// options, and input validation. Numbers against the reference are in wav2pos_parity_test.
#include "wav2pos/model/wav2pos.hpp"

#include <gtest/gtest.h>
#include <torch/nn/functional/conv.h>

#include <string>
#include <vector>

#include "torch_common/state_dict.hpp"
#include "wav2pos/model/losses.hpp"
#include "wav2pos/model/masking.hpp"
#include "wav2pos/tests/wav2pos_fixture.hpp"

namespace w2p::wav2pos {
namespace {

using torch::indexing::Slice;

constexpr std::int64_t kLen = 2048;

torch::Tensor standardised_audio(std::int64_t batch, std::int64_t channels) {
  const torch::Tensor x = torch::randn({batch, channels, kLen});
  return (x - x.mean(-1, true)) / x.std(-1, true, true);
}

torch::Tensor ids_keep_of(MaskPreset preset, std::int64_t batch, std::int64_t channels) {
  return ids_keep_tensor(preset_mask(preset, batch, channels));
}

/// Random NGCC-like features for forward_with_features: [B, Ka (Ka - 1), 2 max_tau + 1].
torch::Tensor fake_features(std::int64_t batch, std::int64_t kept_audio, std::int64_t max_tau) {
  return torch::randn({batch, kept_audio * (kept_audio - 1), 2 * max_tau + 1});
}

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// ---- building blocks --------------------------------------------------------------------------

TEST(Wav2PosModules, ShapesOfTheBuildingBlocks) {
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({2, 5, 256});
  EXPECT_EQ(Attention(256, 4)->forward(x).sizes(), x.sizes());
  EXPECT_EQ(Mlp(256, 1024)->forward(x).sizes(), x.sizes());
  Block block(256, 4, 4.0, 1e-5);
  EXPECT_EQ(block->forward(x).sizes(), x.sizes());
  EXPECT_EQ(block->mlp->fc1->weight.sizes(), torch::IntArrayRef({1024, 256}));
  EXPECT_EQ(block->attn->qkv->weight.sizes(), torch::IntArrayRef({768, 256}));
  EXPECT_THROW(Attention(256, 3), std::invalid_argument);
}

TEST(Wav2PosModules, PermutedBatchNormNormalisesOverAllTokensOfTheBatch) {
  torch::manual_seed(1);
  PermutedBatchNorm1d bn(64);
  const torch::Tensor x = torch::randn({3, 7, 64}) * 4.0 + 2.0;
  const torch::Tensor y = bn->forward(x);  // train mode: batch statistics over B*N = 21 rows
  ASSERT_EQ(y.sizes(), x.sizes());
  const torch::Tensor rows = y.reshape({-1, 64});
  EXPECT_LT(max_abs(rows.mean(0)), 1e-5);
  EXPECT_LT(max_abs(rows.var(0, /*unbiased=*/false) - 1.0), 1e-3);
  // The same as the reference's BatchNorm1d over the permuted [B, C, N] tensor.
  torch::nn::BatchNorm1d plain(64);
  const torch::Tensor want = plain->forward(x.permute({0, 2, 1})).permute({0, 2, 1});
  EXPECT_LT(max_abs(y - want), 1e-5);
  EXPECT_LT(max_abs(bn->bn->running_mean - plain->running_mean), 1e-6);
}

TEST(Wav2PosModules, PatchEmbedIsTheReferencesConvolution) {
  torch::manual_seed(2);
  PatchEmbed embed(kLen, 256, 256);
  const torch::Tensor patches = torch::randn({2, 7, kLen});
  const torch::Tensor got = embed->forward(patches);
  ASSERT_EQ(got.sizes(), torch::IntArrayRef({2, 7, 256}));
  // Reference: Conv2d(1, E, (1, patch), stride (1, patch)) on [B, 1, K, L], flatten, transpose.
  const torch::Tensor want =
      torch::conv2d(patches.unsqueeze(1), embed->proj->weight, embed->proj->bias, {1, kLen})
          .flatten(2)
          .transpose(1, 2);
  EXPECT_LT(max_abs(got - want), 1e-4);
  EXPECT_EQ(embed->forward_transposed(torch::randn({1, 7, 256})).sizes(),
            torch::IntArrayRef({1, 7, kLen}));  // batch 1 keeps its axis (spec §6)
}

TEST(Wav2PosModules, ModelSubmoduleShapes) {
  torch::manual_seed(3);
  Wav2Pos model;
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor locs = torch::randn({2, 7, 3});
  EXPECT_EQ(model->encoder_embed_locs->forward(locs).sizes(), torch::IntArrayRef({2, 7, 256}));
  const torch::Tensor tokens = torch::randn({2, 7, 256});
  EXPECT_EQ(model->get_decoder_mic_feature->forward(tokens).sizes(), tokens.sizes());
  EXPECT_EQ(model->decoder_fproj->forward(tokens).sizes(), tokens.sizes());
  EXPECT_EQ(model->get_decoder_audio_features->forward(tokens).sizes(), tokens.sizes());
  EXPECT_EQ(model->loc_mlp->forward(torch::randn({2, 30, 2 * 256 + 629})).sizes(),
            torch::IntArrayRef({2, 30, 512}));
  EXPECT_EQ(model->decoder_pred_source->forward(torch::randn({2, 1, 768})).sizes(),
            torch::IntArrayRef({2, 1, 3}));
  EXPECT_EQ(model->decoder_pred_locs->forward(torch::randn({2, 6, 768})).sizes(),
            torch::IntArrayRef({2, 6, 3}));
  EXPECT_EQ(model->ngcc->ngcc->max_tau(), 314);  // QUIRK default (spec §4.2)
}

// ---- the whole model --------------------------------------------------------------------------

TEST(Wav2PosModel, ForwardShapesAndTraceForEverySetup) {
  torch::manual_seed(4);
  Wav2Pos model;
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor audio = standardised_audio(2, 7);
  const torch::Tensor locs = torch::randn({2, 7, 3});
  for (const char* setup : {"1a", "1b", "2a"}) {
    const MaskPlan plan = preset_mask(parse_mask_preset(setup), 2, 7);
    const auto kept = plan.num_kept();
    const auto ka = plan.num_kept_audio;
    Wav2PosTrace trace;
    const auto out = model->forward_with_features(audio, locs, ids_keep_tensor(plan),
                                                  fake_features(2, ka, 314), &trace);
    SCOPED_TRACE(setup);
    EXPECT_EQ(out.pred_locs.sizes(), torch::IntArrayRef({2, 7, 3}));
    EXPECT_EQ(out.pred_audio.sizes(), torch::IntArrayRef({2, 7, kLen}));
    EXPECT_EQ(out.mask.sizes(), torch::IntArrayRef({2, 14}));
    EXPECT_EQ(out.enc_mu.sizes(), torch::IntArrayRef({2, 7, 1}));
    EXPECT_EQ(trace.encoder_in.sizes(), torch::IntArrayRef({2, kept, 256}));
    EXPECT_EQ(trace.latent.sizes(), torch::IntArrayRef({2, kept, 256}));
    EXPECT_EQ(trace.decoder_in.sizes(), torch::IntArrayRef({2, 14, 256}));
    EXPECT_EQ(trace.global_feature.sizes(), torch::IntArrayRef({2, 1, 256}));
    EXPECT_EQ(trace.td_pooled.sizes(), torch::IntArrayRef({2, 1, 512}));
    EXPECT_EQ(trace.td_feature.sizes(), torch::IntArrayRef({2, 1, 256}));
  }
}

TEST(Wav2PosModel, MaskedSourceLocationIsNeverSeen) {
  // The source row of `locations` is masked: changing it changes nothing in eval mode.
  torch::manual_seed(5);
  Wav2Pos model;
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor audio = standardised_audio(2, 7);
  torch::Tensor locs = torch::randn({2, 7, 3});
  const torch::Tensor ids = ids_keep_of(MaskPreset::k1b, 2, 7);
  const torch::Tensor feats = fake_features(2, 7, 314);
  const auto a = model->forward_with_features(audio, locs, ids, feats);
  locs.index_put_({Slice(), 0}, 100.0);
  const auto b = model->forward_with_features(audio, locs, ids, feats);
  EXPECT_TRUE(torch::equal(a.pred_locs, b.pred_locs));
}

/// Full forward (with the NGCC) of setup 1a for K channels: shapes, one time-delay feature per
/// ordered pair of microphones, finite predictions.
Wav2PosOutput expect_runs(Wav2Pos& model, const torch::Tensor& audio, const torch::Tensor& locs) {
  const std::int64_t batch = audio.size(0);
  const std::int64_t channels = audio.size(1);
  const std::int64_t mics = channels - 1;
  Wav2PosTrace trace;
  const auto out =
      model->forward(audio, locs, ids_keep_of(MaskPreset::k1a, batch, channels), &trace);
  EXPECT_EQ(out.pred_locs.sizes(), torch::IntArrayRef({batch, channels, 3}));
  EXPECT_EQ(out.pred_audio.sizes(), torch::IntArrayRef({batch, channels, kLen}));
  EXPECT_EQ(trace.ngcc_features.sizes(), torch::IntArrayRef({batch, mics * (mics - 1), 629}));
  EXPECT_TRUE(torch::isfinite(out.pred_locs).all().item<bool>());
  return out;
}

TEST(Wav2PosModel, RunsWithFourMicrophonesAndIsPermutationEquivariant) {
  // A set-to-set regressor: with the microphones permuted (audio and locations alike) the
  // source prediction is unchanged and the microphone predictions and patches follow.
  torch::manual_seed(6);
  Wav2Pos model;
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor audio = standardised_audio(2, 5);
  const torch::Tensor locs = torch::randn({2, 5, 3});
  const auto out = expect_runs(model, audio, locs);
  const torch::Tensor perm = torch::tensor({0, 3, 1, 4, 2}, torch::kInt64);
  const auto permuted = expect_runs(model, audio.index_select(1, perm), locs.index_select(1, perm));
  EXPECT_LT(
      max_abs(permuted.pred_locs - out.pred_locs.index_select(1, perm)) / max_abs(out.pred_locs),
      1e-4);
  EXPECT_LT(
      max_abs(permuted.pred_audio - out.pred_audio.index_select(1, perm)) / max_abs(out.pred_audio),
      1e-4);
}

TEST(Wav2PosModel, RunsWithEightMicrophones) {
  torch::manual_seed(12);
  Wav2Pos model;
  model->eval();
  torch::NoGradGuard no_grad;
  expect_runs(model, standardised_audio(1, 9), torch::randn({1, 9, 3}));
}

TEST(Wav2PosModel, GivenFeaturesEqualTheInternalNgcc) {
  torch::manual_seed(7);
  Wav2Pos model;
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor audio = standardised_audio(2, 4);
  const torch::Tensor locs = torch::randn({2, 4, 3});
  const torch::Tensor ids = ids_keep_of(MaskPreset::k1a, 2, 4);
  Wav2PosTrace trace;
  const auto a = model->forward(audio, locs, ids, &trace);
  const auto b = model->forward_with_features(audio, locs, ids, trace.ngcc_features);
  EXPECT_TRUE(torch::equal(a.pred_locs, b.pred_locs));
  const TokenLayout layout = make_token_layout(ids, 4);
  EXPECT_TRUE(torch::equal(model->ngcc_features(audio, layout), trace.ngcc_features));
}

// ---- the frozen NGCC and its QUIRK options ----------------------------------------------------

TEST(Wav2PosNgcc, IsFrozenButTheRestLearns) {
  torch::manual_seed(8);
  Wav2Pos model;
  model->train();
  const torch::Tensor audio = standardised_audio(2, 4);
  const torch::Tensor locs = torch::randn({2, 4, 3});
  // Microphone 3's location and microphone 1's audio masked: every mask token is used.
  const auto out =
      model->forward(audio, locs, ids_keep_tensor(explicit_mask({1, 2, 4, 6, 7}, 2, 4)));
  forward_loss(audio, out.pred_audio, out.pred_locs, locs, out.mask).total.backward();
  for (const auto& p : model->named_parameters()) {
    const bool in_ngcc = p.key().rfind("ngcc.", 0) == 0;
    if (in_ngcc) {
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
    } else if (p.key() != "patch_norm.weight" && p.key() != "patch_norm.bias") {
      // patch_norm is registered by the reference but unused (no gradient there either).
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
    }
  }
  // Gradient reaches the embeddings and mask tokens the setup uses.
  EXPECT_GT(max_abs(model->mask_token_mic.grad()), 0.0);
  EXPECT_GT(max_abs(model->patch_embed->proj->weight.grad()), 0.0);
  EXPECT_GT(max_abs(model->loc_mlp->named_parameters()["0.weight"].grad()), 0.0);
}

/// Runs the NGCC part in train mode and says whether its BatchNorm statistics moved.
bool ngcc_statistics_move(Wav2Pos& model) {
  const auto before = model->ngcc->ngcc->backbone->norms()[0]->running_mean.clone();
  const torch::Tensor audio = standardised_audio(2, 3);
  model->ngcc_features(audio, make_token_layout(ids_keep_of(MaskPreset::k1b, 2, 3), 3));
  return !torch::equal(before, model->ngcc->ngcc->backbone->norms()[0]->running_mean);
}

TEST(Wav2PosNgcc, FollowsTrainModeByDefaultAndStaysInEvalWhenFixed) {
  torch::manual_seed(9);
  Wav2Pos quirk;  // QUIRK default: the NGCC follows the parent's mode
  quirk->train();
  EXPECT_TRUE(quirk->ngcc->is_training());
  EXPECT_TRUE(ngcc_statistics_move(quirk));
  quirk->eval();
  EXPECT_FALSE(quirk->ngcc->is_training());

  Wav2PosConfig config;
  config.ngcc_follows_train_mode = false;
  Wav2Pos fixed(config);
  fixed->train();
  EXPECT_TRUE(fixed->is_training());
  EXPECT_FALSE(fixed->ngcc->is_training());
  EXPECT_FALSE(fixed->ngcc->ngcc->mlp->is_training());
  EXPECT_FALSE(ngcc_statistics_move(fixed));
}

TEST(Wav2PosNgcc, MaxTauOptionFixesTheLagCount) {
  Wav2PosConfig config;
  config.ngcc_max_tau = 342;  // the pre-training stage's value instead of the QUIRK 314
  torch::manual_seed(10);
  Wav2Pos model(config);
  model->eval();
  EXPECT_EQ(model->ngcc->ngcc->max_tau(), 342);
  EXPECT_EQ(model->loc_mlp->named_parameters()["0.weight"].sizes(),
            torch::IntArrayRef({512, 2 * 256 + 685}));
  torch::NoGradGuard no_grad;
  const auto out =
      model->forward_with_features(standardised_audio(2, 7), torch::randn({2, 7, 3}),
                                   ids_keep_of(MaskPreset::k1a, 2, 7), fake_features(2, 6, 342));
  EXPECT_EQ(out.pred_locs.sizes(), torch::IntArrayRef({2, 7, 3}));
}

// ---- bad input --------------------------------------------------------------------------------

TEST(Wav2PosModel, RejectsInconsistentInputs) {
  torch::manual_seed(11);
  Wav2Pos model;
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor audio = standardised_audio(2, 7);
  const torch::Tensor locs = torch::randn({2, 7, 3});
  const torch::Tensor ids = ids_keep_of(MaskPreset::k1a, 2, 7);
  const torch::Tensor feats = fake_features(2, 6, 314);
  EXPECT_THROW(model->forward_with_features(audio.slice(2, 0, 1024), locs, ids, feats),
               std::invalid_argument);
  EXPECT_THROW(model->forward_with_features(audio, locs.slice(1, 0, 6), ids, feats),
               std::invalid_argument);
  EXPECT_THROW(model->forward_with_features(audio, locs, ids.slice(0, 0, 1), feats),
               std::invalid_argument);
  EXPECT_THROW(model->forward_with_features(audio, locs, ids, fake_features(2, 5, 314)),
               std::invalid_argument);
  const torch::Tensor keeps_source = torch::tensor({{0, 1, 8, 9}, {0, 1, 8, 9}}, torch::kInt64);
  EXPECT_THROW(model->forward_with_features(audio, locs, keeps_source, feats),
               std::invalid_argument);
}

}  // namespace
}  // namespace w2p::wav2pos
