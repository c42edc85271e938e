// w2p-roomsim: simulates shoebox rooms with the roomsim kernel, without writing a pipeline.
//
//   w2p-roomsim --in ROOMS --out SIM.h5 [--threads N] [--quiet]
//
// ROOMS is either an HDF5 file in the layout of the pyroomacoustics fixture (rooms/<name>/ with
// room_dim, source, mics, signal and the attributes fs, c, e_absorption, max_order, rir_hpf,
// optional t60; other datasets are ignored) or a YAML/JSON room list (see kUsage). SIM.h5 gets
// the same layout with the simulated rir, rir_length and mic_signals; it is written to
// SIM.h5.tmp and renamed when complete.
//
// Exit status: 0 ok, 1 runtime error (simulation, writing the output), 2 bad command line or
// bad input (missing or unreadable file, a room missing a field or with invalid values).
#include <hdf5.h>
#include <sndfile.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "roomsim/kernels/shoebox.hpp"
#include "roomsim/kernels/simulate_room.hpp"

namespace w2p::roomsim {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitInput = 2;

constexpr const char* kUsage =
    "usage: w2p-roomsim --in ROOMS --out SIM.h5 [--threads N] [--exact-summation] [--quiet]\n"
    "\n"
    "Simulates shoebox rooms (image-source method, as pyroomacoustics) and writes, per room,\n"
    "rooms/<name>/{room_dim, source, mics, signal, rir (M, Lmax) zero-padded, rir_length (M),\n"
    "mic_signals (M, L) float32} with the attributes fs, c, e_absorption, max_order, rir_hpf,\n"
    "t60, kind, global_delay_samples, n_image_sources.\n"
    "\n"
    "  --in ROOMS    HDF5 file in the same layout (rooms/<name>/ with room_dim, source, mics,\n"
    "                signal and attributes fs, c, e_absorption, max_order, rir_hpf, optional\n"
    "                t60; other datasets ignored), or a YAML/JSON room list:\n"
    "                  rooms:\n"
    "                    - name: r0\n"
    "                      room_dim: [5, 5, 2]\n"
    "                      source: [1.0, 2.0, 1.0]\n"
    "                      mics: [[1, 1, 0], [2, 2, 2]]\n"
    "                      fs: 16000            # optional: the signal's rate\n"
    "                      c: 343               # optional\n"
    "                      t60: 0.3             # or: absorption: 1.0 (or 6 walls) + max_order\n"
    "                      rir_hpf: false       # optional 10 Hz high-pass of the RIRs\n"
    "                      signal: speech.wav   # mono WAV/FLAC, relative to the list's folder\n"
    "  --out SIM.h5  output file (written to SIM.h5.tmp, then renamed)\n"
    "  --threads N   rooms simulated in parallel (default: all cores)\n"
    "  --exact-summation  add the images' fractional delays one by one in pyroomacoustics'\n"
    "                order (bit-identical, ~3x slower) instead of the polyphase grid (equal to\n"
    "                float rounding)\n"
    "  --quiet       no summary on stderr\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error, 2 bad arguments or input.\n";

/// Bad input: reported with exit status 2.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One room to simulate.
struct RoomSpec {
  std::string name;
  ShoeboxRoom room;
  Vec3 source{};
  std::vector<Vec3> mics;
  std::vector<float> signal;
  bool high_pass = false;
  double t60 = NAN;
};

struct RoomResult {
  std::vector<std::vector<float>> rirs;
  MicSignals mic_signals;
};

// ---- HDF5 helpers --------------------------------------------------------------------------

/// Closes an HDF5 id with the given function when it goes out of scope.
class H5Id {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Id(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~H5Id() {
    if (id_ >= 0) closer_(id_);
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  Closer closer_;
};

/// Turns HDF5's automatic error printing off for the life of the process (errors are reported
/// by this program with file and object names).
void silence_hdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

bool is_hdf5_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, sizeof(magic));
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  return in.gcount() == 8 && std::equal(magic, magic + 8, kSignature);
}

/// A numeric dataset read as double, with its shape.
struct H5Array {
  std::vector<hsize_t> shape;
  std::vector<double> values;
};

std::optional<H5Array> read_dataset(hid_t group, const std::string& name,
                                    const std::string& where) {
  if (H5Lexists(group, name.c_str(), H5P_DEFAULT) <= 0) return std::nullopt;
  const H5Id d(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.ok()) throw InputError(where + ": '" + name + "' is not a dataset");
  const H5Id space(H5Dget_space(d.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) throw InputError(where + ": cannot read the shape of '" + name + "'");
  H5Array a;
  a.shape.resize(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), a.shape.data(), nullptr);
  hsize_t n = 1;
  for (hsize_t s : a.shape) n *= s;
  a.values.resize(static_cast<std::size_t>(n));
  if (n > 0 &&
      H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.values.data()) < 0) {
    throw InputError(where + ": '" + name + "' is not a numeric dataset");
  }
  return a;
}

