// Runtime tests: real pipelines (YAML files, the built-in nodes and the rttest plugin loaded
// through Boost.DLL, HDF5 stores) run on the TBB scheduler.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "channel/hdf5_store.hpp"
#include "config/pipeline_config.hpp"
#include "graph/pipeline_graph.hpp"
#include "nodes/builtin_nodes.hpp"
#include "plugin/plugin_catalog.hpp"
#include "run/runtime.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;

namespace w2p {
namespace {

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_.add_builtin(builtin_node_types());
    catalog_.load_directory(W2P_RTTEST_PLUGIN_DIR);
  }

  std::string write(const std::string& name, const std::string& yaml) {
    return scratch_.write(name, yaml).string();
  }

  RunResult run(const std::string& yaml_path, std::vector<std::string> sets = {},
                const std::string& run_dir = "run") {
    ConfigOverrides o;
    o.sets = std::move(sets);
    o.run_dir = (dir_ / run_dir).string();
    PipelineGraph graph = build_graph(load_pipeline(yaml_path, o), catalog_);
    RunOptions options;
    options.quiet = true;
    options.print = [this](const std::string& line) { log_ += line; };
    return run_graph(graph, catalog_, options);
  }

  static std::vector<Item> read_store(const fs::path& path) {
    StoreReader reader(path.string());
    std::vector<Item> items;
    for (std::uint64_t i = 0; i < reader.size(); ++i) items.push_back(reader.read(i));
    return items;
  }

  static std::string errors_of(const RunResult& r) {
    std::string out;
    for (const auto& e : r.errors) out += e.format() + "\n";
    return out;
  }

  w2p::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
  PluginCatalog catalog_;
  std::string log_;
};

const char* kFanOutJoin = R"(
graph: {seed: 11, max_in_flight: 16}
channels: {joined: {store: joined.h5, chunk_items: 32}}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 300, shape: [4, 8]}, outputs: {out: x}}
  - {name: left, type: rttest.scale, options: {sleep_us: 300}, inputs: {in: x}, outputs: {out: l}}
  - {name: right, type: rttest.scale, inputs: {in: x}, outputs: {out: r}}
  - {name: join, type: rttest.join, inputs: {a: l, b: r}, outputs: {out: joined}}
  - {name: sink, type: core.null_sink, inputs: {in: joined}}
)";

TEST_F(RuntimeTest, FanOutAndJoinComputeTheExpectedValues) {
  const RunResult r = run(write("p.yaml", kFanOutJoin));
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto items = read_store(dir_ / "run" / "joined.h5");
  ASSERT_EQ(items.size(), 300u);
  // Recompute item 123 from the documented per-item generators: x ~ U[0,1) from
  // (seed, "src", epoch, index); each scale node adds its own U[0,1) from (seed, name, ...).
  const std::uint64_t i = 123;
  Rng src = Rng::for_item(11, "src", 0, i);
  Rng left = Rng::for_item(11, "left", 0, i);
  Rng right = Rng::for_item(11, "right", 0, i);
  const Tensor& got = items[i].get("x");
  ASSERT_EQ(got.shape(), (Shape{4, 8}));
  for (std::int64_t k = 0; k < 32; ++k) {
    const float x = static_cast<float>(src.uniform());
    const float expected = (2 * x + static_cast<float>(left.uniform())) +
                           (2 * x + static_cast<float>(right.uniform()));
    EXPECT_EQ(got.data<float>()[k], expected) << "element " << k;
  }
}

TEST_F(RuntimeTest, OneAndTwoThreadsStoreIdenticalItems) {
  const std::string yaml = write("p.yaml", kFanOutJoin);
  const RunResult one = run(yaml, {"graph.threads=1"}, "one");
  const RunResult two = run(yaml, {"graph.threads=2"}, "two");
  ASSERT_TRUE(one.ok()) << errors_of(one);
  ASSERT_TRUE(two.ok()) << errors_of(two);
  const auto a = read_store(dir_ / "one" / "joined.h5");
  const auto b = read_store(dir_ / "two" / "joined.h5");
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(a[i].get("x").equals(b[i].get("x"))) << "item " << i;
  }
}

