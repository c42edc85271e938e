// The pyroomacoustics reference rooms of the golden fixture (fixtures/pyroomacoustics), loaded
// into kernel types for the parity tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "roomsim/kernels/shoebox.hpp"
#include "support/fixture_h5.hpp"

namespace w2p::roomsim::test {

inline const char* const kPraFixture = "pyroomacoustics/pra_rooms.h5";

/// One room as pyroomacoustics simulated it.
struct FixtureRoom {
  std::string name;
  std::string kind;  // "anechoic" or "reverberant"
  ShoeboxRoom room;
  Vec3 source{};
  std::vector<Vec3> mics;
  std::vector<float> signal;
  std::vector<std::vector<double>> rirs;  // each at its true length
  std::int64_t mic_length = 0;
  std::vector<double> mic_signals;  // [M, mic_length]
  bool high_pass = false;
  std::int64_t n_image_sources = 0;
  double t60 = NAN;
};

inline FixtureRoom load_fixture_room(const w2p::test::H5Reader& h5, const std::string& name) {
  const std::string g = "rooms/" + name;
  FixtureRoom r;
  r.name = name;
  r.kind = h5.attr_string(g, "kind");
  const auto dim = h5.read<double>(g + "/room_dim");
  const auto src = h5.read<double>(g + "/source");
  const auto mics = h5.read<double>(g + "/mics");
  const auto signal = h5.read<double>(g + "/signal");
  const auto rir = h5.read<double>(g + "/rir");
  const auto rir_len = h5.read<std::int64_t>(g + "/rir_length");
  const auto sig = h5.read<double>(g + "/mic_signals");
  r.room = ShoeboxRoom::uniform({dim.values[0], dim.values[1], dim.values[2]},
                                h5.attr_double(g, "e_absorption"),
                                static_cast<int>(h5.attr_double(g, "max_order")),
                                static_cast<int>(h5.attr_double(g, "fs")), h5.attr_double(g, "c"));
  r.source = {src.values[0], src.values[1], src.values[2]};
  const std::int64_t m = mics.shape[0];
  for (std::int64_t i = 0; i < m; ++i) {
    r.mics.push_back({mics.values[i * 3], mics.values[i * 3 + 1], mics.values[i * 3 + 2]});
  }
  r.signal.assign(signal.values.begin(), signal.values.end());  // float32-representable values
  const std::int64_t lmax = rir.shape[1];
  for (std::int64_t i = 0; i < m; ++i) {
    const auto begin = rir.values.begin() + i * lmax;
    r.rirs.emplace_back(begin, begin + rir_len.values[i]);
  }
  r.mic_length = sig.shape[1];
  r.mic_signals = sig.values;
  r.high_pass = h5.attr_double(g, "rir_hpf") != 0.0;
  r.n_image_sources = static_cast<std::int64_t>(h5.attr_double(g, "n_image_sources"));
  r.t60 = h5.attr_double(g, "t60");
  return r;
}

/// Every room of the fixture, in HDF5 (alphabetical) order.
inline std::vector<FixtureRoom> load_fixture_rooms() {
  const w2p::test::H5Reader h5(w2p::test::fixture_path(kPraFixture));
  std::vector<FixtureRoom> rooms;
  for (const auto& name : h5.list("rooms")) rooms.push_back(load_fixture_room(h5, name));
  return rooms;
}

}  // namespace w2p::roomsim::test