/// A numeric (or boolean enum) attribute as doubles; nullopt when absent.
std::optional<std::vector<double>> read_attribute(hid_t object, const char* name,
                                                  const std::string& where) {
  if (H5Aexists(object, name) <= 0) return std::nullopt;
  const H5Id a(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  const H5Id space(H5Aget_space(a.get()), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n <= 0) throw InputError(where + ": attribute '" + name + "' is empty");
  std::vector<double> values(static_cast<std::size_t>(n));
  const H5Id type(H5Aget_type(a.get()), H5Tclose);
  if (H5Tget_class(type.get()) == H5T_ENUM) {  // h5py's booleans
    std::vector<std::int8_t> raw(static_cast<std::size_t>(n));
    const H5Id native(H5Tenum_create(H5T_NATIVE_INT8), H5Tclose);
    std::int8_t v = 0;
    H5Tenum_insert(native.get(), "FALSE", &v);
    v = 1;
    H5Tenum_insert(native.get(), "TRUE", &v);
    if (H5Aread(a.get(), native.get(), raw.data()) < 0) {
      throw InputError(where + ": attribute '" + name + "' is not numeric or boolean");
    }
    std::copy(raw.begin(), raw.end(), values.begin());
  } else if (H5Aread(a.get(), H5T_NATIVE_DOUBLE, values.data()) < 0) {
    throw InputError(where + ": attribute '" + name + "' is not numeric");
  }
  return values;
}

double scalar_attribute(hid_t object, const char* name, const std::string& where) {
  const auto v = read_attribute(object, name, where);
  if (!v) throw InputError(where + ": missing attribute '" + std::string(name) + "'");
  if (v->size() != 1) {
    throw InputError(where + ": attribute '" + std::string(name) + "' must be a scalar");
  }
  return v->front();
}

Vec3 to_vec3(const H5Array& a, const std::string& what, const std::string& where) {
  if (a.values.size() != 3) {
    throw InputError(where + ": '" + what + "' must hold 3 values (x, y, z), got " +
                     std::to_string(a.values.size()));
  }
  return {a.values[0], a.values[1], a.values[2]};
}

int to_int(double v, const std::string& what, const std::string& where) {
  if (!std::isfinite(v) || v != std::floor(v) || std::abs(v) > 1e9) {
    throw InputError(where + ": '" + what + "' must be an integer, got " + std::to_string(v));
  }
  return static_cast<int>(v);
}

/// Absorption and order from explicit values, or from t60 by inverse Sabine.
void set_absorption(RoomSpec& spec, const std::optional<std::vector<double>>& absorption,
                    std::optional<int> max_order, const std::string& where) {
  ShoeboxRoom& room = spec.room;
  if (absorption) {
    if (absorption->size() == 1) {
      room.absorption.fill(absorption->front());
    } else if (absorption->size() == static_cast<std::size_t>(kNumWalls)) {
      std::copy(absorption->begin(), absorption->end(), room.absorption.begin());
    } else {
      throw InputError(where +
                       ": absorption must be one value or 6 (west, east, south, north, "
                       "floor, ceiling), got " +
                       std::to_string(absorption->size()));
    }
    if (!max_order) throw InputError(where + ": absorption given without max_order");
    room.max_order = *max_order;
    return;
  }
  if (std::isnan(spec.t60)) {
    throw InputError(where + ": expected either t60 or absorption and max_order");
  }
  try {
    const SabineParameters p = inverse_sabine(spec.t60, room.size, room.c);
    room.absorption.fill(p.energy_absorption);
    room.max_order = max_order ? *max_order : p.max_order;
  } catch (const std::invalid_argument& e) {
    throw InputError(where + ": " + e.what());
  }
}

/// Checks room, source and microphones now, so that bad input fails before any simulation.
void validate_spec(const RoomSpec& spec, const std::string& where) {
  try {
    validate_room(spec.room);
    validate_inside(spec.room, spec.source, "source");
    for (std::size_t m = 0; m < spec.mics.size(); ++m) {
      const std::string what = "microphone " + std::to_string(m);
      validate_inside(spec.room, spec.mics[m], what.c_str());
    }
  } catch (const std::invalid_argument& e) {
    throw InputError(where + ": " + e.what());
  }
  if (spec.mics.empty()) throw InputError(where + ": 'mics' holds no microphone");
  if (spec.signal.empty()) throw InputError(where + ": 'signal' is empty");
  for (float v : spec.signal) {
    if (!std::isfinite(v)) throw InputError(where + ": 'signal' holds NaN or Inf");
  }
}

std::vector<RoomSpec> read_hdf5_rooms(const std::string& path) {
  const H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) throw InputError(path + ": cannot open as HDF5");
  if (H5Lexists(file.get(), "rooms", H5P_DEFAULT) <= 0) {
    throw InputError(path + ": expected a group 'rooms' (rooms/<name>/...)");
  }
  const H5Id rooms(H5Gopen2(file.get(), "rooms", H5P_DEFAULT), H5Gclose);
  if (!rooms.ok()) throw InputError(path + ": 'rooms' is not a group");
  H5G_info_t info{};
  H5Gget_info(rooms.get(), &info);
  std::vector<RoomSpec> out;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(rooms.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr,
                                           0, H5P_DEFAULT);
    std::string name(static_cast<std::size_t>(std::max<ssize_t>(len, 0)), '\0');
    H5Lget_name_by_idx(rooms.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(),
                       name.size() + 1, H5P_DEFAULT);
    const std::string where = path + ": room '" + name + "'";
    const H5Id g(H5Gopen2(rooms.get(), name.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.ok()) throw InputError(where + ": expected a group rooms/" + name);
    auto required = [&](const char* what) {
      auto a = read_dataset(g.get(), what, where);
      if (!a) throw InputError(where + ": missing dataset '" + std::string(what) + "'");
      return *a;
    };
    RoomSpec spec;
    spec.name = name;
    spec.room.size = to_vec3(required("room_dim"), "room_dim", where);
    spec.source = to_vec3(required("source"), "source", where);
    const H5Array mics = required("mics");
    if (mics.shape.size() != 2 || mics.shape[1] != 3) {
      throw InputError(where + ": 'mics' must have shape (M, 3)");
    }
    for (std::size_t m = 0; m < mics.shape[0]; ++m) {
      spec.mics.push_back({mics.values[m * 3], mics.values[m * 3 + 1], mics.values[m * 3 + 2]});
    }
    const H5Array signal = required("signal");
    if (signal.shape.size() != 1) throw InputError(where + ": 'signal' must be 1-D");
    spec.signal.assign(signal.values.begin(), signal.values.end());
    spec.room.sample_rate = to_int(scalar_attribute(g.get(), "fs", where), "fs", where);
    if (const auto c = read_attribute(g.get(), "c", where)) spec.room.c = c->front();
    if (const auto t60 = read_attribute(g.get(), "t60", where)) spec.t60 = t60->front();
    if (const auto hpf = read_attribute(g.get(), "rir_hpf", where)) {
      spec.high_pass = hpf->front() != 0.0;
    }
    std::optional<int> max_order;
    if (const auto order = read_attribute(g.get(), "max_order", where)) {
      max_order = to_int(order->front(), "max_order", where);
    }
    set_absorption(spec, read_attribute(g.get(), "e_absorption", where), max_order, where);
    validate_spec(spec, where);
    out.push_back(std::move(spec));
  }
  if (out.empty()) throw InputError(path + ": no room under 'rooms'");
  return out;
}