TEST_F(RuntimeTest, InFlightItemsStayWithinTheLimit) {
  const RunResult r = run(write("p.yaml", R"(
graph: {max_in_flight: 8, threads: 2}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 400, shape: [64]}, outputs: {out: x}}
  - {name: scale, type: rttest.scale, inputs: {in: x}, outputs: {out: y}}
  - {name: slow, type: rttest.slow_sink, options: {sleep_us: 200}, inputs: {in: y}}
)"));
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto src = std::find_if(r.nodes.begin(), r.nodes.end(),
                                [](const NodeStats& s) { return s.name == "src"; });
  ASSERT_NE(src, r.nodes.end());
  EXPECT_EQ(src->items_out, 400u);
  EXPECT_GE(src->peak_in_flight, 2);  // the source did run ahead of the slow sink...
  EXPECT_LE(src->peak_in_flight, 8);  // ...but never by more than max_in_flight
}

TEST_F(RuntimeTest, ItemsABatchHoldsCountAsInFlight) {
  // A slow consumer of batches of 5: what core.batch collects and the batches queued behind
  // the sink stay within max_in_flight source items, not max_in_flight batches.
  const RunResult r = run(write("p.yaml", R"(
graph: {max_in_flight: 20, threads: 2}
channels: {lag: {store: lag.h5}}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 300, shape: [4]}, outputs: {out: x}}
  - {name: tap, type: rttest.tap, options: {counter: held}, inputs: {in: x}, outputs: {out: t}}
  - {name: batch, type: core.batch, options: {size: 5}, inputs: {in: t}, outputs: {out: b}}
  - {name: sink, type: rttest.lag_sink, options: {counter: held, sleep_us: 2000}, inputs: {in: b},
     outputs: {lag: lag}}
)"));
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto lag = read_store(dir_ / "run" / "lag.h5");
  ASSERT_EQ(lag.size(), 1u);
  const std::int64_t most_ahead = lag[0].get("lag").item<std::int64_t>();
  EXPECT_LE(most_ahead, 20);  // was up to 20 batches, i.e. 100 items
  EXPECT_GE(most_ahead, 10);  // the next batches were read while the sink slept
}

TEST_F(RuntimeTest, ABatchLargerThanMaxInFlightIsAnErrorNotAHang) {
  const RunResult r = run(write("p.yaml", R"(
graph: {max_in_flight: 8}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 100, shape: [2]}, outputs: {out: x}}
  - {name: batch, type: core.batch, options: {size: 10}, inputs: {in: x}, outputs: {out: b}}
  - {name: sink, type: core.null_sink, inputs: {in: b}}
)"));
  ASSERT_FALSE(r.ok());
  const std::string text = errors_of(r);
  EXPECT_NE(text.find("node 'batch' holds 8 items of source 'src'"), std::string::npos) << text;
  EXPECT_NE(text.find("graph.max_in_flight above"), std::string::npos) << text;
  EXPECT_EQ(text.find("stalled"), std::string::npos) << text;
}

TEST_F(RuntimeTest, HeldInputsFromOneSourceItemCountOnce) {
  // Every source item becomes 10 items (unbatch); a batch of 20 holds 19 of them, which come
  // from 2 source items: within max_in_flight 4.
  const RunResult r = run(write("p.yaml", R"(
graph: {max_in_flight: 4}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 8, shape: [10, 2]}, outputs: {out: x}}
  - {name: split, type: core.unbatch, inputs: {in: x}, outputs: {out: rows}}
  - {name: batch, type: core.batch, options: {size: 20}, inputs: {in: rows}, outputs: {out: b}}
  - {name: sink, type: core.null_sink, inputs: {in: b}}
)"));
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto batch = std::find_if(r.nodes.begin(), r.nodes.end(),
                                  [](const NodeStats& s) { return s.name == "batch"; });
  ASSERT_NE(batch, r.nodes.end());
  EXPECT_EQ(batch->items_out, 4u);
}

