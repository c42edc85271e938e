#include "nodes/store_reader_node.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>

#include "channel/hdf5_store.hpp"
#include "core/suggest.hpp"

namespace w2p {
namespace {

constexpr Port kItems{"items"};

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The store's schema reduced to the `fields` option (empty = all), in the option's order.
Schema selected_schema(const Schema& schema, const std::vector<std::string>& fields,
                       const std::string& path) {
  if (fields.empty()) return schema;
  std::vector<std::string> available;
  for (const auto& f : schema.fields) available.push_back(f.name);
  Schema out;
  for (const auto& name : fields) {
    const FieldSpec* f = schema.find(name);
    if (f == nullptr) {
      Error e(ErrorKind::kConfig,
              "option 'fields': store '" + path + "' has no field '" + name + "'");
      const std::string hint = did_you_mean(name, available);
      if (!hint.empty()) e.note(hint);
      e.note("available fields: " + join(available));
      throw e;
    }
    if (out.find(name) != nullptr)
      throw Error(ErrorKind::kConfig, "option 'fields': field '" + name + "' listed twice");
    out.fields.push_back(*f);
  }
  return out;
}

std::mutex& planned_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, Schema>& planned_stores() {
  static std::map<std::string, Schema> stores;
  return stores;
}
std::string store_key(const std::string& path) {
  return std::filesystem::absolute(path).lexically_normal().string();
}

// The schema plan_store() recorded for a store that does not exist yet, if any.
std::optional<Schema> planned_schema(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return std::nullopt;
  std::lock_guard<std::mutex> lock(planned_mutex());
  const auto it = planned_stores().find(store_key(path));
  if (it == planned_stores().end()) return std::nullopt;
  return it->second;
}

// Opens the store for declare(): a missing file gets a hint about what makes it.
std::unique_ptr<StoreReader> open_store(const std::string& path) {
  try {
    return std::make_unique<StoreReader>(path);
  } catch (Error& e) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      // The .partial of an interrupted run may say which pipeline makes the store.
      const auto partial = read_store_attributes(path + ".partial");
      if (partial && partial->count("pipeline") != 0) {
        e.note("it is made by pipeline '" + partial->at("pipeline") +
               "', whose run was interrupted: run it again with --resume");
      } else {
        e.note("a store is made by the pipeline whose store writer has path '" + path +
               "': run that pipeline first (its run directory holds the store)");
      }
    }
    throw;
  }
}

