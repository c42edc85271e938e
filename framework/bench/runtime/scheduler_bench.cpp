// Scheduler overhead per item through a 5-node chain (source -> 3 x examples.gain -> sink) with
// tiny items, and in-memory channel throughput with wav2pos-sized items (f32[7,16000]).
// The items/s counter is the figure; per-item overhead = 1 / (items/s).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/pipeline_config.hpp"
#include "graph/pipeline_graph.hpp"
#include "nodes/builtin_nodes.hpp"
#include "plugin/plugin_catalog.hpp"
#include "run/runtime.hpp"

namespace fs = std::filesystem;

namespace {

void run_pipeline(benchmark::State& state, const std::string& yaml, std::int64_t items,
                  std::int64_t bytes_per_item) {
  const fs::path dir = fs::temp_directory_path() / ("w2p_sched_bench_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "p.yaml") << yaml;
  w2p::PluginCatalog catalog;
  catalog.add_builtin(w2p::builtin_node_types());
  catalog.load_directory(W2P_EXAMPLES_PLUGIN_DIR);
  w2p::ConfigOverrides o;
  o.run_dir = (dir / "run").string();
  o.sets.push_back("graph.threads=" + std::to_string(state.range(0)));
  const w2p::PipelineGraph graph =
      w2p::build_graph(w2p::load_pipeline((dir / "p.yaml").string(), o), catalog);
  w2p::RunOptions options;
  options.quiet = true;
  for (auto _ : state) {
    const w2p::RunResult r = w2p::run_graph(graph, catalog, options);
    if (!r.ok()) state.SkipWithError(r.errors.empty() ? "cancelled" : r.errors[0].what());
  }
  state.SetItemsProcessed(state.iterations() * items);
  state.SetBytesProcessed(state.iterations() * items * bytes_per_item);
  fs::remove_all(dir);
}

void BM_FiveNodeChain(benchmark::State& state) {
  run_pipeline(state, R"(
graph: {max_in_flight: 256}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 20000, shape: [1], fill: index}, outputs: {out: a}}
  - {name: g1, type: examples.gain, options: {gain: 1.0}, inputs: {in: a}, outputs: {out: b}}
  - {name: g2, type: examples.gain, options: {gain: 1.0}, inputs: {in: b}, outputs: {out: c}}
  - {name: g3, type: examples.gain, options: {gain: 1.0}, inputs: {in: c}, outputs: {out: d}}
  - {name: sink, type: core.null_sink, inputs: {in: d}}
)",
               20000, 4);
}
BENCHMARK(BM_FiveNodeChain)
    ->Arg(1)
    ->Arg(2)
    ->ArgName("threads")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_ChannelThroughputInMemory(benchmark::State& state) {
  // Items are created by the source (the cost of zero-filled f32[7,16000] tensors is part of it).
  run_pipeline(state, R"(
graph: {max_in_flight: 16}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 500, shape: [7, 16000], fill: index}, outputs: {out: a}}
  - {name: sink, type: core.null_sink, inputs: {in: a}}
)",
               500, 7 * 16000 * 4);
}
BENCHMARK(BM_ChannelThroughputInMemory)
    ->Arg(1)
    ->Arg(2)
    ->ArgName("threads")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