TEST_F(RuntimeTest, ASourceFeedingASideInputIsReadToItsEnd) {
  // `v` is fit's side input and shift's stream; shift waits for a total that needs fit, so
  // its items pile up. Were v limited to 4 in flight, fit's side input could never complete.
  const RunResult r = run(write("p.yaml", R"(
graph: {max_in_flight: 4}
channels: {y: {store: y.h5}}
nodes:
  - {name: a, type: core.tensor_source, options: {count: 3, shape: [3]}, outputs: {out: ax}}
  - {name: val, type: core.tensor_source, options: {count: 40, shape: [3], fill: index},
     outputs: {out: v}}
  - {name: fit, type: rttest.side_sum, inputs: {in: ax, side: v}, outputs: {out: fitted}}
  - {name: total, type: rttest.total, inputs: {in: fitted}, outputs: {total: sums}}
  - {name: shift, type: rttest.add_side, inputs: {in: v, total: sums}, outputs: {out: y}}
)"));
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto y = read_store(dir_ / "run" / "y.h5");
  ASSERT_EQ(y.size(), 40u);
  const float first = y[0].get("x").data<float>()[0];
  EXPECT_FLOAT_EQ(y[39].get("x").data<float>()[0] - first, 39.0f);
  // The total: 3 items of 3 uniform [0, 1) values, each shifted by the side input's sum
  // 3 (0 + ... + 39) = 2340.
  EXPECT_GE(first, 9 * 2340.0f);
  EXPECT_LT(first, 9 * 2341.0f);
}

TEST_F(RuntimeTest, NodeExceptionStopsTheRunAndNamesTheNode) {
  const RunResult r = run(write("p.yaml", R"(
channels: {y: {store: y.h5, chunk_items: 8}}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 1000, fail_at: 50}, outputs: {out: x}}
  - {name: scale, type: rttest.scale, inputs: {in: x}, outputs: {out: y}}
  - {name: sink, type: core.null_sink, inputs: {in: y}}
)"));
  ASSERT_FALSE(r.ok());
  ASSERT_FALSE(r.errors.empty());
  const std::string text = errors_of(r);
  EXPECT_NE(text.find("node 'src' (core.tensor_source) failed in process()"), std::string::npos)
      << text;
  EXPECT_NE(text.find("failing at item 50"), std::string::npos) << text;
  EXPECT_EQ(r.errors[0].node(), "src");
  // The store was not completed: no final file, only the resumable .partial.
  EXPECT_FALSE(fs::exists(dir_ / "run" / "y.h5"));
  EXPECT_TRUE(fs::exists(dir_ / "run" / "y.h5.partial"));
}

TEST_F(RuntimeTest, EndOfStreamOutputFeedsASideInput) {
  const RunResult r = run(write("p.yaml", R"(
graph: {max_in_flight: 64}
channels: {shifted: {store: shifted.h5}, sums: {store: sums.h5}}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 40, shape: [3], fill: index}, outputs: {out: x}}
  - {name: total, type: rttest.total, inputs: {in: x}, outputs: {total: sums}}
  - {name: shift, type: rttest.add_side, inputs: {in: x, total: sums}, outputs: {out: shifted}}
  - {name: sink, type: core.null_sink, inputs: {in: shifted}}
)"));
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto sums = read_store(dir_ / "run" / "sums.h5");
  ASSERT_EQ(sums.size(), 1u);
  const double total = 3.0 * (39 * 40 / 2);  // items are filled with their index
  EXPECT_EQ(sums[0].get("total").item<double>(), total);
  const auto shifted = read_store(dir_ / "run" / "shifted.h5");
  ASSERT_EQ(shifted.size(), 40u);
  EXPECT_EQ(shifted[7].get("x").data<float>()[2], static_cast<float>(7 + total));
}

TEST_F(RuntimeTest, StreamThatMustWaitForItsOwnSummaryIsReportedAsStalled) {
  // add_side needs the total of the whole stream before its first item, but at most 4 items
  // may be in flight: the runtime must say so instead of hanging.
  const RunResult r = run(write("p.yaml", R"(
graph: {max_in_flight: 4}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 40, shape: [3]}, outputs: {out: x}}
  - {name: total, type: rttest.total, inputs: {in: x}, outputs: {total: sums}}
  - {name: shift, type: rttest.add_side, inputs: {in: x, total: sums}, outputs: {out: y}}
  - {name: sink, type: core.null_sink, inputs: {in: y}}
)"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(errors_of(r).find("pipeline stalled"), std::string::npos) << errors_of(r);
  EXPECT_NE(errors_of(r).find("max_in_flight"), std::string::npos) << errors_of(r);
}

TEST_F(RuntimeTest, SourcesRepeatPerEpochWithEpochDependentRandomness) {
  const RunResult r = run(write("p.yaml", R"(
graph: {seed: 5, epochs: 3}
channels: {x: {store: x.h5}}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 10, shape: [2]}, outputs: {out: x}}
  - {name: batch, type: core.batch, options: {size: 4}, inputs: {in: x}, outputs: {out: b}}
  - {name: sink, type: core.null_sink, inputs: {in: b}}
)"));
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto items = read_store(dir_ / "run" / "x.h5");
  ASSERT_EQ(items.size(), 30u);
  Rng second_epoch_first_item = Rng::for_item(5, "src", 1, 0);
  EXPECT_EQ(items[10].get("x").data<float>()[0],
            static_cast<float>(second_epoch_first_item.uniform()));
  EXPECT_FALSE(items[0].get("x").equals(items[10].get("x")));
  const auto batch = std::find_if(r.nodes.begin(), r.nodes.end(),
                                  [](const NodeStats& s) { return s.name == "batch"; });
  EXPECT_EQ(batch->items_out, 9u);  // 4 + 4 + 2 per epoch: batches do not cross epochs
}

