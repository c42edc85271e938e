// The built w2p-roomsim command: the pyroomacoustics fixture rooms through the HDF5 input, a
// YAML room list with WAV signals, thread-count independence and bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "support/fixture_h5.hpp"
#include "support/process.hpp"

namespace {

using w2p::test::H5Reader;
using w2p::test::run_command;
using w2p::test::ScratchDir;
using w2p::test::shell_quote;

const char* const kPraFixture = "pyroomacoustics/pra_rooms.h5";

// The kernel fixture test's tolerance (plugins/roomsim/tests/simulate_room_test.cpp): RIR
// lengths equal and samples within 2e-6 of each RIR's peak; microphone signals of equal length
// within 2e-6 of the signal peak.
constexpr double kRelTolerance = 2e-6;

w2p::test::CommandResult roomsim(const std::string& args) {
  return run_command(shell_quote(W2P_ROOMSIM_EXE) + " " + args + " 2>&1");
}

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

/// Room `name` of `got` against room `ref_name` of `ref` (the fixture).
void expect_room_matches(const H5Reader& ref, const std::string& ref_name, const H5Reader& got,
                         const std::string& name) {
  SCOPED_TRACE("room " + name);
  const std::string r = "rooms/" + ref_name, g = "rooms/" + name;
  const auto ref_len = ref.read<std::int64_t>(r + "/rir_length");
  const auto got_len = got.read<std::int64_t>(g + "/rir_length");
  ASSERT_EQ(got_len.values, ref_len.values);
  const auto ref_rir = ref.read<double>(r + "/rir");
  const auto got_rir = got.read<double>(g + "/rir");
  ASSERT_EQ(got_rir.shape.size(), 2u);
  ASSERT_EQ(got_rir.shape[0], ref_rir.shape[0]);
  double worst = 0.0;
  for (std::int64_t m = 0; m < ref_rir.shape[0]; ++m) {
    const std::int64_t n = ref_len.values[static_cast<std::size_t>(m)];
    double peak = 0.0, err = 0.0;
    for (std::int64_t t = 0; t < n; ++t) {
      const double want = ref_rir.values[static_cast<std::size_t>(m * ref_rir.shape[1] + t)];
      const double have = got_rir.values[static_cast<std::size_t>(m * got_rir.shape[1] + t)];
      peak = std::max(peak, std::abs(want));
      err = std::max(err, std::abs(have - want));
    }
    EXPECT_LE(err, kRelTolerance * peak) << "microphone " << m << ", peak " << peak;
    worst = std::max(worst, err / peak);
  }
  const auto ref_sig = ref.read<double>(r + "/mic_signals");
  const auto got_sig = got.read<double>(g + "/mic_signals");
  ASSERT_EQ(got_sig.shape, ref_sig.shape);
  EXPECT_EQ(got.element_type(g + "/mic_signals"), std::make_pair('f', std::size_t{4}));
  const double peak = max_abs(ref_sig.values);
  double err = 0.0;
  for (std::size_t i = 0; i < ref_sig.values.size(); ++i) {
    err = std::max(err, std::abs(got_sig.values[i] - ref_sig.values[i]));
  }
  EXPECT_LE(err, kRelTolerance * peak) << "peak " << peak;
  std::printf("[ measured ] %-12s RIR max |error| / peak = %.3g, mic signals %.3g\n", name.c_str(),
              worst, err / peak);
  EXPECT_EQ(got.attr_double(g, "fs"), ref.attr_double(r, "fs"));
  EXPECT_EQ(got.attr_double(g, "max_order"), ref.attr_double(r, "max_order"));
  EXPECT_NEAR(got.attr_double(g, "e_absorption"), ref.attr_double(r, "e_absorption"), 1e-12);
  EXPECT_EQ(got.attr_double(g, "n_image_sources"), ref.attr_double(r, "n_image_sources"));
}

TEST(W2pRoomsim, SimulatesEveryFixtureRoomAsPyroomacoustics) {
  const ScratchDir dir;
  const std::string fixture = w2p::test::fixture_path(kPraFixture);
  const std::string out = (dir.path() / "sim.h5").string();
  const auto run =
      roomsim("--in " + shell_quote(fixture) + " --out " + shell_quote(out) + " --threads 2");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp"));
  const H5Reader ref(fixture), got(out);
  const auto names = ref.list("rooms");
  ASSERT_EQ(names.size(), 7u);
  EXPECT_EQ(got.list("rooms"), names);
  for (const auto& name : names) expect_room_matches(ref, name, got, name);
}

TEST(W2pRoomsim, ResultsDoNotDependOnTheThreadCount) {
  const ScratchDir dir;
  const std::string fixture = w2p::test::fixture_path(kPraFixture);
  const std::string one = (dir.path() / "one.h5").string(), two = (dir.path() / "two.h5").string();
  ASSERT_EQ(
      roomsim("--quiet --threads 1 --in " + shell_quote(fixture) + " --out " + shell_quote(one))
          .exit_code,
      0);
  ASSERT_EQ(
      roomsim("--quiet --threads 2 --in " + shell_quote(fixture) + " --out " + shell_quote(two))
          .exit_code,
      0);
  const H5Reader a(one), b(two);
  for (const auto& name : a.list("rooms")) {
    SCOPED_TRACE(name);
    EXPECT_EQ(a.read<float>("rooms/" + name + "/mic_signals").values,
              b.read<float>("rooms/" + name + "/mic_signals").values);
    EXPECT_EQ(a.read<double>("rooms/" + name + "/rir").values,
              b.read<double>("rooms/" + name + "/rir").values);
  }
}

void write_wav(const std::string& path, const std::vector<double>& samples, int rate) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;  // the fixture's float32 values, exactly
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
  std::vector<float> data(samples.begin(), samples.end());
  EXPECT_EQ(sf_writef_float(f, data.data(), static_cast<sf_count_t>(data.size())),
            static_cast<sf_count_t>(data.size()));
  sf_close(f);
}