// ---- YAML / JSON room list -----------------------------------------------------------------

std::string at(const std::string& path, const YAML::Node& node) {
  return path + ":" + std::to_string(node.Mark().line + 1);
}

double yaml_number(const YAML::Node& node, const std::string& what, const std::string& where) {
  try {
    return node.as<double>();
  } catch (const YAML::Exception&) {
    throw InputError(where + ": '" + what + "' must be a number");
  }
}

Vec3 yaml_vec3(const YAML::Node& node, const std::string& what, const std::string& where) {
  if (!node.IsSequence() || node.size() != 3) {
    throw InputError(where + ": '" + what + "' must be a list [x, y, z]");
  }
  return {yaml_number(node[0], what, where), yaml_number(node[1], what, where),
          yaml_number(node[2], what, where)};
}

/// A mono WAV/FLAC file as float samples; its sample rate in `rate`.
std::vector<float> read_audio(const std::string& path, int* rate, const std::string& where) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (f == nullptr) {
    throw InputError(where + ": cannot read signal '" + path + "': " + sf_strerror(nullptr));
  }
  std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> file(f, sf_close);
  if (info.channels != 1) {
    throw InputError(where + ": signal '" + path + "' has " + std::to_string(info.channels) +
                     " channels, expected a mono file");
  }
  std::vector<float> samples(static_cast<std::size_t>(info.frames));
  const sf_count_t got = sf_readf_float(f, samples.data(), info.frames);
  if (got != info.frames) {
    throw InputError(where + ": signal '" + path + "': read " + std::to_string(got) + " of " +
                     std::to_string(info.frames) + " samples");
  }
  *rate = info.samplerate;
  return samples;
}