TEST_F(RuntimeTest, AnEpochsLastPartialBatchBelongsToThatEpoch) {
  const RunResult r = run(write("p.yaml", R"(
graph: {seed: 5, epochs: 3}
channels: {stamps: {store: stamps.h5}}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 10, shape: [2]}, outputs: {out: x}}
  - {name: batch, type: core.batch, options: {size: 4}, inputs: {in: x}, outputs: {out: b}}
  - {name: stamp, type: rttest.stamp, inputs: {in: b}, outputs: {out: stamps}}
  - {name: sink, type: core.null_sink, inputs: {in: stamps}}
)"));
  ASSERT_TRUE(r.ok()) << errors_of(r);
  const auto items = read_store(dir_ / "run" / "stamps.h5");
  ASSERT_EQ(items.size(), 9u);
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto field = [&](const char* name) { return items[i].get(name).data<std::int64_t>()[0]; };
    EXPECT_EQ(field("epoch"), static_cast<std::int64_t>(i / 3)) << "batch " << i;
    EXPECT_EQ(field("index"), static_cast<std::int64_t>(i % 3)) << "batch " << i;
    EXPECT_EQ(field("rows"), i % 3 == 2 ? 2 : 4) << "batch " << i;
  }
}

TEST_F(RuntimeTest, CompleteStoreIsReusedInsteadOfRecomputed) {
  const std::string yaml = write("p.yaml", R"(
graph: {seed: 3}
channels: {y: {store: y.h5}}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 50, shape: [4]}, outputs: {out: x}}
  - {name: scale, type: rttest.scale, inputs: {in: x}, outputs: {out: y}}
  - {name: total, type: rttest.total, inputs: {in: y}, outputs: {total: t}}
  - {name: sink, type: core.null_sink, inputs: {in: t}}
)");
  const RunResult first = run(yaml);
  ASSERT_TRUE(first.ok()) << errors_of(first);
  EXPECT_EQ(first.stores_written.size(), 1u);
  const RunResult second = run(yaml);
  ASSERT_TRUE(second.ok()) << errors_of(second);
  ASSERT_EQ(second.stores_reused.size(), 1u);
  for (const auto& n : second.nodes) {
    if (n.name == "src" || n.name == "scale") {
      EXPECT_TRUE(n.skipped) << n.name;
    }
    if (n.name == "total") {
      EXPECT_EQ(n.items_in, 50u);
    }
  }
  // A changed option upstream changes the hash: recomputed, not reused.
  const RunResult third = run(yaml, {"src.count=60"});
  ASSERT_TRUE(third.ok()) << errors_of(third);
  EXPECT_TRUE(third.stores_reused.empty());
  EXPECT_EQ(read_store(dir_ / "run" / "y.h5").size(), 60u);
}

TEST_F(RuntimeTest, AReplayedStoreKeepsTheEpochsOfItsStream) {
  // x is stored from a 3-epoch stream; when it is read back instead of recomputed, its
  // consumer must see the same (epoch, index) positions as on the first run.
  const std::string yaml = write("p.yaml", R"(
graph: {seed: 3, epochs: 3}
channels: {x: {store: x.h5}, stamps: {store: stamps.h5}}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 5, shape: [2]}, outputs: {out: x}}
  - {name: stamp, type: rttest.stamp, inputs: {in: x}, outputs: {out: stamps}}
)");
  const auto positions = [this] {
    std::vector<std::pair<std::int64_t, std::int64_t>> out;
    for (const auto& item : read_store(dir_ / "run" / "stamps.h5")) {
      out.emplace_back(item.get("epoch").item<std::int64_t>(),
                       item.get("index").item<std::int64_t>());
    }
    return out;
  };
  const RunResult first = run(yaml);
  ASSERT_TRUE(first.ok()) << errors_of(first);
  const auto computed = positions();
  ASSERT_EQ(computed.size(), 15u);
  EXPECT_EQ(computed[7], std::make_pair(std::int64_t{1}, std::int64_t{2}));
  fs::remove(dir_ / "run" / "stamps.h5");
  const RunResult second = run(yaml);
  ASSERT_TRUE(second.ok()) << errors_of(second);
  ASSERT_EQ(second.stores_reused.size(), 1u);  // x.h5, replayed for the stamp node
  EXPECT_EQ(positions(), computed);
}

}  // namespace
}  // namespace w2p