std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string list3(const double* v) {
  return "[" + num(v[0]) + ", " + num(v[1]) + ", " + num(v[2]) + "]";
}

/// A YAML room entry for fixture room `name`, its signal written to `wav`; `absorption`
/// chooses absorption + max_order over t60.
std::string yaml_room(const H5Reader& ref, const std::string& name, const std::string& wav,
                      bool absorption) {
  const std::string g = "rooms/" + name;
  const auto fs = static_cast<int>(ref.attr_double(g, "fs"));
  write_wav(wav, ref.read<double>(g + "/signal").values, fs);
  const auto dim = ref.read<double>(g + "/room_dim").values;
  const auto src = ref.read<double>(g + "/source").values;
  const auto mics = ref.read<double>(g + "/mics");
  std::string y = "  - name: yaml_" + name + "\n";
  y += "    room_dim: " + list3(dim.data()) + "\n";
  y += "    source: " + list3(src.data()) + "\n";
  y += "    mics:\n";
  for (std::int64_t m = 0; m < mics.shape[0]; ++m) {
    y += "      - " + list3(mics.values.data() + m * 3) + "\n";
  }
  y += "    fs: " + std::to_string(fs) + "\n";
  y += "    c: " + num(ref.attr_double(g, "c")) + "\n";
  if (absorption) {
    y += "    absorption: " + num(ref.attr_double(g, "e_absorption")) + "\n";
    y += "    max_order: " + num(ref.attr_double(g, "max_order")) + "\n";
  } else {
    y += "    t60: " + num(ref.attr_double(g, "t60")) + "\n";
  }
  y +=
      "    rir_hpf: " + std::string(ref.attr_double(g, "rir_hpf") != 0.0 ? "true" : "false") + "\n";
  y += "    signal: " + std::filesystem::path(wav).filename().string() + "\n";
  return y;
}