RoomSpec yaml_room(const YAML::Node& node, std::size_t index, const std::string& path) {
  std::string where = at(path, node) + ": room " + std::to_string(index);
  if (!node.IsMap()) throw InputError(where + ": expected a map (name, room_dim, ...)");
  static const std::set<std::string> kKeys = {"name",    "room_dim",   "source",   "mics",
                                              "fs",      "c",          "t60",      "signal",
                                              "rir_hpf", "absorption", "max_order"};
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (kKeys.count(key) == 0) {
      throw InputError(where + ": unknown key '" + key +
                       "' (expected name, room_dim, source, mics, fs, c, t60 or absorption and "
                       "max_order, rir_hpf, signal)");
    }
  }
  RoomSpec spec;
  if (!node["name"]) throw InputError(where + ": missing 'name'");
  spec.name = node["name"].as<std::string>();
  if (spec.name.empty() || spec.name.find('/') != std::string::npos || spec.name == "." ||
      spec.name == "..") {
    throw InputError(where + ": name '" + spec.name + "' is not a valid HDF5 group name");
  }
  where = at(path, node) + ": room '" + spec.name + "'";
  auto required = [&](const char* key) {
    const YAML::Node v = node[key];
    if (!v) throw InputError(where + ": missing '" + std::string(key) + "'");
    return v;
  };
  spec.room.size = yaml_vec3(required("room_dim"), "room_dim", where);
  spec.source = yaml_vec3(required("source"), "source", where);
  const YAML::Node mics = required("mics");
  if (!mics.IsSequence()) throw InputError(where + ": 'mics' must be a list of [x, y, z]");
  for (std::size_t m = 0; m < mics.size(); ++m) {
    spec.mics.push_back(yaml_vec3(mics[m], "mics[" + std::to_string(m) + "]", where));
  }
  if (node["c"]) spec.room.c = yaml_number(node["c"], "c", where);
  if (node["t60"]) spec.t60 = yaml_number(node["t60"], "t60", where);
  if (node["rir_hpf"]) {
    try {
      spec.high_pass = node["rir_hpf"].as<bool>();
    } catch (const YAML::Exception&) {
      throw InputError(where + ": 'rir_hpf' must be true or false");
    }
  }
  std::optional<std::vector<double>> absorption;
  if (const YAML::Node a = node["absorption"]) {
    absorption.emplace();
    if (a.IsSequence()) {
      for (const auto& v : a) absorption->push_back(yaml_number(v, "absorption", where));
    } else {
      absorption->push_back(yaml_number(a, "absorption", where));
    }
    if (node["t60"]) throw InputError(where + ": give either t60 or absorption, not both");
  }
  std::optional<int> max_order;
  if (node["max_order"]) {
    max_order = to_int(yaml_number(node["max_order"], "max_order", where), "max_order", where);
  }
  // The signal: relative paths from the list's folder.
  const YAML::Node signal = required("signal");
  if (!signal.IsScalar()) throw InputError(where + ": 'signal' must be a WAV/FLAC file path");
  std::filesystem::path audio = signal.as<std::string>();
  if (audio.is_relative()) audio = std::filesystem::path(path).parent_path() / audio;
  int rate = 0;
  spec.signal = read_audio(audio.string(), &rate, where);
  if (node["fs"]) {
    spec.room.sample_rate = to_int(yaml_number(node["fs"], "fs", where), "fs", where);
    if (spec.room.sample_rate != rate) {
      throw InputError(where + ": fs is " + std::to_string(spec.room.sample_rate) +
                       " Hz but signal '" + audio.string() + "' is at " + std::to_string(rate) +
                       " Hz");
    }
  } else {
    spec.room.sample_rate = rate;
  }
  set_absorption(spec, absorption, max_order, where);
  validate_spec(spec, where);
  return spec;
}

