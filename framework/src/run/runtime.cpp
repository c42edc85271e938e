#include "run/runtime.hpp"

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "channel/hdf5_store.hpp"
#include "nodes/store_reader_node.hpp"
#include "plugin/plugin_catalog.hpp"
#include "run/progress.hpp"
#include "w2p/version.hpp"

namespace fs = std::filesystem;
namespace flow = tbb::flow;

namespace w2p {

namespace {
volatile std::sig_atomic_t g_stop_signal = 0;
}  // namespace

void request_stop() { g_stop_signal = 1; }
bool stop_requested_globally() { return g_stop_signal != 0; }

namespace {

using Clock = std::chrono::steady_clock;

// ---- messages --------------------------------------------------------------------------------

/// Frees one slot of a source's limiter when the last item derived from a source item is gone.
struct SourceGate {
  flow::limiter_node<struct SourceOut>* limiter = nullptr;
  std::string source;         // the source node's name, for errors
  std::int64_t capacity = 0;  // graph.max_in_flight
  std::atomic<bool> live{true};
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::int64_t> peak{0};
  void acquire() {
    const std::int64_t now = ++in_flight;
    std::int64_t p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
  }
  void release();
};

struct Token {
  std::shared_ptr<SourceGate> gate;
  ~Token() { gate->release(); }
};
using Tokens = std::vector<std::shared_ptr<Token>>;

/// Tokens of the inputs a kAny node keeps (ctx.hold()), passed on with its next emission, and
/// how many distinct source items they are per source (several inputs may come from one source
/// item, e.g. the scenes made of one utterance).
struct HeldItems {
  Tokens tokens;
  std::set<const Token*> distinct;
  std::map<const SourceGate*, std::int64_t> per_source;
  void add(const Tokens& position) {
    for (const auto& token : position) {
      if (!distinct.insert(token.get()).second) continue;
      tokens.push_back(token);
      ++per_source[token->gate.get()];
    }
  }
  void clear() {
    tokens.clear();
    distinct.clear();
    per_source.clear();
  }
};

struct Envelope {
  std::uint64_t seq = 0;
  std::uint64_t epoch = 0;
  std::uint64_t index = 0;
  std::shared_ptr<const Item> item;
  Tokens tokens;
};
using EnvelopePtr = std::shared_ptr<const Envelope>;

struct Delivery {
  int channel = -1;
  EnvelopePtr env;
};

/// The inputs of one process() call: one item per connected stream input.
struct Position {
  std::uint64_t seq = 0;
  std::uint64_t epoch = 0;
  std::uint64_t index = 0;
  std::vector<std::shared_ptr<const Item>> items;
  Tokens tokens;
};

struct Emission {
  std::string port;
  Item item;
};

struct SourceOut {
  std::uint64_t seq = 0;
  std::uint64_t epoch = 0;
  std::uint64_t index = 0;
  std::vector<Emission> emissions;
};

void SourceGate::release() {
  --in_flight;
  if (live.load()) limiter->decrementer().try_put(flow::continue_msg());
}

class Run;
struct NodeRuntime;

// ---- per-channel state -------------------------------------------------------------------------

struct ChannelRuntime {
  const GraphChannel* spec = nullptr;
  int index = -1;
  std::unique_ptr<flow::broadcast_node<Delivery>> broadcast;
  std::atomic<std::uint64_t> sent{0};
  std::atomic<bool> closed{false};
  // Store sink.
  std::unique_ptr<StoreWriter> writer;
  std::unique_ptr<flow::sequencer_node<Delivery>> store_sequencer;
  std::unique_ptr<flow::function_node<Delivery>> store_sink;
  std::atomic<std::uint64_t> store_seen{0};
  std::vector<std::uint64_t> epoch_items;  // stored items per epoch (the writer is serial)
  std::mutex store_mutex;
  bool committed = false;
};

// ---- per-node state ----------------------------------------------------------------------------

struct NodeRuntime {
  const GraphNode* spec = nullptr;
  int index = -1;
  std::string type_id;
  std::shared_ptr<Node> node;
  RunInfo info;
  bool is_source = false;
  bool ordered = false;
  bool one_to_one = true;

  // Flow graph nodes.
  std::unique_ptr<flow::input_node<SourceOut>> source;
  std::unique_ptr<flow::limiter_node<SourceOut>> limiter;
  std::unique_ptr<flow::function_node<SourceOut>> fanout;
  std::shared_ptr<SourceGate> gate;
  std::unique_ptr<flow::function_node<Delivery>> entry;
  std::unique_ptr<flow::sequencer_node<Position>> sequencer;
  std::unique_ptr<flow::function_node<Position>> process;

  std::mutex mutex;
  // Stream inputs: slot per stream port.
  std::map<std::uint64_t, Position> partial;  // join by seq
  std::vector<std::optional<std::uint64_t>> stream_expected;
  std::atomic<std::uint64_t> positions_done{0};
  // Side inputs.
  std::vector<std::vector<std::pair<std::uint64_t, Item>>> side_received;
  std::vector<std::optional<std::uint64_t>> side_expected;
  std::vector<std::vector<Item>> side_items;
  bool ready = false;  // opened and side inputs complete
  std::deque<Position> pending;
  bool opened = false;
  bool finished = false;
  // Sources.
  std::uint64_t src_seq = 0, src_epoch = 0, src_index = 0;
  bool src_epoch_over = false;
  std::atomic<std::uint64_t> src_produced{0};
  std::atomic<std::uint64_t> src_forwarded{0};
  std::atomic<bool> src_done{false};
  // kAny outputs: per-port position counters within the current epoch.
  std::map<std::string, std::uint64_t> out_index;
  std::uint64_t last_epoch = 0;
  HeldItems held;  // kAny nodes: the inputs kept by ctx.hold()