TEST(W2pRoomsim, SimulatesAYamlRoomListWithWavSignals) {
  const ScratchDir dir;
  const std::string fixture = w2p::test::fixture_path(kPraFixture);
  const H5Reader ref(fixture);
  // Every fixture room: the anechoic ones by absorption and order, the reverberant ones by T60
  // (inverse Sabine must give the fixture's absorption and order).
  std::string yaml = "rooms:\n";
  std::vector<std::string> names;
  for (const auto& name : ref.list("rooms")) {
    const bool by_t60 = std::isfinite(ref.attr_double("rooms/" + name, "t60"));
    yaml += yaml_room(ref, name, (dir.path() / (name + ".wav")).string(), !by_t60);
    names.push_back(name);
  }
  const auto list = dir.write("rooms.yaml", yaml);
  const std::string out = (dir.path() / "sim.h5").string();
  const auto run =
      roomsim("--threads 2 --in " + shell_quote(list.string()) + " --out " + shell_quote(out));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, ::testing::HasSubstr("7 rooms"));
  const H5Reader got(out);
  for (const auto& name : names) expect_room_matches(ref, name, got, "yaml_" + name);
}

TEST(W2pRoomsim, MissingInputFileIsAnInputError) {
  const ScratchDir dir;
  const std::string missing = (dir.path() / "nope.h5").string();
  const std::string out = (dir.path() / "sim.h5").string();
  const auto run = roomsim("--in " + shell_quote(missing) + " --out " + shell_quote(out));
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, ::testing::HasSubstr(missing));
  EXPECT_THAT(run.output, ::testing::HasSubstr("no such file"));
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(W2pRoomsim, RoomWithoutMicsIsAnInputError) {
  const ScratchDir dir;
  write_wav((dir.path() / "s.wav").string(), std::vector<double>(100, 0.1), 16000);
  const auto list = dir.write("rooms.yaml",
                              "rooms:\n"
                              "  - name: lonely\n"
                              "    room_dim: [5, 5, 2]\n"
                              "    source: [1, 1, 1]\n"
                              "    t60: 0.3\n"
                              "    signal: s.wav\n");
  const std::string out = (dir.path() / "sim.h5").string();
  const auto run = roomsim("--in " + shell_quote(list.string()) + " --out " + shell_quote(out));
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, ::testing::HasSubstr("room 'lonely'"));
  EXPECT_THAT(run.output, ::testing::HasSubstr("missing 'mics'"));
  EXPECT_THAT(run.output, ::testing::HasSubstr("rooms.yaml:2"));
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp"));
}

TEST(W2pRoomsim, InvalidRoomsAndArgumentsAreInputErrors) {
  const ScratchDir dir;
  write_wav((dir.path() / "s.wav").string(), std::vector<double>(100, 0.1), 16000);
  const std::string room =
      "  - name: r\n"
      "    room_dim: [5, 5, 2]\n"
      "    mics: [[1, 1, 0]]\n"
      "    signal: s.wav\n";
  const std::string out = (dir.path() / "sim.h5").string();
  const auto check = [&](const std::string& extra, const std::string& expected) {
    SCOPED_TRACE(extra);
    const auto list = dir.write("rooms.yaml", "rooms:\n" + room + extra);
    const auto run = roomsim("--in " + shell_quote(list.string()) + " --out " + shell_quote(out));
    EXPECT_EQ(run.exit_code, 2) << run.output;
    EXPECT_THAT(run.output, ::testing::HasSubstr(expected));
    EXPECT_FALSE(std::filesystem::exists(out));
  };
  check("    source: [1, 1, 2.5]\n    t60: 0.3\n", "source");
  check("    source: [1, 1, 1]\n    t60: 0.01\n", "t60");
  check("    source: [1, 1, 1]\n    t60: 0.3\n    fs: 8000\n", "16000 Hz");
  check("    source: [1, 1, 1]\n    absorption: 0.5\n", "max_order");
  check("    source: [1, 1, 1]\n", "either t60 or absorption");
  // Command line.
  EXPECT_EQ(roomsim("--in x.yaml").exit_code, 2);
  EXPECT_EQ(roomsim("--in x.yaml --out y.h5 --threads zero").exit_code, 2);
  EXPECT_EQ(roomsim("--bogus").exit_code, 2);
  EXPECT_EQ(roomsim("--help").exit_code, 0);
}

}  // namespace
