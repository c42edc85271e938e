// w2p::Node, w2p::NodeContext and w2p::NodeType: how a plugin's processing step is written.
//
// Lifecycle (MediaPipe-like), driven by the runtime:
//   declare(options) -> Contract   once per node in the graph, before anything runs
//   create(options)  -> Node       once per node, after the whole graph validated
//   open(ctx)                      once; side inputs are available; throw w2p::Error to fail
//   process(ctx)                   per input position (a source: until it returns
//                                  kEndOfStream, then again per epoch if repeatable)
//   end_epoch(ctx)                 kAny nodes: once per epoch of their input, after its last
//                                  item (before the next epoch's first, or before finish)
//   finish(ctx)                    once after the last input (kAny nodes may emit here)
//   close(ctx)                     once if open() succeeded, also after errors and Ctrl-C
// Threading: with max_concurrency(n > 1), process() runs on up to n threads at once for
// different positions; open/finish/close never overlap anything. A NodeContext is valid only
// during the call it is passed to; nodes never keep it. A kAny node that keeps input items
// across calls says so with ctx.hold() (graph.max_in_flight then counts them).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "w2p/contract.hpp"
#include "w2p/error.hpp"
#include "w2p/options.hpp"
#include "w2p/rng.hpp"
#include "w2p/tensor.hpp"

namespace w2p {

/// What a node may know about the run.
struct RunInfo {
  std::string node_name;
  std::string run_dir;      ///< absolute output directory of the run
  std::string pipeline;     ///< path of the pipeline YAML
  std::string config_hash;  ///< hash of the resolved configuration
  std::uint64_t seed = 0;
  int threads = 1;
  std::int64_t epochs = 1;  ///< epochs of the stream this node is in
  bool resume = false;      ///< --resume: continue from checkpoints where a node supports it
};

enum class Flow : std::uint8_t { kContinue, kEndOfStream };
enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarning };

class NodeContext {
 public:
  virtual ~NodeContext() = default;

  /// Item of a stream input for the current position.
  virtual const Item& in(Port port) const = 0;
  /// Single-field shorthand: the field named like the port.
  const Tensor& tensor(Port port) const { return in(port).get(port.name); }
  virtual bool connected(Port port) const = 0;
  /// Every item of a side input, in stream order.
  virtual const std::vector<Item>& side(Port port) const = 0;

  /// Emits an item on an output (checked against the declared schema; an unconnected
  /// optional output discards it).
  virtual void emit(Port port, Item item) = 0;
  void emit(Port port, Tensor tensor) { emit(port, Item{{port.name, std::move(tensor)}}); }

  /// Stream position of the current input (sources: of the item to produce).
  virtual std::uint64_t seq() const = 0;
  virtual std::uint64_t epoch() const = 0;
  /// Position within the epoch.
  virtual std::uint64_t index() const = 0;
  /// Generator for this (node, epoch, index): identical at any thread count.
  virtual Rng rng() const = 0;

  virtual const RunInfo& run() const = 0;
  virtual void log(LogLevel level, std::string_view message) const = 0;
  void info(std::string_view message) const { log(LogLevel::kInfo, message); }
  void warn(std::string_view message) const { log(LogLevel::kWarning, message); }
  /// Short status shown on the progress line (e.g. "epoch 3/30 loss 0.41").
  virtual void status(std::string_view text) = 0;
  /// Expected number of items this source produces per epoch (enables ETA), if known.
  virtual void expect_items(std::uint64_t count) = 0;
  /// kAny nodes, from process(): the node keeps the current input beyond this call (to batch
  /// it). The source items it came from then stay counted against graph.max_in_flight until
  /// the node's next emission, which carries them on, or the end of the epoch, so what a node
  /// buffers is bounded like everything else in flight. Without it they stop counting once
  /// process() returns.
  virtual void hold() = 0;
  /// True once the run is being stopped (Ctrl-C or an error elsewhere): long loops return.
  virtual bool stop_requested() const = 0;
};

class Node {
 public:
  virtual ~Node() = default;
  virtual void open(NodeContext& /*ctx*/) {}
  virtual Flow process(NodeContext& ctx) = 0;
  /// kAny nodes (serial, in stream order): every item of epoch ctx.epoch() has been processed.
  /// What it emits belongs to that epoch, e.g. a batch's last, incomplete part.
  virtual void end_epoch(NodeContext& /*ctx*/) {}
  virtual void finish(NodeContext& /*ctx*/) {}
  virtual void close(NodeContext& /*ctx*/) {}
};

/// "item 12 of epoch 0 (utterance_id '61-70968-0000')": names the current item in error
/// messages; the utterance id is added when `item` has one.
std::string describe_item(const NodeContext& ctx, const Item* item = nullptr);

/// A kind of node, as a plugin registers it.
struct NodeType {
  std::string id;   ///< "<plugin>.<node>", e.g. "roomsim.shoebox"
  std::string doc;  ///< one paragraph for w2p-inspect
  std::vector<OptionSpec> options;
  std::function<Contract(const Options&)> declare;
  std::function<std::unique_ptr<Node>(const Options&)> create;
};

/// NodeType for a class N with `static constexpr const char* kDoc`, `static
/// std::vector<OptionSpec> options()`, `static Contract declare(const Options&)` and a
/// constructor taking `const Options&`.
template <typename N>
NodeType make_node_type(std::string id) {
  NodeType t;
  t.id = std::move(id);
  t.doc = N::kDoc;
  t.options = N::options();
  t.declare = [](const Options& o) { return N::declare(o); };
  t.create = [](const Options& o) -> std::unique_ptr<Node> { return std::make_unique<N>(o); };
  return t;
}

}  // namespace w2p
