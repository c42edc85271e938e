// StoreWriter / StoreReader: the file layout (checked with the HDF5 C API and with h5py), schema
// checks, atomic commit, resumption and error messages.
#include "channel/hdf5_store.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "store_test_util.hpp"
#include "support/fixture_h5.hpp"
#include "w2p/error.hpp"
#include "w2p/hdf5_lock.hpp"

namespace w2p {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

// One field of every kind the layout distinguishes.
Schema all_kinds_schema() {
  Schema s;
  s.fields = {
      {"audio", spec(DType::kF32, {3, 5}), "fixed f32"},
      {"pos", spec(DType::kF64, {3}), ""},
      {"ragged", TensorSpec{DType::kF32, {Dim::ragged(), Dim::fixed(2)}}, "ragged rows"},
      {"batch", spec(DType::kI32, {"B"}), ""},
      {"count", spec(DType::kI64), "scalar"},
      {"label", spec(DType::kStr), ""},
      {"names", spec(DType::kStr, {2}), ""},
      {"words", TensorSpec{DType::kStr, {Dim::ragged()}}, ""},
      {"flag", spec(DType::kBool), ""},
      {"mask", spec(DType::kBool, {4}), ""},
      {"bytes", TensorSpec{DType::kU8, {Dim::ragged()}}, ""},
  };
  return s;
}

std::string label_of(int i) { return i == 7 ? "\xc3\xa9lan-7" : "item" + std::to_string(i); }

Item all_kinds_item(int i) {
  Item item;
  std::vector<float> audio(15);
  for (int j = 0; j < 15; ++j) audio[static_cast<std::size_t>(j)] = static_cast<float>(i * 100 + j);
  item.set("audio", Tensor::from_vector(audio, {3, 5}));
  item.set("pos", Tensor::from_vector(std::vector<double>{i * 1.0, i + 0.5, -i * 1.0}));
  const int rows = i % 3;
  std::vector<float> ragged(static_cast<std::size_t>(rows * 2));
  for (std::size_t j = 0; j < ragged.size(); ++j) ragged[j] = static_cast<float>(i * 10) + j;
  item.set("ragged", Tensor::from_vector(ragged, {rows, 2}));
  std::vector<std::int32_t> batch(static_cast<std::size_t>(i % 4 + 1));
  for (std::size_t j = 0; j < batch.size(); ++j) batch[j] = i + static_cast<std::int32_t>(j);
  item.set("batch", Tensor::from_vector(batch));
  item.set("count", Tensor::scalar<std::int64_t>(i * 1000000000LL));
  item.set("label", Tensor::scalar(label_of(i)));
  item.set("names", Tensor::from_vector(std::vector<std::string>{"a" + std::to_string(i), ""}));
  std::vector<std::string> words;
  for (int j = 0; j < i % 3; ++j)
    words.push_back("w" + std::to_string(i) + "_" + std::to_string(j));
  item.set("words", Tensor::from_vector(words));
  item.set("flag", Tensor::scalar(i % 2 == 1));
  Tensor mask = Tensor::zeros(DType::kBool, {4});
  for (int j = 0; j < 4; ++j) mask.mutable_data<bool>()[j] = (j == i % 4);
  item.set("mask", mask);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(i % 5));
  for (std::size_t j = 0; j < bytes.size(); ++j) bytes[j] = static_cast<std::uint8_t>(i + j);
  item.set("bytes", Tensor::from_vector(bytes));
  return item;
}

std::map<std::string, std::string> provenance(const std::string& hash = "hash-1") {
  return {{"config_hash", hash}, {"framework", "w2p 0.1.0"}, {"seed", "42"}};
}

void write_all_kinds(const std::string& path, int n, StoreOptions options = {}) {
  StoreWriter w(path, all_kinds_schema(), provenance(), options);
  for (int i = 0; i < n; ++i) w.append(all_kinds_item(i));
  w.commit();
}

void expect_items_equal(const Item& a, const Item& b, const std::string& where) {
  ASSERT_EQ(a.fields().size(), b.fields().size()) << where;
  for (const auto& [name, t] : a.fields()) {
    ASSERT_TRUE(b.has(name)) << where << " field " << name;
    EXPECT_TRUE(t.equals(b.get(name)))
        << where << " field " << name << ": " << to_string(t.dtype()) << shape_to_string(t.shape())
        << " vs " << to_string(b.get(name).dtype()) << shape_to_string(b.get(name).shape());
  }
}