  // Statistics.
  std::atomic<std::uint64_t> items_in{0};
  std::atomic<std::uint64_t> items_out{0};
  std::atomic<std::int64_t> busy_ns{0};
  std::atomic<std::uint64_t> expected_per_epoch{0};
  std::mutex status_mutex;
  std::string status;
};

// ---- the NodeContext handed to node code
// ----------------------------------------------------------

class CallContext final : public NodeContext {
 public:
  /// `out` null: emitting is not allowed (open, close); `per_item`: one process() call.
  CallContext(Run& run, NodeRuntime& n, const Position* pos, std::uint64_t seq, std::uint64_t epoch,
              std::uint64_t index, std::vector<Emission>* out, bool per_item)
      : run_(run),
        n_(n),
        pos_(pos),
        seq_(seq),
        epoch_(epoch),
        index_(index),
        out_(out),
        per_item_(per_item) {}

  const Item& in(Port port) const override;
  bool connected(Port port) const override;
  const std::vector<Item>& side(Port port) const override;
  void emit(Port port, Item item) override;
  std::uint64_t seq() const override { return seq_; }
  std::uint64_t epoch() const override { return epoch_; }
  std::uint64_t index() const override { return index_; }
  Rng rng() const override {
    return Rng::for_item(n_.info.seed, n_.info.node_name, epoch_, index_);
  }
  const RunInfo& run() const override { return n_.info; }
  void log(LogLevel level, std::string_view message) const override;
  void status(std::string_view text) override {
    std::lock_guard<std::mutex> lock(n_.status_mutex);
    n_.status = std::string(text);
  }
  void expect_items(std::uint64_t count) override { n_.expected_per_epoch = count; }
  void hold() override;
  bool stop_requested() const override;
  bool held() const { return held_; }

 private:
  Run& run_;
  NodeRuntime& n_;
  const Position* pos_;
  std::uint64_t seq_, epoch_, index_;
  std::vector<Emission>* out_;
  bool per_item_;
  bool held_ = false;
};

// ---- the run -----------------------------------------------------------------------------------

class Run {
 public:
  Run(const PipelineGraph& graph, const PluginCatalog& catalog, const RunOptions& options)
      : graph_(graph), catalog_(catalog), options_(options) {}

  RunResult execute();