class StoreReaderNode : public Node {
 public:
  static constexpr const char* kDoc =
      "Replays the items of a committed channel store (an HDF5 file written by a store "
      "writer) on its output 'items', whose fields are those of the store. Repeatable: every "
      "epoch replays the store, in a fresh random order per epoch with shuffle: true "
      "(deterministic for a run seed). 'limit' keeps the first N items; 'fields' keeps some "
      "fields.";

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::path("path").describe("the store file (.h5) to read"),
        OptionSpec::boolean("shuffle", false)
            .describe("replay in a random order, a new permutation every epoch (from the run "
                      "seed: identical at any thread count)"),
        OptionSpec::integer("limit", 0)
            .range(0, std::nullopt)
            .describe("read only the first N items of the store (0 = all); with shuffle, "
                      "those N items are permuted"),
        OptionSpec::string_list("fields", std::vector<std::string>{})
            .describe("fields to emit (empty = all fields of the store)"),
        OptionSpec::boolean("store_epochs", false)
            .describe("replay the epochs of the stream the store was written from: epoch e "
                      "emits the items written in its epoch e (shuffle and limit apply within "
                      "it), later epochs are empty; give the node as many epochs: (the runtime "
                      "does so when it replays a store instead of recomputing it)"),
    };
  }

  static Contract declare(const Options& o) {
    const std::string& path = o.get_string("path");
    const std::optional<Schema> planned = planned_schema(path);
    const Schema schema = planned ? *planned : open_store(path)->schema();
    Contract c;
    c.output(kItems, selected_schema(schema, o.get_string_list("fields"), path),
             "the items of store '" + path + "'" + (planned ? " (made by an earlier stage)" : ""));
    c.repeatable();
    return c;
  }

  explicit StoreReaderNode(const Options& o)
      : path_(o.get_string("path")),
        shuffle_(o.get_bool("shuffle")),
        limit_(static_cast<std::uint64_t>(std::max<std::int64_t>(0, o.get_int("limit")))),
        fields_(o.get_string_list("fields")),
        store_epochs_(o.get_bool("store_epochs")) {}

  void open(NodeContext& ctx) override {
    store_ = open_store(path_);
    // (A file rewritten since declare() is caught by the runtime's check of emitted items.)
    const Schema now = selected_schema(store_->schema(), fields_, path_);
    if (fields_.empty()) {
      for (const auto& f : now.fields) fields_.push_back(f.name);
    }
    epoch_items_ = store_epochs_ ? store_->epoch_items() : std::vector{store_->size()};
    ctx.expect_items(epoch_range(0).second);
  }

  Flow process(NodeContext& ctx) override {
    const std::uint64_t index = ctx.index();
    const auto [first, count] = epoch_range(ctx.epoch());
    if (index >= count) return Flow::kEndOfStream;
    std::uint64_t source = index;
    if (shuffle_) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!order_epoch_ || *order_epoch_ != ctx.epoch()) {
        order_ = permutation(ctx.run().seed, ctx.run().node_name, ctx.epoch(), count);
        order_epoch_ = ctx.epoch();
      }
      source = order_[index];
    }
    ctx.emit(kItems, store_->read(first + source, fields_));
    return Flow::kContinue;
  }

  void close(NodeContext& /*ctx*/) override { store_.reset(); }

  /// The first item and the number of items epoch `epoch` replays.
  std::pair<std::uint64_t, std::uint64_t> epoch_range(std::uint64_t epoch) const {
    const std::uint64_t e = store_epochs_ ? epoch : 0;
    if (e >= epoch_items_.size()) return {0, 0};
    const std::uint64_t first =
        std::accumulate(epoch_items_.begin(), epoch_items_.begin() + static_cast<std::ptrdiff_t>(e),
                        std::uint64_t{0});
    const std::uint64_t n = epoch_items_[e];
    return {first, limit_ > 0 ? std::min(limit_, n) : n};
  }

  /// Fisher-Yates permutation of [0, n) for (seed, node, epoch).
  static std::vector<std::uint64_t> permutation(std::uint64_t seed, const std::string& node_name,
                                                std::uint64_t epoch, std::uint64_t n) {
    std::vector<std::uint64_t> order(n);
    std::iota(order.begin(), order.end(), std::uint64_t{0});
    Rng rng = Rng::for_item(seed, node_name + "/shuffle", epoch, 0);
    for (std::uint64_t i = n; i > 1; --i) {
      const std::uint64_t j = rng.below(i);
      std::swap(order[i - 1], order[j]);
    }
    return order;
  }

 private:
  std::string path_;
  bool shuffle_;
  std::uint64_t limit_;
  std::vector<std::string> fields_;
  bool store_epochs_;
  std::unique_ptr<StoreReader> store_;
  std::vector<std::uint64_t> epoch_items_;  // all items in one epoch without store_epochs
  std::mutex mutex_;                        // process() may run for several positions at once
  std::optional<std::uint64_t> order_epoch_;
  std::vector<std::uint64_t> order_;
};

}  // namespace

void plan_store(const std::string& path, const Schema& schema) {
  std::lock_guard<std::mutex> lock(planned_mutex());
  planned_stores()[store_key(path)] = schema;
}

NodeType store_reader_node_type() { return make_node_type<StoreReaderNode>("core.store_reader"); }

}  // namespace w2p