template <typename F>
Error catch_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no w2p::Error thrown";
  return Error(ErrorKind::kInternal, "none");
}

std::string all_text(const Error& e) {
  std::string s = e.message() + "\n" + e.detail();
  for (const auto& n : e.notes()) s += "\n" + n;
  return s;
}

// ---- round trip --------------------------------------------------------------------------

TEST(Hdf5Store, RoundTripThroughStoreReader) {
  ScratchDir dir;
  const std::string path = dir.file("all.h5");
  write_all_kinds(path, 10, StoreOptions{4, 0});
  StoreReader r(path);
  ASSERT_EQ(r.size(), 10u);
  const Schema expected = all_kinds_schema();
  ASSERT_EQ(r.schema().fields.size(), expected.fields.size());
  for (std::size_t i = 0; i < expected.fields.size(); ++i) {
    EXPECT_EQ(r.schema().fields[i].name, expected.fields[i].name);
    EXPECT_EQ(r.schema().fields[i].spec.str(), expected.fields[i].spec.str());
    EXPECT_EQ(r.schema().fields[i].doc, expected.fields[i].doc);
  }
  // Random access, in an order that is not the write order.
  for (int i : {9, 0, 4, 3, 7, 1, 8, 2, 6, 5}) {
    expect_items_equal(r.read(static_cast<std::uint64_t>(i)), all_kinds_item(i),
                       "item " + std::to_string(i));
  }
  const Item some = r.read(7, {"label", "pos"});
  EXPECT_EQ(some.fields().size(), 2u);
  EXPECT_EQ(some.get("label").item<std::string>(), "\xc3\xa9lan-7");
  EXPECT_EQ(r.attribute("config_hash"), "hash-1");
  EXPECT_EQ(r.attribute("seed"), "42");
  EXPECT_EQ(r.attribute("items"), "10");
  EXPECT_EQ(r.attribute("complete"), "1");
  EXPECT_EQ(r.attribute("nope"), std::nullopt);
  EXPECT_EQ(r.attributes().at("framework"), "w2p 0.1.0");
  EXPECT_EQ(r.read(3).get("flag").item<bool>(), true);
  EXPECT_EQ(catch_error([&] { r.read(10); }).kind(), ErrorKind::kInternal);
}

TEST(Hdf5Store, RecordsTheEpochsOfItsStream) {
  ScratchDir dir;
  const auto write = [&dir](const std::string& name, const std::vector<std::uint64_t>& epochs) {
    StoreWriter w(dir.file(name), all_kinds_schema(), provenance());
    for (int i = 0; i < 7; ++i) w.append(all_kinds_item(i));
    w.commit(epochs);
    return dir.file(name);
  };
  StoreReader three(write("three.h5", {3, 0, 4}));
  EXPECT_EQ(three.epoch_items(), (std::vector<std::uint64_t>{3, 0, 4}));
  EXPECT_EQ(three.attribute("epoch_items"), "3 0 4");
  // One epoch, or none given: no attribute, all items in one epoch.
  StoreReader one(write("one.h5", {7}));
  EXPECT_EQ(one.epoch_items(), (std::vector<std::uint64_t>{7}));
  EXPECT_EQ(one.attribute("epoch_items"), std::nullopt);
  EXPECT_EQ(StoreReader(write("none.h5", {})).epoch_items(), (std::vector<std::uint64_t>{7}));
  const Error e = catch_error([&] { write("wrong.h5", {3, 3}); });
  EXPECT_NE(all_text(e).find("7 items written, but 6 in its epochs"), std::string::npos)
      << all_text(e);
}

TEST(Hdf5Store, CompressedRoundTrip) {
  ScratchDir dir;
  const std::string path = dir.file("z.h5");
  write_all_kinds(path, 9, StoreOptions{2, 6});
  StoreReader r(path);
  ASSERT_EQ(r.size(), 9u);
  for (int i = 0; i < 9; ++i)
    expect_items_equal(r.read(static_cast<std::uint64_t>(i)), all_kinds_item(i), "item");
}

