// core.store_reader, driven by a hand-written NodeContext the way the runtime drives a
// repeatable source: process() per index until kEndOfStream, once per epoch.
#include "nodes/store_reader_node.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <optional>
#include <set>

#include "channel/hdf5_store.hpp"
#include "store_test_util.hpp"

namespace w2p {
namespace {

using test::ScratchDir;

class FakeContext : public NodeContext {
 public:
  using NodeContext::emit;
  RunInfo info;
  std::uint64_t epoch_ = 0;
  std::uint64_t index_ = 0;
  std::vector<Item> emitted;
  std::optional<std::uint64_t> expected;

  const Item& in(Port port) const override {
    throw Error(ErrorKind::kInternal, std::string("a source has no input ") + port.name);
  }
  bool connected(Port /*port*/) const override { return true; }
  const std::vector<Item>& side(Port port) const override {
    throw Error(ErrorKind::kInternal, std::string("a source has no side input ") + port.name);
  }
  void emit(Port port, Item item) override {
    EXPECT_STREQ(port.name, "items");
    emitted.push_back(std::move(item));
  }
  std::uint64_t seq() const override { return epoch_ * 1000000 + index_; }
  std::uint64_t epoch() const override { return epoch_; }
  std::uint64_t index() const override { return index_; }
  Rng rng() const override { return Rng::for_item(info.seed, info.node_name, epoch_, index_); }
  const RunInfo& run() const override { return info; }
  void log(LogLevel /*level*/, std::string_view /*message*/) const override {}
  void status(std::string_view /*text*/) override {}
  void expect_items(std::uint64_t count) override { expected = count; }
  void hold() override {}
  bool stop_requested() const override { return false; }
};

constexpr int kItems = 50;

Schema node_schema() {
  return Schema{{{"idx", spec(DType::kI64), "position in the store"},
                 {"audio", spec(DType::kF32, {2}), ""},
                 {"name", spec(DType::kStr), ""}}};
}

std::string make_store(const ScratchDir& dir) {
  const std::string path = dir.file("items.h5");
  StoreWriter w(path, node_schema(), {{"config_hash", "h"}}, StoreOptions{8, 0});
  for (int i = 0; i < kItems; ++i) {
    w.append(Item{{"idx", Tensor::scalar<std::int64_t>(i)},
                  {"audio", Tensor::from_vector(std::vector<float>{i * 1.0f, -i * 1.0f})},
                  {"name", Tensor::scalar("n" + std::to_string(i))}});
  }
  w.commit();
  return path;
}

Options make_options(const std::string& path, bool shuffle = false, std::int64_t limit = 0,
                     std::vector<std::string> fields = {}) {
  return Options({{"path", path},
                  {"shuffle", shuffle},
                  {"limit", limit},
                  {"fields", std::move(fields)},
                  {"store_epochs", false}});
}

// Runs one epoch of the node; returns the emitted idx values.
std::vector<std::int64_t> run_epoch(Node& node, FakeContext& ctx, std::uint64_t epoch) {
  ctx.epoch_ = epoch;
  ctx.emitted.clear();
  for (std::uint64_t i = 0; i < 10 * kItems; ++i) {
    ctx.index_ = i;
    if (node.process(ctx) == Flow::kEndOfStream) break;
  }
  std::vector<std::int64_t> out;
  for (const auto& item : ctx.emitted) out.push_back(item.get("idx").item<std::int64_t>());
  return out;
}

struct Opened {
  NodeType type = store_reader_node_type();
  std::unique_ptr<Node> node;
  FakeContext ctx;
  Opened(const Options& options, std::uint64_t seed) {
    type.declare(options);
    node = type.create(options);
    ctx.info.node_name = "reader";
    ctx.info.seed = seed;
    node->open(ctx);
  }
  ~Opened() { node->close(ctx); }
};

bool is_permutation_of_range(std::vector<std::int64_t> v, std::int64_t n) {
  std::vector<std::int64_t> expected(static_cast<std::size_t>(n));
  std::iota(expected.begin(), expected.end(), 0);
  std::sort(v.begin(), v.end());
  return v == expected;
}

TEST(StoreReaderNode, DeclaresTheStoreSchema) {
  ScratchDir dir;
  const std::string path = make_store(dir);
  const NodeType type = store_reader_node_type();
  EXPECT_EQ(type.id, "core.store_reader");
  std::set<std::string> keys;
  for (const auto& o : type.options) keys.insert(o.key);
  EXPECT_EQ(keys, (std::set<std::string>{"path", "shuffle", "limit", "fields", "store_epochs"}));
  const Contract c = type.declare(make_options(path));
  EXPECT_TRUE(c.is_source());
  EXPECT_TRUE(c.is_repeatable());
  ASSERT_EQ(c.outputs().size(), 1u);
  EXPECT_EQ(c.outputs()[0].name, "items");
  EXPECT_EQ(c.outputs()[0].schema.str(), node_schema().str());

  const Contract some = type.declare(make_options(path, false, 0, {"name", "idx"}));
  EXPECT_EQ(some.outputs()[0].schema.str(), "{name: str[], idx: i64[]}");
}

TEST(StoreReaderNode, UnknownFieldListsTheAvailableOnes) {
  ScratchDir dir;
  const std::string path = make_store(dir);
  try {
    store_reader_node_type().declare(make_options(path, false, 0, {"audi"}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(e.message().find("'audi'"), std::string::npos) << e.format();
    std::string notes;
    for (const auto& n : e.notes()) notes += n + "\n";
    EXPECT_NE(notes.find("idx, audio, name"), std::string::npos) << notes;
    EXPECT_NE(notes.find("did you mean 'audio'"), std::string::npos) << notes;
  }
}

TEST(StoreReaderNode, MissingStoreNamesTheFileAndWhatMakesIt) {
  ScratchDir dir;
  const std::string path = dir.file("nope.h5");
  try {
    store_reader_node_type().declare(make_options(path));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(e.message().find(path), std::string::npos) << e.format();
    std::string notes;
    for (const auto& n : e.notes()) notes += n + "\n";
    EXPECT_NE(notes.find("pipeline"), std::string::npos) << notes;
  }
}

TEST(StoreReaderNode, InterruptedStoreNamesItsPipeline) {
  ScratchDir dir;
  const std::string path = dir.file("feat.h5");
  {
    StoreWriter w(path, node_schema(), {{"config_hash", "h"}, {"pipeline", "pipelines/feat.yaml"}});
    w.append(Item{{"idx", Tensor::scalar<std::int64_t>(0)},
                  {"audio", Tensor::from_vector(std::vector<float>{0.0f, 0.0f})},
                  {"name", Tensor::scalar("n0")}});
  }
  const auto attrs = read_store_attributes(path + ".partial");
  ASSERT_TRUE(attrs.has_value());
  EXPECT_EQ(attrs->at("complete"), "0");
  EXPECT_EQ(attrs->at("items"), "1");
  try {
    store_reader_node_type().declare(make_options(path));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    std::string notes;
    for (const auto& n : e.notes()) notes += n + "\n";
    EXPECT_NE(notes.find("pipelines/feat.yaml"), std::string::npos) << notes;
    EXPECT_NE(notes.find("--resume"), std::string::npos) << notes;
  }
  EXPECT_FALSE(read_store_attributes(dir.file("none.h5")).has_value());
}

TEST(StoreReaderNode, ReplaysInOrderEveryEpoch) {
  ScratchDir dir;
  Opened o(make_options(make_store(dir)), 1);
  EXPECT_EQ(o.ctx.expected, static_cast<std::uint64_t>(kItems));
  std::vector<std::int64_t> in_order(kItems);
  std::iota(in_order.begin(), in_order.end(), 0);
  EXPECT_EQ(run_epoch(*o.node, o.ctx, 0), in_order);
  EXPECT_EQ(run_epoch(*o.node, o.ctx, 1), in_order);
  const Item& last = o.ctx.emitted.back();
  EXPECT_EQ(last.get("name").item<std::string>(), "n49");
  EXPECT_EQ(last.get("audio").to_vector<float>(), (std::vector<float>{49.0f, -49.0f}));
}

TEST(StoreReaderNode, LimitAndFields) {
  ScratchDir dir;
  Opened o(make_options(make_store(dir), false, 10, {"idx", "name"}), 1);
  EXPECT_EQ(o.ctx.expected, 10u);
  const auto got = run_epoch(*o.node, o.ctx, 0);
  EXPECT_EQ(got.size(), 10u);
  EXPECT_EQ(got.back(), 9);
  EXPECT_EQ(o.ctx.emitted[0].fields().size(), 2u);
  EXPECT_FALSE(o.ctx.emitted[0].has("audio"));

  Opened big(make_options(make_store(dir), true, 1000), 1);
  EXPECT_EQ(big.ctx.expected, static_cast<std::uint64_t>(kItems));
}

TEST(StoreReaderNode, ShuffleIsAPermutationPerEpochAndSeed) {
  ScratchDir dir;
  const std::string path = make_store(dir);
  Opened a(make_options(path, true), 7);
  const auto a0 = run_epoch(*a.node, a.ctx, 0);
  const auto a1 = run_epoch(*a.node, a.ctx, 1);
  const auto a0_again = run_epoch(*a.node, a.ctx, 0);
  EXPECT_TRUE(is_permutation_of_range(a0, kItems));
  EXPECT_TRUE(is_permutation_of_range(a1, kItems));
  EXPECT_NE(a0, a1) << "epochs must differ";
  EXPECT_EQ(a0, a0_again) << "an epoch's order depends only on (seed, epoch)";
  std::vector<std::int64_t> in_order(kItems);
  std::iota(in_order.begin(), in_order.end(), 0);
  EXPECT_NE(a0, in_order);

  // Another node instance with the same seed: identical; another seed: different.
  Opened b(make_options(path, true), 7);
  EXPECT_EQ(run_epoch(*b.node, b.ctx, 1), a1);
  EXPECT_EQ(run_epoch(*b.node, b.ctx, 0), a0);
  Opened c(make_options(path, true), 8);
  EXPECT_NE(run_epoch(*c.node, c.ctx, 0), a0);

  // With a limit, the first N items are permuted.
  Opened d(make_options(path, true, 12), 7);
  const auto d0 = run_epoch(*d.node, d.ctx, 0);
  EXPECT_TRUE(is_permutation_of_range(d0, 12));
  EXPECT_NE(d0, run_epoch(*d.node, d.ctx, 1));
}

TEST(StoreReaderNode, ItemsMatchTheirIndexAfterShuffle) {
  ScratchDir dir;
  Opened o(make_options(make_store(dir), true), 3);
  run_epoch(*o.node, o.ctx, 2);
  ASSERT_EQ(o.ctx.emitted.size(), static_cast<std::size_t>(kItems));
  for (const auto& item : o.ctx.emitted) {
    const auto i = item.get("idx").item<std::int64_t>();
    EXPECT_EQ(item.get("name").item<std::string>(), "n" + std::to_string(i));
    EXPECT_EQ(item.get("audio").to_vector<float>()[0], static_cast<float>(i));
  }
}

}  // namespace
}  // namespace w2p
