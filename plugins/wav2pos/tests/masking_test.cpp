// Masking kernel: the evaluation presets against the reference fixture, the derived index lists,
// validation, and the invariants/statistics of the training strategy "random".
#include "wav2pos/model/masking.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "support/fixture_h5.hpp"
#include "torch_common/tests/reference_fixtures.hpp"

namespace w2p::wav2pos {
namespace {

using ::testing::ElementsAreArray;

constexpr std::int64_t kChannels = 7;
constexpr std::int64_t kBatch = 4;

const test::H5Reader& fixture() {
  static const test::H5Reader file(test::reference_fixture("wav2pos.h5"));
  return file;
}

std::vector<std::int64_t> fixture_ints(const std::string& name) {
  return fixture().read<std::int64_t>(name).values;
}

void expect_plan_matches_fixture(const MaskPlan& plan, const std::string& group) {
  EXPECT_THAT(plan.ids_keep, ElementsAreArray(fixture_ints(group + "/ids_keep")));
  EXPECT_THAT(plan.mask(), ElementsAreArray(fixture().read<float>(group + "/mask").values));
  EXPECT_THAT(plan.non_masked(), ElementsAreArray(fixture_ints(group + "/non_masked")));
  EXPECT_THAT(plan.masked(), ElementsAreArray(fixture_ints(group + "/masked")));
  EXPECT_THAT(plan.ids_keep_audio(), ElementsAreArray(fixture_ints(group + "/ids_keep_audio")));
}

TEST(MaskPreset, Setup1aMatchesReferenceFixture) {
  expect_plan_matches_fixture(preset_mask(MaskPreset::k1a, kBatch, kChannels), "eval_1a");
}

TEST(MaskPreset, Setup1bMatchesReferenceFixture) {
  expect_plan_matches_fixture(preset_mask(MaskPreset::k1b, kBatch, kChannels), "eval_1b");
}

TEST(MaskPreset, Setup2aMasksTheLastMicrophoneLocationAsTheFixture) {
  const MaskPlan plan = preset_mask(MaskPreset::k2a, kBatch, kChannels);
  expect_plan_matches_fixture(plan, "eval_2a");
  EXPECT_EQ(plan.masked()[1], 6);  // token 6 = microphone 6's location
}

TEST(MaskPreset, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(parse_mask_preset("1a"), MaskPreset::k1a);
  EXPECT_EQ(parse_mask_preset("1b"), MaskPreset::k1b);
  EXPECT_EQ(parse_mask_preset("2a"), MaskPreset::k2a);
  EXPECT_THROW(parse_mask_preset("3c"), std::invalid_argument);
}

TEST(MaskPreset, ScalesToOtherMicrophoneCounts) {
  const MaskPlan five = preset_mask(MaskPreset::k1a, 2, 5);
  EXPECT_THAT(five.ids_keep, ElementsAreArray({1, 2, 3, 4, 6, 7, 8, 9, 1, 2, 3, 4, 6, 7, 8, 9}));
  const MaskPlan nine = preset_mask(MaskPreset::k2a, 1, 9);
  EXPECT_EQ(nine.num_kept_locations, 7);
  EXPECT_EQ(nine.num_kept_audio, 9);
  EXPECT_THAT(nine.masked(), ElementsAreArray({0, 8}));
}

TEST(MaskPlan, TrainFixtureMaskDerivesTheReferenceLists) {
  // A mixed batch from the reference's create_mask (one TOA sample, three TDOA samples).
  const MaskPlan plan = make_mask_plan(fixture_ints("train/ids_keep"), kBatch, kChannels);
  EXPECT_EQ(plan.num_kept_locations, 5);
  EXPECT_EQ(plan.num_kept_audio, 6);
  expect_plan_matches_fixture(plan, "train");
}

TEST(MaskPlan, IdsRestoreInvertsKeptThenMaskedOrder) {
  const MaskPlan plan = make_mask_plan(fixture_ints("train/ids_keep"), kBatch, kChannels);
  const auto restore = plan.ids_restore();
  const auto masked = plan.masked();
  for (std::int64_t b = 0; b < kBatch; ++b) {
    std::vector<std::int64_t> shuffled(plan.ids_keep.begin() + b * plan.num_kept(),
                                       plan.ids_keep.begin() + (b + 1) * plan.num_kept());
    shuffled.insert(shuffled.end(), masked.begin() + b * plan.num_masked(),
                    masked.begin() + (b + 1) * plan.num_masked());
    for (std::int64_t t = 0; t < plan.num_tokens(); ++t) {
      EXPECT_EQ(shuffled[static_cast<std::size_t>(
                    restore[static_cast<std::size_t>(b * plan.num_tokens() + t)])],
                t);
    }
  }
}

TEST(MaskPlan, ExplicitListIsSortedAndRepeated) {
  const MaskPlan plan = explicit_mask({13, 1, 8, 2, 9}, 2, kChannels);
  EXPECT_THAT(plan.ids_keep, ElementsAreArray({1, 2, 8, 9, 13, 1, 2, 8, 9, 13}));
  EXPECT_EQ(plan.num_kept_locations, 2);
  EXPECT_EQ(plan.num_kept_audio, 3);
}

TEST(MaskPlan, RejectsInvalidMasks) {
  // Source location kept.
  EXPECT_THROW(explicit_mask({0, 1, 8, 9}, 1, kChannels), std::invalid_argument);
  // Out of range, duplicate, descending.
  EXPECT_THROW(explicit_mask({1, 8, 14}, 1, kChannels), std::invalid_argument);
  EXPECT_THROW(explicit_mask({1, 8, 8, 9}, 1, kChannels), std::invalid_argument);
  EXPECT_THROW(make_mask_plan({1, 9, 8}, 1, kChannels), std::invalid_argument);
  // Fewer than two kept audio tokens.
  EXPECT_THROW(explicit_mask({1, 2, 8}, 1, kChannels), std::invalid_argument);
  // Rows keeping different numbers of location tokens.
  try {
    make_mask_plan({1, 2, 8, 9, 1, 8, 9, 10}, 2, kChannels);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("same number of location tokens"));
  }
  // Rows of unequal length.
  EXPECT_THROW(make_mask_plan({1, 8, 9, 1, 8}, 2, kChannels), std::invalid_argument);
}

// ---- strategy "random" ------------------------------------------------------------------------

struct Counts {
  std::int64_t samples = 0;
  std::int64_t tdoa_samples = 0;  // source audio masked
  std::vector<std::int64_t> masked_mic_audio = std::vector<std::int64_t>(kChannels, 0);
  std::vector<std::int64_t> kept_mic_locations = std::vector<std::int64_t>(kChannels, 0);
  std::int64_t batches_keeping_6 = 0;
  std::int64_t batches = 0;
};

Counts draw_many(const RandomMaskOptions& options, std::int64_t batches, std::uint32_t seed) {
  NumpyLegacyRandom gen(seed);
  Counts counts;
  for (std::int64_t i = 0; i < batches; ++i) {
    const MaskPlan plan = random_mask(options, 8, kChannels, gen);
    ++counts.batches;
    EXPECT_TRUE(plan.num_kept_locations == 5 || plan.num_kept_locations == 6);
    if (plan.num_kept_locations == 6) ++counts.batches_keeping_6;
    EXPECT_EQ(plan.num_kept_audio, kChannels - 1);  // exactly one audio token masked
    const auto mask = plan.mask();
    for (std::int64_t b = 0; b < plan.batch; ++b) {
      const float* row = mask.data() + b * plan.num_tokens();
      ++counts.samples;
      EXPECT_EQ(row[0], 1.0F) << "the source location must always be masked";
      for (std::int64_t m = 1; m < kChannels; ++m) {
        if (row[m] == 0.0F) ++counts.kept_mic_locations[static_cast<std::size_t>(m)];
      }
      if (row[kChannels] == 1.0F) {
        ++counts.tdoa_samples;
      } else {
        for (std::int64_t m = 1; m < kChannels; ++m) {
          if (row[kChannels + m] == 1.0F) ++counts.masked_mic_audio[static_cast<std::size_t>(m)];
        }
      }
    }
  }
  return counts;
}

TEST(RandomMask, InvariantsAndProbabilities) {
  const Counts c = draw_many({}, 2500, 1234);  // 20000 samples
  // TDOA share ~ 1 - toa_prob = 0.5: binomial std 0.0035, bound at ~8 std.
  EXPECT_NEAR(static_cast<double>(c.tdoa_samples) / static_cast<double>(c.samples), 0.5, 0.03);
  // n in {5, 6} once per batch, equally likely: std 0.01.
  EXPECT_NEAR(static_cast<double>(c.batches_keeping_6) / static_cast<double>(c.batches), 0.5, 0.06);
  // Every microphone location is kept with probability (5/6 + 1) / 2 = 11/12.
  for (std::int64_t m = 1; m < kChannels; ++m) {
    EXPECT_NEAR(static_cast<double>(c.kept_mic_locations[static_cast<std::size_t>(m)]) /
                    static_cast<double>(c.samples),
                11.0 / 12.0, 0.02);
  }
  // QUIRK(spec §4.3): in TOA samples only microphones 2..5 lose their audio, evenly.
  const double toa = static_cast<double>(c.samples - c.tdoa_samples);
  EXPECT_EQ(c.masked_mic_audio[1], 0);
  EXPECT_EQ(c.masked_mic_audio[6], 0);
  for (std::int64_t m = 2; m <= 5; ++m) {
    EXPECT_NEAR(static_cast<double>(c.masked_mic_audio[static_cast<std::size_t>(m)]) / toa, 0.25,
                0.03);
  }
}

TEST(RandomMask, AnyMicOptionLetsEveryMicrophoneLoseItsAudio) {
  RandomMaskOptions options;
  options.toa_mask_any_mic = true;
  const Counts c = draw_many(options, 1000, 99);
  const double toa = static_cast<double>(c.samples - c.tdoa_samples);
  for (std::int64_t m = 1; m < kChannels; ++m) {
    EXPECT_NEAR(static_cast<double>(c.masked_mic_audio[static_cast<std::size_t>(m)]) / toa,
                1.0 / 6.0, 0.04);
  }
}

TEST(RandomMask, ReproducesTheReferenceTrainMaskFromItsSeed) {
  // The fixture's train mask is create_mask's output after np.random.seed(train/np_seed).
  const auto seed = fixture_ints("train/np_seed");
  ASSERT_EQ(seed.size(), 1U);
  NumpyLegacyRandom rng(static_cast<std::uint32_t>(seed[0]));
  const MaskPlan plan = random_mask({}, kBatch, kChannels, rng);
  expect_plan_matches_fixture(plan, "train");
}

TEST(RandomMask, ExtremeProbabilitiesAndFixedCounts) {
  NumpyLegacyRandom gen(7);
  RandomMaskOptions options;
  options.toa_prob = 0.0;  // always TDOA: only the source location and audio are masked
  options.min_mic_keep = options.max_mic_keep = 6;
  const MaskPlan tdoa = random_mask(options, 16, kChannels, gen);
  std::vector<std::int64_t> expected;
  for (int b = 0; b < 16; ++b) expected.insert(expected.end(), {0, kChannels});
  EXPECT_THAT(tdoa.masked(), ElementsAreArray(expected));

  options.toa_prob = 1.0;  // always TOA: source audio kept, one microphone audio masked
  options.min_mic_keep = options.max_mic_keep = 4;
  const MaskPlan toa = random_mask(options, 16, kChannels, gen);
  EXPECT_EQ(toa.num_kept_locations, 4);
  const auto audio = toa.ids_keep_audio();
  for (int b = 0; b < 16; ++b) EXPECT_EQ(audio[static_cast<std::size_t>(b * 6)], 0);
}

TEST(RandomMask, IsReproducibleForAFixedSeed) {
  NumpyLegacyRandom a(42);
  NumpyLegacyRandom b(42);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(random_mask({}, 16, kChannels, a).ids_keep,
              random_mask({}, 16, kChannels, b).ids_keep);
  }
}