TEST(Hdf5Store, EmptyStore) {
  ScratchDir dir;
  const std::string path = dir.file("empty.h5");
  write_all_kinds(path, 0);
  StoreReader r(path);
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.schema().fields.size(), all_kinds_schema().fields.size());
}

TEST(Hdf5Store, LayoutReadWithTheHdf5CApi) {
  ScratchDir dir;
  const std::string path = dir.file("all.h5");
  const int n = 10;
  write_all_kinds(path, n, StoreOptions{4, 0});
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  test::H5Reader h5(path);
  EXPECT_EQ(h5.attr_string("/", "w2p_format"), "w2p-store/1");
  EXPECT_EQ(h5.attr_double("/", "complete"), 1.0);
  EXPECT_EQ(h5.attr_double("/", "items"), n);
  EXPECT_EQ(h5.attr_double("/", "w2p_chunk_items"), 4.0);
  EXPECT_EQ(h5.attr_string("/", "config_hash"), "hash-1");
  EXPECT_EQ(h5.attr_string("/", "framework"), "w2p 0.1.0");

  // Fixed shape: one dataset [N, dims...].
  EXPECT_EQ(h5.element_type("audio"), (std::pair<char, std::size_t>{'f', 4}));
  const auto audio = h5.read<float>("audio");
  ASSERT_EQ(audio.shape, (std::vector<std::int64_t>{n, 3, 5}));
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < 15; ++j)
      EXPECT_EQ(audio.values[static_cast<std::size_t>(i * 15 + j)], i * 100 + j);
  }
  EXPECT_EQ(h5.attr_string("audio", "w2p_spec"), "f32[3,5]");
  EXPECT_EQ(h5.attr_string("audio", "w2p_dtype"), "f32");
  EXPECT_EQ(h5.attr_string("audio", "w2p_doc"), "fixed f32");
  EXPECT_EQ(h5.element_type("pos"), (std::pair<char, std::size_t>{'f', 8}));
  EXPECT_EQ(h5.read<double>("pos").values[3 * 3 + 1], 3.5);

  // Scalars: [N].
  const auto count = h5.read<std::int64_t>("count");
  ASSERT_EQ(count.shape, (std::vector<std::int64_t>{n}));
  EXPECT_EQ(count.values[9], 9000000000LL);

  // Bool: uint8 0/1 tagged w2p_dtype=bool.
  EXPECT_EQ(h5.element_type("flag"), (std::pair<char, std::size_t>{'i', 1}));
  EXPECT_EQ(h5.attr_string("flag", "w2p_dtype"), "bool");
  const auto flag = h5.read<std::uint8_t>("flag");
  for (int i = 0; i < n; ++i) EXPECT_EQ(flag.values[static_cast<std::size_t>(i)], i % 2);
  const auto mask = h5.read<std::uint8_t>("mask");
  ASSERT_EQ(mask.shape, (std::vector<std::int64_t>{n, 4}));
  EXPECT_EQ(mask.values[5 * 4 + 1], 1);
  EXPECT_EQ(mask.values[5 * 4 + 2], 0);

  // Ragged and symbolic: a group with values, shapes, offsets.
  for (const char* group : {"ragged", "batch", "words", "bytes"}) {
    EXPECT_EQ(h5.list(group), (std::vector<std::string>{"offsets", "shapes", "values"})) << group;
  }
  EXPECT_EQ(h5.attr_string("ragged", "w2p_spec"), "f32[?,2]");
  EXPECT_EQ(h5.attr_string("batch", "w2p_spec"), "i32[B]");
  const auto offsets = h5.read<std::int64_t>("ragged/offsets");
  const auto shapes = h5.read<std::int64_t>("ragged/shapes");
  const auto values = h5.read<float>("ragged/values");
  ASSERT_EQ(offsets.shape, (std::vector<std::int64_t>{n + 1}));
  ASSERT_EQ(shapes.shape, (std::vector<std::int64_t>{n, 2}));
  EXPECT_EQ(offsets.values[0], 0);
  for (int i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    EXPECT_EQ(shapes.values[2 * k], i % 3);
    EXPECT_EQ(shapes.values[2 * k + 1], 2);
    ASSERT_EQ(offsets.values[k + 1] - offsets.values[k], (i % 3) * 2);
    for (std::int64_t j = offsets.values[k]; j < offsets.values[k + 1]; ++j)
      EXPECT_EQ(values.values[static_cast<std::size_t>(j)], i * 10 + (j - offsets.values[k]));
  }
  EXPECT_EQ(values.shape, (std::vector<std::int64_t>{offsets.values.back()}));
  const auto batch = h5.read<std::int32_t>("batch/values");
  const auto batch_offsets = h5.read<std::int64_t>("batch/offsets");
  EXPECT_EQ(batch.values[static_cast<std::size_t>(batch_offsets.values[3])], 3);

  // Strings: variable-length UTF-8, same fixed/ragged rules.
  const auto labels = test::read_vlen_strings(path, "label");
  ASSERT_EQ(labels.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(labels[static_cast<std::size_t>(i)], label_of(i));
  const auto names = test::read_vlen_strings(path, "names");
  ASSERT_EQ(names.size(), static_cast<std::size_t>(2 * n));
  EXPECT_EQ(names[8], "a4");
  EXPECT_EQ(names[9], "");
  const auto words = test::read_vlen_strings(path, "words/values");
  const auto word_offsets = h5.read<std::int64_t>("words/offsets");
  EXPECT_EQ(words[static_cast<std::size_t>(word_offsets.values[5]) + 1], "w5_1");
}

