// The whole simulation against the pyroomacoustics rooms of the golden fixture.
#include "roomsim/kernels/simulate_room.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "roomsim/tests/fixture_rooms.hpp"

namespace w2p::roomsim {
namespace {

using test::FixtureRoom;

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

const std::vector<FixtureRoom>& rooms() {
  static const std::vector<FixtureRoom> all = test::load_fixture_rooms();
  return all;
}

ShoeboxSimulator simulator_for(const FixtureRoom& r, bool exact_summation = false) {
  RirOptions options;
  options.high_pass = r.high_pass;
  options.exact_summation = exact_summation;
  return ShoeboxSimulator(options);
}

TEST(ShoeboxFixture, FixtureHasRoomsOfEveryKind) {
  int anechoic = 0, reverberant = 0, high_pass = 0, other_rate = 0;
  for (const auto& r : rooms()) {
    anechoic += r.kind == "anechoic";
    reverberant += r.kind == "reverberant";
    high_pass += r.high_pass;
    other_rate += r.room.sample_rate != 16000;
  }
  EXPECT_EQ(rooms().size(), 7u);
  EXPECT_EQ(anechoic, 3);
  EXPECT_EQ(reverberant, 4);
  EXPECT_EQ(high_pass, 1);
  EXPECT_EQ(other_rate, 2);
}

TEST(ShoeboxFixture, ImageSourceCountMatchesEveryRoom) {
  for (const auto& r : rooms()) {
    SCOPED_TRACE(r.name);
    EXPECT_EQ(static_cast<std::int64_t>(compute_image_sources(r.room, r.source).size()),
              r.n_image_sources);
  }
}

// RIR lengths equal, samples within 2e-6 of each RIR's peak, for both summations. The exact
// one repeats the reference engine's float operations in the same order; what remains is the
// reference's float32 -> float64 storage in the high-pass room and a few last-bit differences.
// The polyphase one (the default) adds float rounding of its own summation order (printed
// below). 2e-6 is 500 times below the 1e-3 a table-free sinc would cost.
class ShoeboxFixtureSummation : public ::testing::TestWithParam<bool> {};

TEST_P(ShoeboxFixtureSummation, RirsMatchEveryRoom) {
  const bool exact = GetParam();
  for (const auto& r : rooms()) {
    SCOPED_TRACE(r.name);
    const auto rirs = simulator_for(r, exact).compute_rirs(r.room, r.source, r.mics);
    ASSERT_EQ(rirs.size(), r.rirs.size());
    double worst = 0.0;
    for (std::size_t m = 0; m < rirs.size(); ++m) {
      SCOPED_TRACE("microphone " + std::to_string(m));
      ASSERT_EQ(rirs[m].size(), r.rirs[m].size());
      const double peak = max_abs(r.rirs[m]);
      double err = 0.0;
      for (std::size_t t = 0; t < rirs[m].size(); ++t) {
        err = std::max(err, std::abs(rirs[m][t] - r.rirs[m][t]));
      }
      worst = std::max(worst, err / peak);
      EXPECT_LE(err, 2e-6 * peak) << "peak " << peak;
    }
    std::printf("[ measured ] %-12s %s sum: RIR max |error| / peak = %.3g\n", r.name.c_str(),
                exact ? "exact" : "polyphase", worst);
  }
}
INSTANTIATE_TEST_SUITE_P(Summation, ShoeboxFixtureSummation, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Exact" : "Polyphase"; });

// Single-precision FFT convolution against the reference's double convolution stored as
// float32: within 2e-6 of the signal peak (measured values printed), lengths equal.
TEST(ShoeboxFixture, MicSignalsMatchEveryRoom) {
  for (const auto& r : rooms()) {
    SCOPED_TRACE(r.name);
    const MicSignals out =
        simulator_for(r).simulate(r.room, r.source, r.mics, r.signal.data(), r.signal.size());
    ASSERT_EQ(out.channels, static_cast<std::int64_t>(r.mics.size()));
    ASSERT_EQ(out.length, r.mic_length);
    const double peak = max_abs(r.mic_signals);
    double err = 0.0;
    for (std::size_t i = 0; i < out.samples.size(); ++i) {
      err = std::max(err, std::abs(out.samples[i] - r.mic_signals[i]));
    }
    std::printf("[ measured ] %-12s mic signals max |error| / peak = %.3g\n", r.name.c_str(),
                err / peak);
    EXPECT_LE(err, 2e-6 * peak) << "peak " << peak;
  }
}

TEST(ShoeboxSimulator, SignalLengthIsLongestRirPlusSignalRoundedUpToEven) {
  EXPECT_EQ(mic_signal_length({std::vector<float>(10), std::vector<float>(12)}, 5), 16);
  EXPECT_EQ(mic_signal_length({std::vector<float>(11)}, 5), 16);  // 15 -> 16
  EXPECT_EQ(mic_signal_length({std::vector<float>(11)}, 0), 0);
}

TEST(ShoeboxSimulator, ReturnsTheRirsItConvolved) {
  const FixtureRoom& r = rooms().front();
  std::vector<std::vector<float>> rirs;
  const MicSignals out =
      simulator_for(r).simulate(r.room, r.source, r.mics, r.signal.data(), r.signal.size(), &rirs);
  ASSERT_EQ(rirs.size(), r.mics.size());
  EXPECT_EQ(rirs, simulator_for(r).compute_rirs(r.room, r.source, r.mics));
  EXPECT_EQ(out.channel(1), out.samples.data() + out.length);
}

TEST(ShoeboxSimulator, NamesTheMicrophoneOutsideTheRoom) {
  const ShoeboxRoom room = ShoeboxRoom::uniform({5.0, 5.0, 2.0}, 1.0, 0);
  const ShoeboxSimulator sim;
  try {
    sim.compute_rirs(room, {1.0, 1.0, 1.0}, {{1.0, 2.0, 1.0}, {1.0, 2.0, 2.5}});
    ADD_FAILURE() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("microphone 1"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("z = 2.5"));
  }
  RirOptions bad;
  bad.high_pass = true;
  bad.high_pass_cutoff_hz = -1.0;
  EXPECT_THROW(ShoeboxSimulator{bad}, std::invalid_argument);
}

}  // namespace
}  // namespace w2p::roomsim