TEST(RandomMask, RejectsImpossibleOptions) {
  NumpyLegacyRandom gen(1);
  RandomMaskOptions too_many;
  too_many.max_mic_keep = 7;
  EXPECT_THROW(random_mask(too_many, 4, kChannels, gen), std::invalid_argument);
  RandomMaskOptions toa_only;
  toa_only.toa_prob = 1.0;
  toa_only.min_mic_keep = toa_only.max_mic_keep = 2;
  // K = 3: the reference's range 2..K-2 is empty.
  EXPECT_THROW(random_mask(toa_only, 4, 3, gen), std::invalid_argument);
  toa_only.toa_mask_any_mic = true;
  EXPECT_NO_THROW(random_mask(toa_only, 4, 3, gen));
}

TEST(NumpyLegacyRandom, MatchesNumpysPublishedSequences) {
  // Values numpy 1.x prints for np.random.seed(0) followed by the call.
  NumpyLegacyRandom a(0);
  EXPECT_DOUBLE_EQ(a.rand(), 0.5488135039273248);
  NumpyLegacyRandom b(0);
  EXPECT_THAT(b.permutation(10), ElementsAreArray({2, 8, 4, 9, 1, 6, 7, 3, 0, 5}));
  NumpyLegacyRandom c(0);
  std::vector<std::int64_t> ints;
  for (int i = 0; i < 5; ++i) ints.push_back(c.randint(0, 10));
  EXPECT_THAT(ints, ElementsAreArray({5, 0, 3, 3, 7}));
}

TEST(NumpyLegacyRandom, RandintCoversTheRangeWithoutBias) {
  NumpyLegacyRandom gen(3);
  std::vector<int> hist(3, 0);
  for (int i = 0; i < 30000; ++i) ++hist[static_cast<std::size_t>(gen.randint(4, 7) - 4)];
  for (int h : hist) EXPECT_NEAR(h, 10000, 400);  // std ~ 82
  EXPECT_EQ(gen.randint(6, 7), 6);
  EXPECT_THROW(gen.randint(3, 3), std::invalid_argument);
  for (int i = 0; i < 1000; ++i) {
    const double u = gen.rand();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

}  // namespace
}  // namespace w2p::wav2pos