TEST(Hdf5Store, LayoutReadWithH5py) {
  const std::string python = test::python_with_h5py();
  if (python.empty()) GTEST_SKIP() << "no python3 with h5py";
  ScratchDir dir;
  const std::string path = dir.file("all.h5");
  write_all_kinds(path, 10, StoreOptions{4, 3});
  const std::string script = R"PY(
import sys
import h5py
import numpy as np
N = 10
f = h5py.File(sys.argv[1], "r")
assert f.attrs["w2p_format"] == "w2p-store/1", f.attrs["w2p_format"]
assert int(f.attrs["complete"]) == 1 and int(f.attrs["items"]) == N
assert f.attrs["config_hash"] == "hash-1"
assert [str(x) for x in f.attrs["w2p_fields"]] == ["audio", "pos", "ragged", "batch", "count",
    "label", "names", "words", "flag", "mask", "bytes"], list(f.attrs["w2p_fields"])
a = f["audio"][...]
assert a.shape == (N, 3, 5) and a.dtype == np.float32, (a.shape, a.dtype)
assert np.array_equal(a, np.arange(N)[:, None, None] * 100 + np.arange(15).reshape(3, 5))
assert f["audio"].attrs["w2p_spec"] == "f32[3,5]"
assert f["pos"].dtype == np.float64 and f["pos"][3, 1] == 3.5
assert f["count"].shape == (N,) and f["count"][9] == 9000000000
g = f["ragged"]
off, shp, val = g["offsets"][...], g["shapes"][...], g["values"][...]
for i in range(N):
    x = val[off[i]:off[i + 1]].reshape(shp[i])
    assert x.shape == (i % 3, 2), x.shape
    assert np.array_equal(x.ravel(), i * 10 + np.arange(x.size))
b = f["batch"]
for i in range(N):
    x = b["values"][b["offsets"][i]:b["offsets"][i + 1]]
    assert np.array_equal(x, i + np.arange(i % 4 + 1)), x
labels = f["label"].asstr()[...]
assert list(labels) == ["item%d" % i if i != 7 else "\u00e9lan-7" for i in range(N)], labels
names = f["names"].asstr()[...]
assert names.shape == (N, 2) and names[4, 0] == "a4" and names[4, 1] == ""
w = f["words"]
words = w["values"].asstr()[...]
assert list(words[w["offsets"][5]:w["offsets"][6]]) == ["w5_0", "w5_1"]
assert f["flag"].dtype == np.uint8 and f["flag"].attrs["w2p_dtype"] == "bool"
assert np.array_equal(f["flag"][...], np.arange(N) % 2)
assert np.array_equal(f["mask"][...].argmax(axis=1), np.arange(N) % 4)
assert f["bytes"]["values"].dtype == np.uint8
print("h5py OK")
)PY";
  EXPECT_EQ(test::run_h5py(python, dir.file("check.py"), script, path), 0);
}

// ---- schema checks -----------------------------------------------------------------------