std::vector<RoomSpec> read_yaml_rooms(const std::string& path) {
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw InputError(path + ": cannot open");
  } catch (const YAML::Exception& e) {
    throw InputError(path + ": not a valid YAML/JSON room list: " + e.what());
  }
  const YAML::Node list = doc.IsMap() ? doc["rooms"] : doc;
  if (!list || !list.IsSequence() || list.size() == 0) {
    throw InputError(path + ": expected a list of rooms (a sequence, or a map with 'rooms:')");
  }
  std::vector<RoomSpec> out;
  for (std::size_t i = 0; i < list.size(); ++i) out.push_back(yaml_room(list[i], i, path));
  return out;
}

std::vector<RoomSpec> read_rooms(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw InputError(path + ": no such file");
  }
  std::vector<RoomSpec> rooms = is_hdf5_file(path) ? read_hdf5_rooms(path) : read_yaml_rooms(path);
  std::set<std::string> names;
  for (const auto& r : rooms) {
    if (!names.insert(r.name).second) {
      throw InputError(path + ": room name '" + r.name + "' appears twice");
    }
  }
  return rooms;
}

// ---- output --------------------------------------------------------------------------------

void write_dataset(hid_t group, const char* name, hid_t file_type, hid_t mem_type,
                   const std::vector<hsize_t>& shape, const void* data, const std::string& where) {
  const H5Id space(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr),
                   H5Sclose);
  const H5Id d(
      H5Dcreate2(group, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      H5Dclose);
  if (!d.ok() || H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    throw std::runtime_error(where + ": cannot write dataset '" + name + "'");
  }
}

