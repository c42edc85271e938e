// Runs a validated PipelineGraph on one oneTBB flow graph.
//
// Per node the flow graph holds: sources as input_node (created inactive, activated once wired
// and opened) -> limiter_node (max_in_flight) -> a fan-out function_node; other nodes as an
// entry function_node (joins stream inputs by position, collects side inputs, holds items
// until side inputs are complete) -> sequencer_node (ordered nodes) -> a function_node with the
// contract's concurrency. Each channel is a broadcast_node; a stored channel adds a sequencer
// and a serial writer. Items carry tokens of the source items they came from: a source's
// limiter slot frees when the last item derived from it is done, so memory stays flat.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graph/pipeline_graph.hpp"

namespace w2p {

class PluginCatalog;

struct RunOptions {
  bool quiet = false;
  bool resume = false;
  /// Where progress lines and node logs go (default: stderr).
  std::function<void(const std::string&)> print;
};

struct NodeStats {
  std::string name;
  std::string type;
  std::uint64_t items_in = 0;
  std::uint64_t items_out = 0;
  double busy_seconds = 0;
  bool skipped = false;             ///< not run: its stored outputs were reused
  std::int64_t peak_in_flight = 0;  ///< sources: most items in flight at once
};

struct RunResult {
  std::vector<Error> errors;  ///< empty on success
  bool cancelled = false;     ///< Ctrl-C
  std::vector<NodeStats> nodes;
  std::vector<std::string> stores_written;
  std::vector<std::string> stores_reused;
  double seconds = 0;
  bool ok() const { return errors.empty() && !cancelled; }
};

/// Runs the graph to completion (or the first error, or Ctrl-C). Never throws for node errors:
/// they are returned with the node named.
RunResult run_graph(const PipelineGraph& graph, const PluginCatalog& catalog,
                    const RunOptions& options);

/// Asks a running graph to stop (async-signal-safe: only sets a flag).
void request_stop();
bool stop_requested_globally();

}  // namespace w2p