TEST(Hdf5Store, AppendChecksTheSchema) {
  ScratchDir dir;
  const std::string path = dir.file("s.h5");
  Schema schema{{{"audio", spec(DType::kF32, {7, 16}), ""}, {"n", spec(DType::kI64), ""}}};
  StoreWriter w(path, schema, provenance());
  Item good{{"audio", Tensor::zeros(DType::kF32, {7, 16})}, {"n", Tensor::scalar<std::int64_t>(1)}};
  w.append(good);

  Error e = catch_error([&] {
    w.append(Item{{"audio", Tensor::zeros(DType::kF32, {7, 15})},
                  {"n", Tensor::scalar<std::int64_t>(1)}});
  });
  EXPECT_EQ(e.kind(), ErrorKind::kType);
  EXPECT_NE(all_text(e).find("'audio'"), std::string::npos) << all_text(e);
  EXPECT_NE(all_text(e).find("f32[7,16]"), std::string::npos) << all_text(e);
  EXPECT_NE(all_text(e).find("f32[7,15]"), std::string::npos) << all_text(e);
  EXPECT_NE(all_text(e).find(path), std::string::npos) << all_text(e);

  e = catch_error([&] {
    w.append(Item{{"audio", Tensor::zeros(DType::kF64, {7, 16})},
                  {"n", Tensor::scalar<std::int64_t>(1)}});
  });
  EXPECT_EQ(e.kind(), ErrorKind::kType);
  EXPECT_NE(all_text(e).find("f64[7,16]"), std::string::npos) << all_text(e);

  e = catch_error([&] { w.append(Item{{"audio", Tensor::zeros(DType::kF32, {7, 16})}}); });
  EXPECT_EQ(e.kind(), ErrorKind::kType);
  EXPECT_NE(all_text(e).find("'n'"), std::string::npos) << all_text(e);
  EXPECT_NE(all_text(e).find("i64[]"), std::string::npos) << all_text(e);

  e = catch_error([&] {
    Item extra = good;
    extra.set("bonus", Tensor::scalar(1.0f));
    w.append(extra);
  });
  EXPECT_EQ(e.kind(), ErrorKind::kType);
  EXPECT_NE(all_text(e).find("'bonus'"), std::string::npos) << all_text(e);

  // Rejected items are not stored.
  EXPECT_EQ(w.size(), 1u);
  w.commit();
  EXPECT_EQ(StoreReader(path).size(), 1u);
}

TEST(Hdf5Store, RefusesBadSchemasAndReservedAttributes) {
  ScratchDir dir;
  EXPECT_EQ(catch_error([&] { StoreWriter(dir.file("a.h5"), Schema{}, {}); }).kind(),
            ErrorKind::kType);
  EXPECT_EQ(catch_error([&] {
              StoreWriter(dir.file("b.h5"), Schema{{{"a/b", spec(DType::kF32), ""}}}, {});
            }).kind(),
            ErrorKind::kType);
  EXPECT_EQ(catch_error([&] {
              StoreWriter(dir.file("c.h5"),
                          Schema{{{"x", spec(DType::kF32), ""}, {"x", spec(DType::kF32), ""}}}, {});
            }).kind(),
            ErrorKind::kType);
  EXPECT_EQ(
      catch_error([&] {
        StoreWriter(dir.file("d.h5"), Schema{{{"x", spec(DType::kF32), ""}}}, {{"complete", "1"}});
      }).kind(),
      ErrorKind::kInternal);
}

// ---- commit ------------------------------------------------------------------------------

TEST(Hdf5Store, CommitRenamesAtomically) {
  ScratchDir dir;
  const std::string path = dir.file("out.h5");
  {
    StoreWriter w(path, all_kinds_schema(), provenance(), StoreOptions{4, 0});
    for (int i = 0; i < 9; ++i) {
      w.append(all_kinds_item(i));
      EXPECT_FALSE(fs::exists(path)) << "final file before commit, item " << i;
      EXPECT_TRUE(fs::exists(path + ".partial"));
    }
    EXPECT_FALSE(store_is_complete(path, "hash-1"));
    EXPECT_EQ(w.size(), 9u);
    w.commit();
    EXPECT_TRUE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".partial"));
    EXPECT_EQ(catch_error([&] { w.append(all_kinds_item(9)); }).kind(), ErrorKind::kInternal);
  }
  EXPECT_EQ(StoreReader(path).size(), 9u);

  // A rewrite replaces the old store only at its own commit.
  {
    StoreWriter w(path, all_kinds_schema(), provenance("hash-2"));
    w.append(all_kinds_item(0));
    EXPECT_EQ(StoreReader(path).size(), 9u);
    w.commit();
  }
  EXPECT_EQ(StoreReader(path).size(), 1u);
  EXPECT_EQ(StoreReader(path).attribute("config_hash"), "hash-2");
}

