// Room description, Sabine's formula inverted, and the image-source lattice.
#include "roomsim/kernels/shoebox.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "roomsim/tests/brute_force_ism.hpp"
#include "roomsim/tests/fixture_rooms.hpp"

namespace w2p::roomsim {
namespace {

using ::testing::HasSubstr;

// Expects `fn` to throw std::invalid_argument whose message contains `needle`.
template <typename Fn>
void expect_invalid(Fn fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no exception, expected one mentioning '" << needle << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr(needle));
  }
}

TEST(Shoebox, ValidateRoomRejectsBadValues) {
  ShoeboxRoom ok = ShoeboxRoom::uniform({5.0, 5.0, 2.0}, 0.3, 4);
  EXPECT_NO_THROW(validate_room(ok));

  ShoeboxRoom r = ok;
  r.size[2] = 0.0;
  expect_invalid([&] { validate_room(r); }, "along z");
  r = ok;
  r.size[0] = -1.0;
  expect_invalid([&] { validate_room(r); }, "-1");
  r = ok;
  r.size[1] = NAN;
  expect_invalid([&] { validate_room(r); }, "along y");
  r = ok;
  r.absorption[static_cast<int>(Wall::kCeiling)] = 1.5;
  expect_invalid([&] { validate_room(r); }, "ceiling");
  r = ok;
  r.max_order = -1;
  expect_invalid([&] { validate_room(r); }, "max_order");
  r = ok;
  r.sample_rate = 0;
  expect_invalid([&] { validate_room(r); }, "sample_rate");
  r = ok;
  r.c = 0.0;
  expect_invalid([&] { validate_room(r); }, "speed of sound");
}

TEST(Shoebox, ValidateInsideAcceptsBoundaryAndNamesThePoint) {
  const ShoeboxRoom room = ShoeboxRoom::uniform({5.0, 4.0, 2.0}, 1.0, 0);
  EXPECT_NO_THROW(validate_inside(room, {0.0, 4.0, 2.0}, "microphone 0"));  // on a corner
  expect_invalid([&] { validate_inside(room, {2.0, 4.5, 1.0}, "microphone 3"); }, "microphone 3");
  expect_invalid([&] { validate_inside(room, {2.0, 1.0, -0.1}, "source"); }, "z = -0.1");
  expect_invalid([&] { compute_image_sources(room, {6.0, 1.0, 1.0}); }, "source");
}

// Sabine's formula worked by hand for the wav2pos room: V = 50 m^3, S = 90 m^2.
TEST(Shoebox, InverseSabineByHand) {
  const SabineParameters p = inverse_sabine(0.3, {5.0, 5.0, 2.0});
  EXPECT_NEAR(p.energy_absorption, 24.0 * std::log(10.0) * 50.0 / (343.0 * 90.0 * 0.3), 1e-15);
  // R = min(5*5/sqrt(50), 5*2/sqrt(29), 5*2/sqrt(29)) = 10/sqrt(29).
  EXPECT_EQ(p.max_order, static_cast<int>(std::ceil(343.0 * 0.3 / (10.0 / std::sqrt(29.0)) - 1)));
  EXPECT_EQ(p.max_order, 55);
}

TEST(Shoebox, InverseSabineMatchesEveryReverberantFixtureRoom) {
  int checked = 0;
  for (const auto& r : test::load_fixture_rooms()) {
    SCOPED_TRACE(r.name);
    if (std::isnan(r.t60)) continue;
    const SabineParameters p = inverse_sabine(r.t60, r.room.size, r.room.c);
    // Same formula and operation order as the reference, in double.
    EXPECT_NEAR(p.energy_absorption, r.room.absorption[0], 1e-15);
    EXPECT_EQ(p.max_order, r.room.max_order);
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST(Shoebox, InverseSabineRejectsUnreachableT60AndSaysTheShortest) {
  // Shortest t60 for the wav2pos room: 24 ln(10) 50 / (343 * 90) = 0.0895 s.
  expect_invalid([] { inverse_sabine(0.05, {5.0, 5.0, 2.0}); }, "shortest reachable t60 is 0.0895");
  expect_invalid([] { inverse_sabine(0.0, {5.0, 5.0, 2.0}); }, "t60 must be positive");
  expect_invalid([] { inverse_sabine(0.3, {5.0, 0.0, 2.0}); }, "along y");
  EXPECT_NO_THROW(inverse_sabine(0.09, {5.0, 5.0, 2.0}));
}

TEST(Shoebox, ImageCountFormulaMatchesLatticeEnumeration) {
  for (int order = 0; order <= 12; ++order) {
    std::int64_t brute = 0;
    for (int x = -order; x <= order; ++x)
      for (int y = -order; y <= order; ++y)
        for (int z = -order; z <= order; ++z)
          brute += std::abs(x) + std::abs(y) + std::abs(z) <= order;
    EXPECT_EQ(count_image_sources(order), brute) << "order " << order;
  }
  EXPECT_EQ(count_image_sources(55), 228031);  // the fixture's wav2pos room at T60 0.3
}

// Every image against mirror-by-mirror unfolding, with a different absorption on every wall so
// that a hit counted on the wrong wall shows.
TEST(Shoebox, ImagesMatchSuccessiveMirrorReflections) {
  ShoeboxRoom room = ShoeboxRoom::uniform({4.1, 3.3, 2.6}, 0.0, 7);
  room.absorption = {0.05, 0.2, 0.35, 0.5, 0.65, 0.8};
  const Vec3 source{0.63, 2.15, 1.4};
  const ImageSources images = compute_image_sources(room, source);
  const auto brute = test::brute_force_images(room, source);
  ASSERT_EQ(images.size(), brute.size());
  ASSERT_EQ(static_cast<std::int64_t>(images.size()), count_image_sources(room.max_order));
  for (std::size_t i = 0; i < brute.size(); ++i) {
    SCOPED_TRACE("image " + std::to_string(i));
    const auto& b = brute[i];
    // Float positions (the reference's precision): a few ulp of |position| <= 8 L.
    EXPECT_NEAR(images.x[i], b.position[0], 1e-5);
    EXPECT_NEAR(images.y[i], b.position[1], 1e-5);
    EXPECT_NEAR(images.z[i], b.position[2], 1e-5);
    EXPECT_NEAR(images.attenuation[i], b.attenuation, 1e-6 * b.attenuation + 1e-30);
    int order = 0;
    for (int h : b.hits) order += h;
    EXPECT_EQ(images.order[i], order);
  }
  // The first image is the most negative z corner of the ball, the middle one the source.
  const std::size_t mid = images.size() / 2;
  EXPECT_EQ(images.order[mid], 0);
  EXPECT_FLOAT_EQ(images.x[mid], 0.63f);
  EXPECT_FLOAT_EQ(images.attenuation[mid], 1.0f);
}

TEST(Shoebox, AnechoicRoomHasOnlyTheSource) {
  const ShoeboxRoom room = ShoeboxRoom::uniform({5.0, 5.0, 2.0}, 1.0, 0);
  const ImageSources images = compute_image_sources(room, {1.0, 2.0, 0.5});
  ASSERT_EQ(images.size(), 1u);
  EXPECT_FLOAT_EQ(images.y[0], 2.0f);
  EXPECT_FLOAT_EQ(images.attenuation[0], 1.0f);
}

TEST(Shoebox, FullyAbsorbingWallsSilenceEveryReflection) {
  const ShoeboxRoom room = ShoeboxRoom::uniform({5.0, 5.0, 2.0}, 1.0, 3);
  const ImageSources images = compute_image_sources(room, {1.0, 2.0, 0.5});
  for (std::size_t i = 0; i < images.size(); ++i) {
    EXPECT_EQ(images.attenuation[i], images.order[i] == 0 ? 1.0f : 0.0f) << "image " << i;
  }
}

}  // namespace
}  // namespace w2p::roomsim