template <typename T>
void write_attr(hid_t object, const char* name, hid_t file_type, hid_t mem_type, const T& value,
                const std::string& where) {
  const H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  const H5Id a(H5Acreate2(object, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
               H5Aclose);
  if (!a.ok() || H5Awrite(a.get(), mem_type, &value) < 0) {
    throw std::runtime_error(where + ": cannot write attribute '" + name + "'");
  }
}

void write_string_attr(hid_t object, const char* name, const std::string& value,
                       const std::string& where) {
  const H5Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const char* p = value.c_str();
  write_attr(object, name, type.get(), type.get(), p, where);
}

void write_room(hid_t rooms, const RoomSpec& spec, const RoomResult& result,
                const std::string& out_path) {
  const std::string where = out_path + ": room '" + spec.name + "'";
  const H5Id g(H5Gcreate2(rooms, spec.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
               H5Gclose);
  if (!g.ok()) throw std::runtime_error(where + ": cannot create the group");
  const hid_t f64 = H5T_IEEE_F64LE, f32 = H5T_IEEE_F32LE, i64 = H5T_STD_I64LE;
  write_dataset(g.get(), "room_dim", f64, H5T_NATIVE_DOUBLE, {3}, spec.room.size.data(), where);
  write_dataset(g.get(), "source", f64, H5T_NATIVE_DOUBLE, {3}, spec.source.data(), where);
  const hsize_t m = spec.mics.size();
  write_dataset(g.get(), "mics", f64, H5T_NATIVE_DOUBLE, {m, 3}, spec.mics.data(), where);
  write_dataset(g.get(), "signal", f32, H5T_NATIVE_FLOAT, {spec.signal.size()}, spec.signal.data(),
                where);
  std::size_t lmax = 0;
  std::vector<std::int64_t> lengths;
  for (const auto& h : result.rirs) {
    lmax = std::max(lmax, h.size());
    lengths.push_back(static_cast<std::int64_t>(h.size()));
  }
  std::vector<double> rir(m * lmax, 0.0);
  for (std::size_t i = 0; i < m; ++i) {
    std::copy(result.rirs[i].begin(), result.rirs[i].end(), rir.begin() + i * lmax);
  }
  write_dataset(g.get(), "rir", f64, H5T_NATIVE_DOUBLE, {m, lmax}, rir.data(), where);
  write_dataset(g.get(), "rir_length", i64, H5T_NATIVE_INT64, {m}, lengths.data(), where);
  const auto len = static_cast<hsize_t>(result.mic_signals.length);
  write_dataset(g.get(), "mic_signals", f32, H5T_NATIVE_FLOAT, {m, len},
                result.mic_signals.samples.data(), where);

  const ShoeboxRoom& room = spec.room;
  const bool uniform = std::all_of(room.absorption.begin(), room.absorption.end(),
                                   [&](double a) { return a == room.absorption[0]; });
  if (uniform) {
    write_attr(g.get(), "e_absorption", f64, H5T_NATIVE_DOUBLE, room.absorption[0], where);
  } else {
    const hsize_t six = kNumWalls;
    const H5Id space(H5Screate_simple(1, &six, nullptr), H5Sclose);
    const H5Id a(H5Acreate2(g.get(), "e_absorption", f64, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                 H5Aclose);
    if (!a.ok() || H5Awrite(a.get(), H5T_NATIVE_DOUBLE, room.absorption.data()) < 0) {
      throw std::runtime_error(where + ": cannot write attribute 'e_absorption'");
    }
  }
  const auto fs = static_cast<std::int64_t>(room.sample_rate);
  const auto order = static_cast<std::int64_t>(room.max_order);
  const std::int64_t hpf = spec.high_pass ? 1 : 0;
  const std::int64_t images = count_image_sources(room.max_order);
  const std::int64_t delay = RirOptions{}.frac_delay_length / 2;
  write_attr(g.get(), "fs", i64, H5T_NATIVE_INT64, fs, where);
  write_attr(g.get(), "c", f64, H5T_NATIVE_DOUBLE, room.c, where);
  write_attr(g.get(), "t60", f64, H5T_NATIVE_DOUBLE, spec.t60, where);
  write_attr(g.get(), "max_order", i64, H5T_NATIVE_INT64, order, where);
  write_attr(g.get(), "rir_hpf", i64, H5T_NATIVE_INT64, hpf, where);
  write_attr(g.get(), "n_image_sources", i64, H5T_NATIVE_INT64, images, where);
  write_attr(g.get(), "global_delay_samples", i64, H5T_NATIVE_INT64, delay, where);
  write_string_attr(g.get(), "kind", room.max_order == 0 ? "anechoic" : "reverberant", where);
}

// ---- command line --------------------------------------------------------------------------

struct CommandLine {
  std::string in, out;
  int threads = 0;
  bool exact_summation = false;
  bool quiet = false;
};

std::optional<int> parse_command_line(int argc, char** argv, CommandLine* cl) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* option) -> std::string {
      if (i + 1 >= argc) throw InputError(std::string(option) + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return kExitOk;
    } else if (arg == "--in") {
      cl->in = value("--in");
    } else if (arg == "--out") {
      cl->out = value("--out");
    } else if (arg == "--threads") {
      const std::string v = value("--threads");
      std::size_t used = 0;
      int n = 0;
      try {
        n = std::stoi(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != v.size() || n < 1) {
        throw InputError("--threads expects a positive integer, got '" + v + "'");
      }
      cl->threads = n;
    } else if (arg == "--exact-summation") {
      cl->exact_summation = true;
    } else if (arg == "--quiet") {
      cl->quiet = true;
    } else {
      throw InputError("unknown argument '" + arg + "'");
    }
  }
  if (cl->in.empty() || cl->out.empty()) throw InputError("--in and --out are required");
  return std::nullopt;
}

int run(int argc, char** argv) {
  CommandLine cl;
  try {
    if (const auto code = parse_command_line(argc, argv, &cl)) return *code;
  } catch (const InputError& e) {
    std::cerr << "w2p-roomsim: " << e.what() << "\n\n" << kUsage;
    return kExitInput;
  }
  silence_hdf5();
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<RoomSpec> specs = read_rooms(cl.in);
  const int threads = cl.threads > 0
                          ? cl.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  RirOptions plain;
  plain.exact_summation = cl.exact_summation;
  RirOptions with_hpf = plain;
  with_hpf.high_pass = true;
  const ShoeboxSimulator plain_sim(plain), hpf_sim(with_hpf);

  const std::string tmp = cl.out + ".tmp";
  std::filesystem::remove(tmp);
  double simulate_s = 0.0;
  try {
    const H5Id file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file.ok()) throw std::runtime_error(tmp + ": cannot create the output file");
    write_string_attr(file.get(), "generator", "w2p-roomsim", tmp);
    const H5Id rooms(H5Gcreate2(file.get(), "rooms", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                     H5Gclose);
    if (!rooms.ok()) throw std::runtime_error(tmp + ": cannot create the group 'rooms'");

    // Batches bound the memory held between simulation (parallel) and writing (serial: the
    // HDF5 library is not thread-safe).
    tbb::task_arena arena(threads);
    const std::size_t batch = static_cast<std::size_t>(threads) * 32;
    for (std::size_t begin = 0; begin < specs.size(); begin += batch) {
      const std::size_t end = std::min(specs.size(), begin + batch);
      std::vector<RoomResult> results(end - begin);
      const auto s0 = std::chrono::steady_clock::now();
      arena.execute([&] {
        tbb::parallel_for(tbb::blocked_range<std::size_t>(begin, end, 1),
                          [&](const tbb::blocked_range<std::size_t>& r) {
                            for (std::size_t i = r.begin(); i != r.end(); ++i) {
                              const RoomSpec& s = specs[i];
                              const ShoeboxSimulator& sim = s.high_pass ? hpf_sim : plain_sim;
                              RoomResult& out = results[i - begin];
                              try {
                                out.mic_signals =
                                    sim.simulate(s.room, s.source, s.mics, s.signal.data(),
                                                 s.signal.size(), &out.rirs);
                              } catch (const std::exception& e) {
                                throw std::runtime_error(cl.in + ": room '" + s.name +
                                                         "': simulation failed: " + e.what());
                              }
                            }
                          });
      });
      simulate_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
      for (std::size_t i = begin; i < end; ++i) {
        for (float v : results[i - begin].mic_signals.samples) {
          if (!std::isfinite(v)) {
            throw std::runtime_error(cl.in + ": room '" + specs[i].name +
                                     "': the simulation produced NaN or Inf");
          }
        }
        write_room(rooms.get(), specs[i], results[i - begin], cl.out);
      }
    }
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, cl.out, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error("cannot rename " + tmp + " to " + cl.out + ": " + ec.message());
  }
  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!cl.quiet) {
    std::fprintf(stderr,
                 "w2p-roomsim: %zu rooms, %d thread(s): simulated in %.3f s (%.2f rooms/s), "
                 "%.3f s in all; wrote %s\n",
                 specs.size(), threads, simulate_s,
                 simulate_s > 0 ? static_cast<double>(specs.size()) / simulate_s : 0.0, total_s,
                 cl.out.c_str());
  }
  return kExitOk;
}

}  // namespace
}  // namespace w2p::roomsim

int main(int argc, char** argv) {
  try {
    return w2p::roomsim::run(argc, argv);
  } catch (const w2p::roomsim::InputError& e) {
    std::cerr << "w2p-roomsim: " << e.what() << '\n';
    return w2p::roomsim::kExitInput;
  } catch (const std::exception& e) {
    std::cerr << "w2p-roomsim: " << e.what() << '\n';
    return w2p::roomsim::kExitRuntime;
  }
}