TEST(Hdf5Store, ReaderRefusesWhatIsNotACompleteStore) {
  ScratchDir dir;
  const std::string missing = dir.file("missing.h5");
  Error e = catch_error([&] { StoreReader r(missing); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(e.message().find(missing), std::string::npos);
  EXPECT_NE(e.message().find("does not exist"), std::string::npos);

  const std::string text = dir.file("text.h5");
  std::ofstream(text) << "not hdf5\n";
  e = catch_error([&] { StoreReader r(text); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(e.message().find(text), std::string::npos);
  EXPECT_NE(e.message().find("not an HDF5 file"), std::string::npos);

  const std::string plain = dir.file("plain.h5");
  {
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    H5Fclose(H5Fcreate(plain.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  }
  e = catch_error([&] { StoreReader r(plain); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(e.message().find(plain), std::string::npos);
  EXPECT_NE(e.message().find("not a w2p store"), std::string::npos);

  // An uncommitted store: by its .partial name, and copied under a final name.
  const std::string path = dir.file("store.h5");
  {
    StoreWriter w(path, all_kinds_schema(), provenance(), StoreOptions{2, 0});
    for (int i = 0; i < 3; ++i) w.append(all_kinds_item(i));
  }
  e = catch_error([&] { StoreReader r(path + ".partial"); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(e.message().find("incomplete"), std::string::npos);
  e = catch_error([&] { StoreReader r(path); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(all_text(e).find(".partial"), std::string::npos) << all_text(e);
  fs::copy_file(path + ".partial", dir.file("copy.h5"));
  e = catch_error([&] { StoreReader r(dir.file("copy.h5")); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(e.message().find("incomplete"), std::string::npos);
  EXPECT_NE(e.message().find("copy.h5"), std::string::npos);
}

TEST(Hdf5Store, StoreIsComplete) {
  ScratchDir dir;
  const std::string path = dir.file("s.h5");
  EXPECT_FALSE(store_is_complete(path, "hash-1"));
  {
    StoreWriter w(path, all_kinds_schema(), provenance());
    w.append(all_kinds_item(0));
    EXPECT_FALSE(store_is_complete(path, "hash-1"));
    w.commit();
  }
  EXPECT_TRUE(store_is_complete(path, "hash-1"));
  EXPECT_FALSE(store_is_complete(path, "hash-2"));
  EXPECT_FALSE(store_is_complete(path + ".partial", "hash-1"));
  std::ofstream(dir.file("junk.h5")) << "junk";
  EXPECT_FALSE(store_is_complete(dir.file("junk.h5"), "hash-1"));
}

// ---- resume ------------------------------------------------------------------------------

constexpr std::uint64_t kChunk = 4;

// Every item and dataset of two stores are equal.
void expect_same_stores(const std::string& a, const std::string& b) {
  StoreReader ra(a), rb(b);
  ASSERT_EQ(ra.size(), rb.size());
  for (std::uint64_t i = 0; i < ra.size(); ++i)
    expect_items_equal(ra.read(i), rb.read(i), "item " + std::to_string(i));
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  test::H5Reader ha(a), hb(b);
  for (const char* ds : {"audio", "pos", "ragged/values", "ragged/offsets", "ragged/shapes"}) {
    const auto x = ha.read<double>(ds);
    const auto y = hb.read<double>(ds);
    EXPECT_EQ(x.shape, y.shape) << ds;
    EXPECT_EQ(x.values, y.values) << ds;
  }
  EXPECT_EQ(test::read_vlen_strings(a, "words/values"), test::read_vlen_strings(b, "words/values"));
  EXPECT_EQ(test::read_vlen_strings(a, "label"), test::read_vlen_strings(b, "label"));
}

TEST(Hdf5Store, ResumesAfterDestructionWithoutCommit) {
  ScratchDir dir;
  const std::string reference = dir.file("reference.h5");
  write_all_kinds(reference, 20, StoreOptions{kChunk, 0});

  const std::string path = dir.file("resumed.h5");
  {
    StoreWriter w(path, all_kinds_schema(), provenance(), StoreOptions{kChunk, 0});
    EXPECT_EQ(w.resumed_items(), 0u);
    for (int i = 0; i < 14; ++i) w.append(all_kinds_item(i));  // 3.5 chunks
  }
  EXPECT_FALSE(fs::exists(path));
  ASSERT_TRUE(fs::exists(path + ".partial"));
  {
    StoreWriter w(path, all_kinds_schema(), provenance(), StoreOptions{kChunk, 0});
    EXPECT_EQ(w.resumed_items(), 3 * kChunk);
    EXPECT_EQ(w.size(), 3 * kChunk);
    for (int i = static_cast<int>(w.size()); i < 20; ++i) w.append(all_kinds_item(i));
    w.commit();
  }
  expect_same_stores(reference, path);
}

TEST(Hdf5Store, ResumesFromAFileCopiedMidWrite) {
  ScratchDir dir;
  const std::string reference = dir.file("reference.h5");
  write_all_kinds(reference, 20, StoreOptions{kChunk, 0});

  // A crash: the .partial as it was on disk in the middle of writing (between chunk writes,
  // with items of an unwritten chunk in memory), never closed by its writer.
  const std::string path = dir.file("crashed.h5");
  const std::string snapshot = dir.file("snapshot.h5");
  {
    StoreWriter w(path, all_kinds_schema(), provenance(), StoreOptions{kChunk, 0});
    for (int i = 0; i < 14; ++i) {
      w.append(all_kinds_item(i));
      if (i == 9) fs::copy_file(path + ".partial", snapshot);  // 2 chunks + 2 buffered items
    }
  }
  fs::remove(path + ".partial");
  fs::copy_file(snapshot, path + ".partial");
  {
    StoreWriter w(path, all_kinds_schema(), provenance(), StoreOptions{kChunk, 0});
    EXPECT_EQ(w.resumed_items(), 2 * kChunk);
    for (int i = static_cast<int>(w.size()); i < 20; ++i) w.append(all_kinds_item(i));
    w.commit();
  }
  expect_same_stores(reference, path);
}

TEST(Hdf5Store, ResumesAfterTheWriterIsKilled) {
  ScratchDir dir;
  const std::string reference = dir.file("reference.h5");
  write_all_kinds(reference, 20, StoreOptions{kChunk, 0});

  // A real crash: a child process writes 2.5 chunks and dies by SIGKILL, never closing HDF5.
  const std::string path = dir.file("killed.h5");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    StoreWriter w(path, all_kinds_schema(), provenance(), StoreOptions{kChunk, 0});
    for (int i = 0; i < 10; ++i) w.append(all_kinds_item(i));
    ::raise(SIGKILL);
    ::_exit(3);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  ASSERT_TRUE(fs::exists(path + ".partial"));
  {
    StoreWriter w(path, all_kinds_schema(), provenance(), StoreOptions{kChunk, 0});
    EXPECT_EQ(w.resumed_items(), 2 * kChunk);
    for (int i = static_cast<int>(w.size()); i < 20; ++i) w.append(all_kinds_item(i));
    w.commit();
  }
  expect_same_stores(reference, path);
}

TEST(Hdf5Store, ResumeKeepsTheChunkSizeOfTheFile) {
  ScratchDir dir;
  const std::string path = dir.file("s.h5");
  {
    StoreWriter w(path, all_kinds_schema(), provenance(), StoreOptions{5, 0});
    for (int i = 0; i < 12; ++i) w.append(all_kinds_item(i));
  }
  StoreWriter w(path, all_kinds_schema(), provenance(), StoreOptions{3, 0});
  EXPECT_EQ(w.resumed_items(), 10u);
}

TEST(Hdf5Store, StartsAnewWhenTheConfigOrSchemaDiffers) {
  ScratchDir dir;
  const std::string path = dir.file("s.h5");
  auto leave_partial = [&] {
    StoreWriter w(path, all_kinds_schema(), provenance("hash-1"), StoreOptions{kChunk, 0});
    for (int i = 0; i < 10; ++i) w.append(all_kinds_item(i));
  };
  leave_partial();
  {
    StoreWriter w(path, all_kinds_schema(), provenance("hash-2"), StoreOptions{kChunk, 0});
    EXPECT_EQ(w.resumed_items(), 0u);
    EXPECT_EQ(w.size(), 0u);
    w.append(all_kinds_item(5));
    w.commit();
  }
  {
    StoreReader r(path);
    ASSERT_EQ(r.size(), 1u);
    expect_items_equal(r.read(0), all_kinds_item(5), "item 0");
    EXPECT_EQ(r.attribute("config_hash"), "hash-2");
  }

  // Same hash, another schema.
  leave_partial();
  Schema other = all_kinds_schema();
  other.fields[0].spec = spec(DType::kF32, {3, 6});
  {
    StoreWriter w(path, other, provenance("hash-1"), StoreOptions{kChunk, 0});
    EXPECT_EQ(w.resumed_items(), 0u);
  }
  // No config hash at all: never resumes.
  leave_partial();
  {
    StoreWriter w(path, all_kinds_schema(), {{"seed", "1"}}, StoreOptions{kChunk, 0});
    EXPECT_EQ(w.resumed_items(), 0u);
  }
  // A .partial that is not HDF5.
  std::ofstream(path + ".partial") << "garbage";
  {
    StoreWriter w(path, all_kinds_schema(), provenance("hash-1"), StoreOptions{kChunk, 0});
    EXPECT_EQ(w.resumed_items(), 0u);
    w.append(all_kinds_item(0));
    w.commit();
  }
  EXPECT_EQ(StoreReader(path).size(), 1u);
}

// Items of 64 KiB and more are written one by one from their own buffers (no gather copy).
TEST(Hdf5Store, LargeItemsRoundTripAndResume) {
  ScratchDir dir;
  const Schema schema{{{"big", spec(DType::kF32, {7, 4000}), ""}, {"i", spec(DType::kI64), ""}}};
  auto item = [](int i) {
    Tensor t = Tensor::zeros(DType::kF32, {7, 4000});
    for (std::int64_t j = 0; j < t.numel(); ++j)
      t.mutable_data<float>()[j] = static_cast<float>(i * 7 + j % 1000);
    return Item{{"big", t}, {"i", Tensor::scalar<std::int64_t>(i)}};
  };
  const std::string path = dir.file("big.h5");
  {
    StoreWriter w(path, schema, provenance(), StoreOptions{4, 0});
    for (int i = 0; i < 11; ++i) w.append(item(i));
  }
  {
    StoreWriter w(path, schema, provenance(), StoreOptions{4, 0});
    EXPECT_EQ(w.resumed_items(), 8u);
    for (int i = 8; i < 13; ++i) w.append(item(i));
    w.commit();
  }
  StoreReader r(path);
  ASSERT_EQ(r.size(), 13u);
  for (int i = 0; i < 13; ++i)
    expect_items_equal(r.read(static_cast<std::uint64_t>(i)), item(i), "item " + std::to_string(i));
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  const auto big = test::H5Reader(path).read<float>("big");
  EXPECT_EQ(big.shape, (std::vector<std::int64_t>{13, 7, 4000}));
  EXPECT_EQ(big.values[12 * 28000 + 1001], 12 * 7 + 1);
}

// ---- threads -----------------------------------------------------------------------------

TEST(Hdf5Store, ConcurrentReadsAndWrites) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  write_all_kinds(path, 16, StoreOptions{4, 0});
  StoreReader r(path);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      if (t == 3) {
        // Another store written at the same time (the lock serialises every HDF5 call).
        StoreWriter w(dir.file("w.h5"), all_kinds_schema(), provenance(), StoreOptions{2, 0});
        for (int i = 0; i < 30; ++i) w.append(all_kinds_item(i));
        w.commit();
        return;
      }
      for (int k = 0; k < 200; ++k) {
        const int i = (k * 7 + t) % 16;
        if (!r.read(static_cast<std::uint64_t>(i))
                 .get("audio")
                 .equals(all_kinds_item(i).get("audio")))
          ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(StoreReader(dir.file("w.h5")).size(), 30u);
}

}  // namespace
}  // namespace w2p