  // Called from node code and flow-graph bodies.
  void fail(Error e) {
    {
      std::lock_guard<std::mutex> lock(error_mutex_);
      errors_.push_back(std::move(e));
    }
    cancel();
  }
  void cancel() {
    cancelled_ = true;
    if (graph_flow_) graph_flow_->cancel();
  }
  bool stopping() const { return cancelled_.load() || stop_requested_globally(); }
  void log(const std::string& line) {
    if (progress_) {
      progress_->log(line);
    } else if (options_.print) {
      options_.print(line + "\n");
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  }
  const Schema& output_schema(const NodeRuntime& n, const std::string& port) const {
    return graph_.channels[static_cast<std::size_t>(n.spec->outputs.at(port))].schema;
  }
  void check_emission(const NodeRuntime& n, const std::string& port, const Item& item) const;

 private:
  void prepare_channels();
  bool plan_reuse();
  void build_flow();
  void build_source(NodeRuntime& n);
  void build_consumer(NodeRuntime& n);
  void open_node(NodeRuntime& n);
  void route(NodeRuntime& n, Position p);
  void on_delivery(NodeRuntime& n, const Delivery& d);
  void run_process(NodeRuntime& n, const Position& p);
  void end_epoch(NodeRuntime& n);
  SourceOut run_source(NodeRuntime& n, tbb::flow_control& fc);
  void forward_source(NodeRuntime& n, const SourceOut& out);
  /// Sends emissions to their channels; `renumber`: new positions (kAny nodes, finish()).
  void deliver(NodeRuntime& n, std::vector<Emission>& emissions, bool renumber, std::uint64_t seq,
               std::uint64_t epoch, std::uint64_t index, const Tokens& tokens);
  /// Fails the run when a node holds as many items of a source as may be in flight: none
  /// could arrive any more, so the node would wait forever.
  void check_held(NodeRuntime& n);
  void check_complete(NodeRuntime& n);
  void check_source_complete(NodeRuntime& n);
  void complete(NodeRuntime& n);
  void on_channel_closed(int channel);
  void check_side_ready(NodeRuntime& n);
  void on_store_item(ChannelRuntime& c, const Delivery& d);
  void check_store_complete(ChannelRuntime& c);
  Error node_error(const NodeRuntime& n, const std::exception& e, const char* where) const;
  template <typename F>
  bool guarded(NodeRuntime& n, const char* where, F&& f);
  std::vector<ProgressRow> snapshot();

  friend class CallContext;

  const PipelineGraph& graph_;
  const PluginCatalog& catalog_;
  const RunOptions& options_;
  std::vector<std::unique_ptr<NodeRuntime>> nodes_;
  std::vector<std::unique_ptr<ChannelRuntime>> channels_;
  std::vector<GraphNode> replay_nodes_;  // sources replaying reused stores
  std::vector<std::string> reused_;
  std::set<int> skipped_nodes_;
  std::unique_ptr<flow::graph> graph_flow_;
  std::unique_ptr<ProgressReporter> progress_;
  std::atomic<bool> cancelled_{false};
  std::mutex error_mutex_;
  std::vector<Error> errors_;
};

// ---- CallContext
// -----------------------------------------------------------------------------------

const Item& CallContext::in(Port port) const {
  const auto& ports = n_.spec->stream_ports;
  const auto it = std::find(ports.begin(), ports.end(), port.name);
  if (it == ports.end() || pos_ == nullptr) {
    throw Error(ErrorKind::kInternal,
                std::string("input '") + port.name + "' is not a connected stream input here");
  }
  return *pos_->items[static_cast<std::size_t>(it - ports.begin())];
}

bool CallContext::connected(Port port) const {
  const auto& s = n_.spec->stream_ports;
  const auto& d = n_.spec->side_ports;
  return std::find(s.begin(), s.end(), port.name) != s.end() ||
         std::find(d.begin(), d.end(), port.name) != d.end() ||
         n_.spec->outputs.count(port.name) != 0;
}

const std::vector<Item>& CallContext::side(Port port) const {
  const auto& ports = n_.spec->side_ports;
  const auto it = std::find(ports.begin(), ports.end(), port.name);
  if (it == ports.end()) {
    static const std::vector<Item> kEmpty;
    if (n_.spec->contract.find_input(port.name) != nullptr) return kEmpty;  // optional
    throw Error(ErrorKind::kInternal, std::string("'") + port.name + "' is not a side input");
  }
  return n_.side_items[static_cast<std::size_t>(it - ports.begin())];
}

void CallContext::emit(Port port, Item item) {
  if (n_.spec->contract.find_output(port.name) == nullptr) {
    throw Error(ErrorKind::kInternal,
                std::string("emitted on undeclared output '") + port.name + "'");
  }
  if (out_ == nullptr) {
    throw Error(ErrorKind::kInternal,
                "emit() called in open() or close(); emit in process() "
                "or finish()");
  }
  if (n_.spec->outputs.count(port.name) == 0) return;  // optional output left unconnected
  run_.check_emission(n_, port.name, item);
  if (n_.one_to_one && per_item_) {
    for (const auto& e : *out_) {
      if (e.port == port.name) {
        throw Error(ErrorKind::kInternal,
                    std::string("emitted twice on output '") + port.name +
                        "' for one input; declare Cardinality::kAny to emit several items");
      }
    }
  }
  out_->push_back({port.name, std::move(item)});
}

void CallContext::log(LogLevel level, std::string_view message) const {
  if (level == LogLevel::kDebug) return;
  run_.log(std::string(level == LogLevel::kWarning ? "warning: " : "") + "[" + n_.info.node_name +
           "] " + std::string(message));
}

bool CallContext::stop_requested() const { return run_.stopping(); }

void CallContext::hold() {
  if (n_.one_to_one || n_.is_source || !per_item_) {
    throw Error(ErrorKind::kInternal,
                "hold() called outside process() of a Cardinality::kAny node with stream "
                "inputs; a one-to-one node's output carries its input's place in flight already");
  }
  held_ = true;
}

// ---- Run
// ------------------------------------------------------------------------------------------

void Run::check_emission(const NodeRuntime& n, const std::string& port, const Item& item) const {
  const Schema& schema = output_schema(n, port);
  for (const auto& f : schema.fields) {
    if (!item.has(f.name)) {
      throw Error(ErrorKind::kType, "output '" + port + "': emitted item lacks field '" + f.name +
                                        "' (declared " + schema.str() + ")");
    }
    const Tensor& t = item.get(f.name);
    if (!f.spec.accepts(t)) {
      throw Error(ErrorKind::kType,
                  "output '" + port + "': field '" + f.name + "' is " +
                      (t.defined() ? std::string(to_string(t.dtype())) + shape_to_string(t.shape())
                                   : std::string("undefined")) +
                      ", declared " + f.spec.str());
    }
  }
}

Error Run::node_error(const NodeRuntime& n, const std::exception& e, const char* where) const {
  Error out = [&] {
    if (const auto* we = dynamic_cast<const Error*>(&e)) return *we;
    return Error(ErrorKind::kInternal, std::string("unexpected exception: ") + e.what());
  }();
  Error framed(
      out.kind(),
      "node '" + n.spec->name + "' (" + n.type_id + ") failed in " + where + ": " + out.message(),
      out.detail());
  framed.in_node(n.spec->name);
  if (out.location().known()) framed.at(out.location());
  for (const auto& note : out.notes()) framed.note(note);
  return framed;
}

template <typename F>
bool Run::guarded(NodeRuntime& n, const char* where, F&& f) {
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    fail(node_error(n, e, where));
  } catch (...) {
    fail(Error(ErrorKind::kInternal,
               "node '" + n.spec->name + "' threw a non-standard exception in " + where)
             .in_node(n.spec->name));
  }
  return false;
}

// Which stored channels can be read back instead of recomputed, and which nodes that spares.
bool Run::plan_reuse() {
  std::set<int> reused;
  for (std::size_t ci = 0; ci < graph_.channels.size(); ++ci) {
    const GraphChannel& c = graph_.channels[ci];
    if (!c.config.store.empty() && store_is_complete(c.config.store, c.upstream_hash)) {
      reused.insert(static_cast<int>(ci));
    }
  }
  if (reused.empty()) return true;
  // A node is needed when a consumer of one of its not-reused outputs is needed, or when it is
  // a sink, or when it writes a store that is not complete.
  std::vector<bool> needed(graph_.nodes.size(), false);
  for (auto it = graph_.order.rbegin(); it != graph_.order.rend(); ++it) {
    const GraphNode& n = graph_.nodes[static_cast<std::size_t>(*it)];
    bool need = n.outputs.empty();
    for (const auto& [port, ch] : n.outputs) {
      if (reused.count(ch) != 0) continue;
      const GraphChannel& c = graph_.channels[static_cast<std::size_t>(ch)];
      if (!c.config.store.empty()) need = true;
      for (const auto& consumer : c.consumers) {
        if (needed[static_cast<std::size_t>(consumer.node)]) need = true;
      }
    }
    needed[static_cast<std::size_t>(*it)] = need;
  }
  for (std::size_t i = 0; i < needed.size(); ++i) {
    if (!needed[i]) skipped_nodes_.insert(static_cast<int>(i));
  }
  for (int ch : reused) {
    const GraphChannel& c = graph_.channels[static_cast<std::size_t>(ch)];
    if (skipped_nodes_.count(c.producer) == 0) continue;  // its producer runs anyway
    reused_.push_back(c.config.store);
    bool consumed = false;
    for (const auto& consumer : c.consumers) {
      if (needed[static_cast<std::size_t>(consumer.node)]) consumed = true;
    }
    if (!consumed) continue;
    GraphNode replay;
    replay.name = c.name + ".replay";
    replay.type = catalog_.find("core.store_reader");
    W2P_ASSERT(replay.type != nullptr, "core.store_reader is not registered");
    std::map<std::string, OptionValue> values;
    for (const auto& spec : replay.type->type().options) {
      if (spec.default_value) values[spec.key] = *spec.default_value;
    }
    values["path"] = c.config.store;
    values["store_epochs"] = true;  // the consumers see the epochs the producer made
    replay.options = Options(values);
    try {
      replay.contract = replay.type->declare(replay.options);
      replay.epochs = static_cast<std::int64_t>(StoreReader(c.config.store).epoch_items().size());
    } catch (const Error& e) {
      errors_.push_back(e);
      return false;
    }
    replay.outputs["items"] = ch;
    replay.location = c.config.location;
    replay_nodes_.push_back(std::move(replay));
  }
  return true;
}

void Run::prepare_channels() {
  for (std::size_t ci = 0; ci < graph_.channels.size(); ++ci) {
    auto c = std::make_unique<ChannelRuntime>();
    c->spec = &graph_.channels[ci];
    c->index = static_cast<int>(ci);
    channels_.push_back(std::move(c));
  }
}

void Run::open_node(NodeRuntime& n) {
  const bool ok = guarded(n, "open()", [&] {
    CallContext ctx(*this, n, nullptr, 0, 0, 0, nullptr, false);
    n.node->open(ctx);
  });
  std::lock_guard<std::mutex> lock(n.mutex);
  n.opened = ok;
}

void Run::build_flow() {
  flow::graph& g = *graph_flow_;
  for (auto& c : channels_) {
    if (c->spec->producer < 0 && c->spec->consumers.empty()) continue;
    c->broadcast = std::make_unique<flow::broadcast_node<Delivery>>(g);
    const std::string& store = c->spec->config.store;
    const bool producer_runs =
        c->spec->producer >= 0 && skipped_nodes_.count(c->spec->producer) == 0;
    if (store.empty() || !producer_runs) continue;
    std::map<std::string, std::string> attrs{
        {"config_hash", c->spec->upstream_hash},
        {"pipeline", graph_.config.file},
        {"channel", c->spec->name},
        {"framework_version", framework_version()},
        {"seed", std::to_string(graph_.config.graph.seed)},
    };
    std::string plugins;
    for (const auto& p : catalog_.plugins()) plugins += p->name + "@" + p->version + " ";
    attrs["plugins"] = plugins;
    attrs["producer"] = graph_.nodes[static_cast<std::size_t>(c->spec->producer)].name;
    StoreOptions so;
    so.chunk_items = static_cast<std::uint64_t>(c->spec->config.chunk_items);
    so.compression_level = c->spec->config.compression;
    fs::create_directories(fs::path(store).parent_path());
    c->writer = std::make_unique<StoreWriter>(store, c->spec->schema, attrs, so);
    if (c->writer->resumed_items() > 0) {
      log("[" + c->spec->name + "] resuming store " + store + " after " +
          std::to_string(c->writer->resumed_items()) + " complete items");
    }
    c->store_sequencer = std::make_unique<flow::sequencer_node<Delivery>>(
        g, [](const Delivery& d) { return static_cast<std::size_t>(d.env->seq); });
    ChannelRuntime* cp = c.get();
    c->store_sink = std::make_unique<flow::function_node<Delivery>>(
        g, flow::serial, [this, cp](const Delivery& d) { on_store_item(*cp, d); });
    flow::make_edge(*c->broadcast, *c->store_sequencer);
    flow::make_edge(*c->store_sequencer, *c->store_sink);
  }
  const auto add_node = [&](const GraphNode& spec, int index) {
    auto n = std::make_unique<NodeRuntime>();
    n->spec = &spec;
    n->index = index;
    n->type_id = spec.type->type().id;
    n->is_source = spec.contract.is_source();
    n->ordered = spec.contract.is_ordered();
    n->one_to_one = spec.contract.get_cardinality() == Cardinality::kOneToOne;
    n->info.node_name = spec.name;
    n->info.run_dir = graph_.config.graph.run_dir;
    n->info.pipeline = graph_.config.file;
    n->info.config_hash = graph_.config_hash;
    n->info.seed = graph_.config.graph.seed;
    n->info.threads = static_cast<int>(tbb::this_task_arena::max_concurrency());
    n->info.epochs = spec.epochs;
    n->info.resume = options_.resume;
    n->stream_expected.resize(spec.stream_channels.size());
    n->side_expected.resize(spec.side_channels.size());
    n->side_received.resize(spec.side_channels.size());
    n->side_items.resize(spec.side_channels.size());
    nodes_.push_back(std::move(n));
  };
  for (std::size_t i = 0; i < graph_.nodes.size(); ++i) {
    add_node(graph_.nodes[i], static_cast<int>(i));
  }
  for (std::size_t i = 0; i < replay_nodes_.size(); ++i) {
    add_node(replay_nodes_[i], static_cast<int>(graph_.nodes.size() + i));
  }
  for (auto& n : nodes_) {
    if (n->index < static_cast<int>(graph_.nodes.size()) && skipped_nodes_.count(n->index)) {
      continue;
    }
    n->node = n->spec->type->create(n->spec->options);
    if (n->is_source) {
      build_source(*n);
    } else {
      build_consumer(*n);
    }
  }
}

void Run::build_source(NodeRuntime& n) {
  flow::graph& g = *graph_flow_;
  NodeRuntime* np = &n;
  n.source = std::make_unique<flow::input_node<SourceOut>>(
      g, [this, np](tbb::flow_control& fc) { return run_source(*np, fc); });
  // A source feeding a side input is read to its end whatever max_in_flight says: the side
  // input keeps every item anyway (sharing their tensors), and a limit could leave it waiting
  // forever behind this source's stream consumers, e.g. a test set that is both a trainer's
  // validation input and the stream of an evaluator that waits for the trained weights.
  const bool feeds_side_input =
      std::any_of(n.spec->outputs.begin(), n.spec->outputs.end(), [&](const auto& port_channel) {
        const auto& consumers =
            channels_[static_cast<std::size_t>(port_channel.second)]->spec->consumers;
        return std::any_of(consumers.begin(), consumers.end(),
                           [](const GraphChannel::Consumer& c) { return c.side; });
      });
  const std::int64_t capacity = feeds_side_input ? std::numeric_limits<std::int64_t>::max()
                                                 : graph_.config.graph.max_in_flight;
  n.limiter =
      std::make_unique<flow::limiter_node<SourceOut>>(g, static_cast<std::size_t>(capacity));
  n.gate = std::make_shared<SourceGate>();
  n.gate->limiter = n.limiter.get();
  n.gate->source = n.spec->name;
  n.gate->capacity = capacity;
  n.fanout = std::make_unique<flow::function_node<SourceOut>>(
      g, flow::unlimited, [this, np](const SourceOut& out) { forward_source(*np, out); });
  flow::make_edge(*n.source, *n.limiter);
  flow::make_edge(*n.limiter, *n.fanout);
  for (std::size_t s = 0; s < n.spec->side_channels.size(); ++s) {
    // Sources with side inputs still need an entry to collect them.
    if (!n.entry) {
      n.entry = std::make_unique<flow::function_node<Delivery>>(
          g, flow::unlimited, [this, np](const Delivery& d) { on_delivery(*np, d); });
    }
    flow::make_edge(*channels_[static_cast<std::size_t>(n.spec->side_channels[s])]->broadcast,
                    *n.entry);
  }
}

void Run::build_consumer(NodeRuntime& n) {
  flow::graph& g = *graph_flow_;
  NodeRuntime* np = &n;
  n.entry = std::make_unique<flow::function_node<Delivery>>(
      g, flow::unlimited, [this, np](const Delivery& d) { on_delivery(*np, d); });
  const int concurrency = n.spec->contract.concurrency();
  std::size_t c = static_cast<std::size_t>(flow::unlimited);
  if (n.ordered) {
    c = static_cast<std::size_t>(flow::serial);
  } else if (concurrency > 0) {
    c = static_cast<std::size_t>(concurrency);
  }
  n.process = std::make_unique<flow::function_node<Position>>(
      g, c, [this, np](const Position& p) { run_process(*np, p); });
  if (n.ordered) {
    n.sequencer = std::make_unique<flow::sequencer_node<Position>>(
        g, [](const Position& p) { return static_cast<std::size_t>(p.seq); });
    flow::make_edge(*n.sequencer, *n.process);
  }
  std::set<int> linked;
  for (int ch : n.spec->stream_channels) linked.insert(ch);
  for (int ch : n.spec->side_channels) linked.insert(ch);
  for (int ch : linked) {
    flow::make_edge(*channels_[static_cast<std::size_t>(ch)]->broadcast, *n.entry);
  }
}

void Run::on_delivery(NodeRuntime& n, const Delivery& d) {
  if (cancelled_) return;
  const GraphChannel& c = *channels_[static_cast<std::size_t>(d.channel)]->spec;
  // Side inputs first: collected until their producer ends.
  bool side_done = false;
  for (std::size_t s = 0; s < n.spec->side_channels.size(); ++s) {
    if (n.spec->side_channels[s] != d.channel) continue;
    std::lock_guard<std::mutex> lock(n.mutex);
    n.side_received[s].emplace_back(d.env->seq, *d.env->item);
    side_done = true;
  }
  if (side_done) check_side_ready(n);
  const auto& streams = n.spec->stream_channels;
  std::optional<Position> ready;
  for (std::size_t s = 0; s < streams.size(); ++s) {
    if (streams[s] != d.channel) continue;
    std::shared_ptr<const Item> item = d.env->item;
    for (const auto& consumer : c.consumers) {
      if (consumer.node == n.index && consumer.port == n.spec->stream_ports[s] &&
          !consumer.rename_from.empty()) {
        auto renamed = std::make_shared<Item>();
        renamed->set(consumer.port, item->get(consumer.rename_from));
        item = renamed;
      }
    }
    if (streams.size() == 1) {
      ready = Position{d.env->seq, d.env->epoch, d.env->index, {item}, d.env->tokens};
      continue;
    }
    std::lock_guard<std::mutex> lock(n.mutex);
    Position& p = n.partial[d.env->seq];
    if (p.items.empty()) {
      p = Position{d.env->seq, d.env->epoch, d.env->index, {}, {}};
      p.items.resize(streams.size());
    }
    p.items[s] = item;
    p.tokens.insert(p.tokens.end(), d.env->tokens.begin(), d.env->tokens.end());
    if (std::all_of(p.items.begin(), p.items.end(), [](const auto& i) { return i != nullptr; })) {
      ready = std::move(p);
      n.partial.erase(d.env->seq);
    }
  }
  if (ready) route(n, std::move(*ready));
}

void Run::route(NodeRuntime& n, Position p) {
  {
    std::lock_guard<std::mutex> lock(n.mutex);
    if (!n.ready) {
      n.pending.push_back(std::move(p));
      return;
    }
  }
  if (n.sequencer) {
    n.sequencer->try_put(p);
  } else {
    n.process->try_put(p);
  }
}

void Run::check_side_ready(NodeRuntime& n) {
  {
    std::lock_guard<std::mutex> lock(n.mutex);
    if (n.ready || n.finished) return;
    for (std::size_t s = 0; s < n.side_expected.size(); ++s) {
      if (!n.side_expected[s] || n.side_received[s].size() != *n.side_expected[s]) return;
    }
    for (std::size_t s = 0; s < n.side_received.size(); ++s) {
      auto& got = n.side_received[s];
      std::sort(got.begin(), got.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      n.side_items[s].clear();
      for (auto& [seq, item] : got) n.side_items[s].push_back(std::move(item));
      got.clear();
    }
  }
  open_node(n);
  if (!n.opened) return;
  std::deque<Position> pending;
  {
    std::lock_guard<std::mutex> lock(n.mutex);
    n.ready = true;
    pending.swap(n.pending);
  }
  if (n.is_source) {
    n.source->activate();
    return;
  }
  for (auto& p : pending) route(n, std::move(p));
  check_complete(n);
}

void Run::deliver(NodeRuntime& n, std::vector<Emission>& emissions, bool renumber,
                  std::uint64_t seq, std::uint64_t epoch, std::uint64_t index,
                  const Tokens& tokens) {
  const Tokens* carried = &tokens;
  Tokens with_held;
  if (!emissions.empty() && !n.held.tokens.empty()) {
    // What the node held (ctx.hold()) is in what it emits now: it travels on with it.
    with_held = tokens;
    with_held.insert(with_held.end(), n.held.tokens.begin(), n.held.tokens.end());
    n.held.clear();
    carried = &with_held;
  }
  for (auto& e : emissions) {
    ChannelRuntime& c = *channels_[static_cast<std::size_t>(n.spec->outputs.at(e.port))];
    auto env = std::make_shared<Envelope>();
    env->item = std::make_shared<const Item>(std::move(e.item));
    env->tokens = *carried;
    // Positions stay contiguous per channel: renumbered items (kAny nodes, end-of-stream
    // emissions) come after everything sent so far.
    const std::uint64_t position = c.sent.fetch_add(1);
    env->seq = renumber ? position : seq;
    env->epoch = epoch;
    env->index = renumber ? n.out_index[e.port]++ : index;
    ++n.items_out;
    c.broadcast->try_put(Delivery{c.index, env});
  }
}

void Run::run_process(NodeRuntime& n, const Position& p) {
  if (cancelled_) return;
  std::vector<Emission> out;
  const auto t0 = Clock::now();
  if (!n.one_to_one && p.epoch != n.last_epoch) {
    end_epoch(n);
    n.last_epoch = p.epoch;
    n.out_index.clear();
  }
  bool held = false;
  const bool ok = guarded(n, "process()", [&] {
    CallContext ctx(*this, n, &p, p.seq, p.epoch, p.index, &out, true);
    n.node->process(ctx);
    held = ctx.held();
    if (n.one_to_one) {
      for (const auto& [port, ch] : n.spec->outputs) {
        const bool emitted =
            std::any_of(out.begin(), out.end(), [&](const Emission& e) { return e.port == port; });
        if (!emitted) {
          throw Error(ErrorKind::kInternal,
                      "emitted nothing on output '" + port + "' for item " + std::to_string(p.seq) +
                          "; one-to-one nodes emit once per input on every connected output "
                          "(declare Cardinality::kAny to emit fewer or more)");
        }
      }
    }
  });
  n.busy_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  ++n.items_in;
  if (ok && held) n.held.add(p.tokens);
  static const Tokens kNoTokens;  // held ones travel with the node's next emission
  if (ok) deliver(n, out, !n.one_to_one, p.seq, p.epoch, p.index, held ? kNoTokens : p.tokens);
  if (ok && held) check_held(n);
  ++n.positions_done;
  check_complete(n);
}

void Run::check_held(NodeRuntime& n) {
  for (const auto& [gate, items] : n.held.per_source) {
    if (items < gate->capacity) continue;
    fail(Error(ErrorKind::kConfig,
               "node '" + n.spec->name + "' holds " + std::to_string(gate->capacity) +
                   " items of source '" + gate->source +
                   "' without emitting, as many as graph.max_in_flight lets be in flight: no "
                   "further item can arrive")
             .in_node(n.spec->name)
             .at(n.spec->location)
             .note("expected graph.max_in_flight above what the node collects before it "
                   "emits (e.g. a batch size), better a few times that so that the next batch "
                   "is read while this one is processed"));
    return;
  }
}

SourceOut Run::run_source(NodeRuntime& n, tbb::flow_control& fc) {
  SourceOut result;
  while (true) {
    if (stopping()) {
      fc.stop();
      n.src_done = true;
      return result;
    }
    if (n.src_epoch_over) {
      n.src_epoch_over = false;
      if (n.src_epoch + 1 >= static_cast<std::uint64_t>(n.spec->epochs)) {
        fc.stop();
        n.src_done = true;
        check_source_complete(n);
        return result;
      }
      ++n.src_epoch;
      n.src_index = 0;
    }
    std::vector<Emission> out;
    Flow flow_state = Flow::kContinue;
    const auto t0 = Clock::now();
    const bool ok = guarded(n, "process()", [&] {
      CallContext ctx(*this, n, nullptr, n.src_seq, n.src_epoch, n.src_index, &out, true);
      flow_state = n.node->process(ctx);
      if (!out.empty() || flow_state == Flow::kContinue) {
        for (const auto& [port, ch] : n.spec->outputs) {
          if (std::none_of(out.begin(), out.end(),
                           [&](const Emission& e) { return e.port == port; })) {
            throw Error(ErrorKind::kInternal,
                        "source emitted nothing on output '" + port + "' for item " +
                            std::to_string(n.src_index) + " of epoch " +
                            std::to_string(n.src_epoch) +
                            "; a source emits on every connected output per call, or returns "
                            "kEndOfStream");
          }
        }
      }
    });
    n.busy_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
    if (!ok) {
      fc.stop();
      n.src_done = true;
      return result;
    }
    if (flow_state == Flow::kEndOfStream) n.src_epoch_over = true;
    if (out.empty()) continue;
    result.seq = n.src_seq++;
    result.epoch = n.src_epoch;
    result.index = n.src_index++;
    result.emissions = std::move(out);
    ++n.src_produced;
    return result;
  }
}

void Run::forward_source(NodeRuntime& n, const SourceOut& out) {
  auto token = std::make_shared<Token>();
  token->gate = n.gate;
  n.gate->acquire();
  std::vector<Emission> emissions = out.emissions;
  ++n.items_in;
  deliver(n, emissions, false, out.seq, out.epoch, out.index, Tokens{token});
  ++n.src_forwarded;
  check_source_complete(n);
}

void Run::check_source_complete(NodeRuntime& n) {
  {
    std::lock_guard<std::mutex> lock(n.mutex);
    if (n.finished || !n.src_done || n.src_forwarded.load() != n.src_produced.load()) return;
    if (cancelled_) return;
    n.finished = true;
  }
  complete(n);
}

void Run::check_complete(NodeRuntime& n) {
  std::string mismatch;
  {
    std::lock_guard<std::mutex> lock(n.mutex);
    if (n.finished || !n.ready || cancelled_) return;
    std::optional<std::uint64_t> expected;
    for (std::size_t s = 0; s < n.stream_expected.size(); ++s) {
      if (!n.stream_expected[s]) return;
      if (expected && *expected != *n.stream_expected[s]) {
        mismatch = "inputs '" + n.spec->stream_ports[0] + "' and '" + n.spec->stream_ports[s] +
                   "' carried " + std::to_string(*expected) + " and " +
                   std::to_string(*n.stream_expected[s]) + " items";
      }
      expected = n.stream_expected[s];
    }
    if (mismatch.empty() && expected && n.positions_done.load() != *expected) return;
    n.finished = true;
  }
  if (!mismatch.empty()) {
    fail(Error(ErrorKind::kData, "node '" + n.spec->name + "': " + mismatch)
             .in_node(n.spec->name)
             .note("a node's stream inputs are joined by position and must come from the same "
                   "stream"));
    return;
  }
  complete(n);
}

// A kAny node's input moved past epoch n.last_epoch: what end_epoch() emits belongs to it and
// is numbered after that epoch's other outputs. Nothing to end before the first item.
void Run::end_epoch(NodeRuntime& n) {
  if (n.is_source || n.one_to_one || n.items_in == 0) return;
  std::vector<Emission> out;
  const bool ok = guarded(n, "end_epoch()", [&] {
    CallContext ctx(*this, n, nullptr, 0, n.last_epoch, 0, &out, false);
    n.node->end_epoch(ctx);
  });
  if (ok) deliver(n, out, true, 0, n.last_epoch, 0, {});
  n.held.clear();  // holds end with the epoch (e.g. a dropped last batch)
}

// End of a node's stream: the last epoch ends, finish() may emit (checkpoints, summaries), then
// outputs close.
void Run::complete(NodeRuntime& n) {
  end_epoch(n);
  std::vector<Emission> out;
  const bool ok = guarded(n, "finish()", [&] {
    CallContext ctx(*this, n, nullptr, 0, n.is_source ? n.src_epoch : n.last_epoch, 0, &out, false);
    n.node->finish(ctx);
  });
  if (!ok) return;
  deliver(n, out, true, 0, n.is_source ? n.src_epoch : n.last_epoch, 0, {});
  for (const auto& [port, ch] : n.spec->outputs) on_channel_closed(ch);
}

void Run::on_channel_closed(int channel) {
  ChannelRuntime& c = *channels_[static_cast<std::size_t>(channel)];
  c.closed = true;
  const std::uint64_t count = c.sent.load();
  if (c.writer) check_store_complete(c);
  std::set<NodeRuntime*> touched;
  for (const auto& consumer : c.spec->consumers) {
    NodeRuntime& n = *nodes_[static_cast<std::size_t>(consumer.node)];
    if (!n.node) continue;  // skipped
    std::lock_guard<std::mutex> lock(n.mutex);
    for (std::size_t s = 0; s < n.spec->stream_channels.size(); ++s) {
      if (n.spec->stream_channels[s] == channel) n.stream_expected[s] = count;
    }
    for (std::size_t s = 0; s < n.spec->side_channels.size(); ++s) {
      if (n.spec->side_channels[s] == channel) n.side_expected[s] = count;
    }
    touched.insert(&n);
  }
  for (NodeRuntime* n : touched) {
    check_side_ready(*n);
    check_complete(*n);
  }
}

void Run::on_store_item(ChannelRuntime& c, const Delivery& d) {
  if (cancelled_) return;
  try {
    if (d.env->epoch >= c.epoch_items.size()) c.epoch_items.resize(d.env->epoch + 1, 0);
    ++c.epoch_items[d.env->epoch];
    if (d.env->seq >= c.writer->resumed_items()) c.writer->append(*d.env->item);
  } catch (const std::exception& e) {
    Error err = dynamic_cast<const Error*>(&e) ? *dynamic_cast<const Error*>(&e)
                                               : Error(ErrorKind::kIo, e.what());
    fail(Error(err.kind(), "channel '" + c.spec->name + "': store " + c.spec->config.store + ": " +
                               err.message()));
    return;
  }
  ++c.store_seen;
  check_store_complete(c);
}

void Run::check_store_complete(ChannelRuntime& c) {
  std::lock_guard<std::mutex> lock(c.store_mutex);
  if (c.committed || !c.closed || c.store_seen.load() != c.sent.load() || cancelled_) return;
  try {
    c.writer->commit(c.epoch_items);
    c.committed = true;
  } catch (const std::exception& e) {
    fail(Error(ErrorKind::kIo, "channel '" + c.spec->name + "': " + e.what()));
  }
}

std::vector<ProgressRow> Run::snapshot() {
  std::vector<ProgressRow> rows;
  for (const auto& n : nodes_) {
    if (!n->node) continue;
    ProgressRow r;
    r.name = n->spec->name;
    r.done = n->items_in.load();
    if (n->is_source && n->expected_per_epoch > 0) {
      r.expected = n->expected_per_epoch * static_cast<std::uint64_t>(n->spec->epochs);
    }
    std::lock_guard<std::mutex> lock(n->status_mutex);
    r.status = n->status;
    rows.push_back(std::move(r));
  }
  return rows;
}

RunResult Run::execute() {
  const auto t0 = Clock::now();
  RunResult result;
  const int threads = graph_.config.graph.threads;
  tbb::task_arena arena(threads > 0 ? threads : tbb::task_arena::automatic);
  try {
    fs::create_directories(graph_.config.graph.run_dir);
  } catch (const std::exception& e) {
    result.errors.push_back(
        Error(ErrorKind::kIo,
              "cannot create run directory '" + graph_.config.graph.run_dir + "': " + e.what()));
    return result;
  }
  arena.execute([&] {
    graph_flow_ = std::make_unique<flow::graph>();
    prepare_channels();
    if (!plan_reuse()) return;
    try {
      build_flow();
    } catch (const Error& e) {
      errors_.push_back(e);
      return;
    }
    progress_ = std::make_unique<ProgressReporter>(options_.quiet, options_.print,
                                                   [this] { return snapshot(); });
    progress_->set_tick([this] {
      if (stop_requested_globally() && !cancelled_) cancel();
    });
    // Open every node without side inputs before anything runs (in pipeline order).
    std::vector<NodeRuntime*> order;
    for (int i : graph_.order) order.push_back(nodes_[static_cast<std::size_t>(i)].get());
    for (std::size_t i = graph_.nodes.size(); i < nodes_.size(); ++i) {
      order.insert(order.begin(), nodes_[i].get());
    }
    for (NodeRuntime* n : order) {
      if (!n->node || !n->spec->side_channels.empty()) continue;
      open_node(*n);
      if (!n->opened) break;
      std::lock_guard<std::mutex> lock(n->mutex);
      n->ready = true;
    }
    if (!cancelled_) {
      progress_->start();
      for (NodeRuntime* n : order) {
        if (n->node && n->is_source && n->spec->side_channels.empty()) n->source->activate();
      }
      for (NodeRuntime* n : order) {
        // Side inputs fed by skipped producers never arrive: those producers' stores replay.
        if (n->node && !n->spec->side_channels.empty()) check_side_ready(*n);
      }
      graph_flow_->wait_for_all();
      progress_->stop();
    }
    if (!cancelled_ && errors_.empty()) {
      for (const auto& n : nodes_) {
        if (n->node && !n->finished) {
          errors_.push_back(
              Error(ErrorKind::kInternal,
                    "pipeline stalled: node '" + n->spec->name + "' did not finish (" +
                        std::to_string(n->items_in.load()) + " items processed)")
                  .in_node(n->spec->name)
                  .note("a node's stream waits until its side inputs are complete; if a side "
                        "input depends on a source that also feeds that waiting stream, only "
                        "graph.max_in_flight of its items can wait and the source never ends: "
                        "give the side input a reader of its own"));
        }
      }
    }
    for (auto& n : nodes_) {
      if (n->gate) n->gate->live = false;  // limiters go away with the graph
    }
    for (NodeRuntime* n : order) {
      if (!n->opened) continue;
      guarded(*n, "close()", [&] {
        CallContext ctx(*this, *n, nullptr, 0, 0, 0, nullptr, false);
        n->node->close(ctx);
      });
    }
    graph_flow_.reset();
  });
  for (const auto& c : channels_) {
    if (c->committed) result.stores_written.push_back(c->spec->config.store);
    c->writer.reset();  // uncommitted stores stay *.partial, resumable
  }
  result.stores_reused = reused_;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const NodeRuntime& n = *nodes_[i];
    NodeStats s;
    s.name = n.spec->name;
    s.type = n.type_id;
    s.items_in = n.items_in;
    s.items_out = n.items_out;
    s.busy_seconds = static_cast<double>(n.busy_ns.load()) * 1e-9;
    s.skipped = !n.node;
    s.peak_in_flight = n.gate ? n.gate->peak.load() : 0;
    result.nodes.push_back(s);
  }
  nodes_.clear();
  result.errors = std::move(errors_);
  result.cancelled = stop_requested_globally();
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return result;
}

}  // namespace

RunResult run_graph(const PipelineGraph& graph, const PluginCatalog& catalog,
                    const RunOptions& options) {
  Run run(graph, catalog, options);
  return run.execute();
}

}  // namespace w2p
