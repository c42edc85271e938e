// Nodes for the runtime tests: a parallel transform, a two-input join, a slow sink (for
// back-pressure), nodes with side inputs, one that records each item's stream position, and a
// tap + sink pair that measures how many source items are in flight between them.
#include <w2p/plugin.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace {

const w2p::TensorSpec kAnyF32 = w2p::TensorSpec::any(w2p::DType::kF32);

void busy_sleep(std::int64_t us) {
  if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
}

// y = 2 x + u, u ~ U[0,1) per element from the per-item generator.
class Scale final : public w2p::Node {
 public:
  static constexpr const char* kDoc = "Parallel one-to-one transform with per-item randomness.";
  static constexpr w2p::Port kIn{"in"};
  static constexpr w2p::Port kOut{"out"};
  static std::vector<w2p::OptionSpec> options() {
    return {w2p::OptionSpec::integer("sleep_us", 0).range(0, 1e7),
            w2p::OptionSpec::integer("concurrency", 0).range(0, 64)};
  }
  static w2p::Contract declare(const w2p::Options& o) {
    return w2p::Contract()
        .input(kIn, w2p::Schema{{{"x", kAnyF32, ""}}}, "values")
        .output_from(
            kOut, kIn, [](const w2p::Schema& s) { return s; }, "scaled values")
        .max_concurrency(static_cast<int>(o.get_int("concurrency")));
  }
  explicit Scale(const w2p::Options& o) : sleep_us_(o.get_int("sleep_us")) {}
  w2p::Flow process(w2p::NodeContext& ctx) override {
    // Later items sleep less, so that a parallel run finishes items out of order.
    busy_sleep(sleep_us_ * static_cast<std::int64_t>(7 - ctx.index() % 7) / 7);
    w2p::Tensor x = ctx.in(kIn).get("x").clone();
    w2p::Rng rng = ctx.rng();
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      x.mutable_data<float>()[i] = 2 * x.data<float>()[i] + static_cast<float>(rng.uniform());
    }
    ctx.emit(kOut, w2p::Item{{"x", std::move(x)}});
    return w2p::Flow::kContinue;
  }

 private:
  std::int64_t sleep_us_;
};

// out.x = a.x + b.x (items joined by position).
class Join final : public w2p::Node {
 public:
  static constexpr const char* kDoc = "Adds two inputs joined by position.";
  static constexpr w2p::Port kA{"a"};
  static constexpr w2p::Port kB{"b"};
  static constexpr w2p::Port kOut{"out"};
  static std::vector<w2p::OptionSpec> options() { return {}; }
  static w2p::Contract declare(const w2p::Options&) {
    const w2p::Schema s{{{"x", kAnyF32, ""}}};
    return w2p::Contract()
        .input(kA, s, "first")
        .input(kB, s, "second")
        .output_from(
            kOut, kA, [](const w2p::Schema& in) { return in; }, "sum")
        .max_concurrency(2);
  }
  explicit Join(const w2p::Options&) {}
  w2p::Flow process(w2p::NodeContext& ctx) override {
    w2p::Tensor x = ctx.in(kA).get("x").clone();
    const w2p::Tensor& y = ctx.in(kB).get("x");
    for (std::int64_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] += y.data<float>()[i];
    ctx.emit(kOut, w2p::Item{{"x", std::move(x)}});
    return w2p::Flow::kContinue;
  }
};

class SlowSink final : public w2p::Node {
 public:
  static constexpr const char* kDoc = "Sleeps per item (a consumer slower than its source).";
  static constexpr w2p::Port kIn{"in"};
  static std::vector<w2p::OptionSpec> options() {
    return {w2p::OptionSpec::integer("sleep_us", 200).range(0, 1e7)};
  }
  static w2p::Contract declare(const w2p::Options&) {
    return w2p::Contract().input_any(kIn, "anything");
  }
  explicit SlowSink(const w2p::Options& o) : sleep_us_(o.get_int("sleep_us")) {}
  w2p::Flow process(w2p::NodeContext&) override {
    busy_sleep(sleep_us_);
    return w2p::Flow::kContinue;
  }

 private:
  std::int64_t sleep_us_;
};

// out.x = in.x + an offset taken from a side input in open(): the side stream must have ended.
class ShiftBySide : public w2p::Node {
 public:
  static constexpr w2p::Port kIn{"in"};
  static constexpr w2p::Port kOut{"out"};
  static std::vector<w2p::OptionSpec> options() { return {}; }
  w2p::Flow process(w2p::NodeContext& ctx) override {
    w2p::Tensor x = ctx.in(kIn).get("x").clone();
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      x.mutable_data<float>()[i] += static_cast<float>(offset_);
    }
    ctx.emit(kOut, w2p::Item{{"x", std::move(x)}});
    return w2p::Flow::kContinue;
  }

 protected:
  static w2p::Contract shift_contract() {
    return w2p::Contract()
        .input(kIn, w2p::Schema{{{"x", kAnyF32, ""}}}, "values")
        .output_from(
            kOut, kIn, [](const w2p::Schema& s) { return s; }, "shifted values");
  }
  double offset_ = 0;
};

// Shifted by the sum of the side input's totals (f64 scalars).
class AddSide final : public ShiftBySide {
 public:
  static constexpr const char* kDoc = "Adds the total of a side input to every item.";
  static constexpr w2p::Port kTotal{"total"};
  static w2p::Contract declare(const w2p::Options&) {
    return shift_contract().side_input(kTotal, w2p::spec(w2p::DType::kF64), "totals to add");
  }
  explicit AddSide(const w2p::Options&) {}
  void open(w2p::NodeContext& ctx) override {
    for (const auto& item : ctx.side(kTotal)) offset_ += item.get("total").item<double>();
  }
};

// Shifted by the sum of every element of every item of the side input `side` (f32 values).
class SideSum final : public ShiftBySide {
 public:
  static constexpr const char* kDoc = "Adds the sum of a side input of values to every item.";
  static constexpr w2p::Port kSide{"side"};
  static w2p::Contract declare(const w2p::Options&) {
    return shift_contract().side_input(kSide, w2p::Schema{{{"x", kAnyF32, ""}}}, "values to sum");
  }
  explicit SideSum(const w2p::Options&) {}
  void open(w2p::NodeContext& ctx) override {
    for (const auto& item : ctx.side(kSide)) {
      const w2p::Tensor& x = item.get("x");
      for (std::int64_t i = 0; i < x.numel(); ++i) offset_ += x.data<float>()[i];
    }
  }
};

// Items counted per name, shared by the tap and lag sinks of one run (one plugin instance).
std::int64_t& counter(const std::string& name) {
  static std::map<std::string, std::int64_t> counters;
  return counters[name];
}
std::mutex& counter_mutex() {
  static std::mutex m;
  return m;
}

// Passes items on unchanged, counting them under option `counter`.
class Tap final : public w2p::Node {
 public:
  static constexpr const char* kDoc = "Counts the items passing by (see rttest.lag_sink).";
  static constexpr w2p::Port kIn{"in"};
  static constexpr w2p::Port kOut{"out"};
  static std::vector<w2p::OptionSpec> options() { return {w2p::OptionSpec::string("counter")}; }
  static w2p::Contract declare(const w2p::Options&) {
    return w2p::Contract()
        .input_any(kIn, "anything")
        .output_from(
            kOut, kIn, [](const w2p::Schema& s) { return s; }, "the same items");
  }
  explicit Tap(const w2p::Options& o) : name_(o.get_string("counter")) {}
  w2p::Flow process(w2p::NodeContext& ctx) override {
    {
      std::lock_guard<std::mutex> lock(counter_mutex());
      ++counter(name_);
    }
    ctx.emit(kOut, ctx.in(kIn));
    return w2p::Flow::kContinue;
  }

 private:
  std::string name_;
};

// A slow sink of batches: before each batch, how many items have passed the tap `counter` but
// not yet been consumed here (batch rows count as items); emits the largest such lag at the end.
class LagSink final : public w2p::Node {
 public:
  static constexpr const char* kDoc = "Largest number of tapped items not yet consumed.";
  static constexpr w2p::Port kIn{"in"};
  static constexpr w2p::Port kLag{"lag"};
  static std::vector<w2p::OptionSpec> options() {
    return {w2p::OptionSpec::string("counter"),
            w2p::OptionSpec::integer("sleep_us", 2000).range(0, 1e7)};
  }
  static w2p::Contract declare(const w2p::Options&) {
    return w2p::Contract()
        .input(kIn, w2p::Schema{{{"x", kAnyF32, ""}}}, "batches")
        .output(kLag, w2p::spec(w2p::DType::kI64), "largest lag")
        .cardinality(w2p::Cardinality::kAny);
  }
  explicit LagSink(const w2p::Options& o)
      : name_(o.get_string("counter")), sleep_us_(o.get_int("sleep_us")) {}
  w2p::Flow process(w2p::NodeContext& ctx) override {
    {
      std::lock_guard<std::mutex> lock(counter_mutex());
      max_lag_ = std::max(max_lag_, counter(name_) - consumed_);
    }
    busy_sleep(sleep_us_);
    consumed_ += ctx.in(kIn).get("x").dim(0);
    return w2p::Flow::kContinue;
  }
  void finish(w2p::NodeContext& ctx) override { ctx.emit(kLag, w2p::Tensor::scalar(max_lag_)); }

 private:
  std::string name_;
  std::int64_t sleep_us_;
  std::int64_t consumed_ = 0;
  std::int64_t max_lag_ = 0;
};

// Sums every element of the stream; emits the total at the end of the stream.
class Total final : public w2p::Node {
 public:
  static constexpr const char* kDoc = "Sum of the stream, emitted when it ends.";
  static constexpr w2p::Port kIn{"in"};
  static constexpr w2p::Port kTotal{"total"};
  static std::vector<w2p::OptionSpec> options() { return {}; }
  static w2p::Contract declare(const w2p::Options&) {
    return w2p::Contract()
        .input(kIn, w2p::Schema{{{"x", kAnyF32, ""}}}, "values")
        .output(kTotal, w2p::spec(w2p::DType::kF64), "sum")
        .cardinality(w2p::Cardinality::kAny);
  }
  explicit Total(const w2p::Options&) {}
  w2p::Flow process(w2p::NodeContext& ctx) override {
    const w2p::Tensor& x = ctx.in(kIn).get("x");
    for (std::int64_t i = 0; i < x.numel(); ++i) total_ += x.data<float>()[i];
    return w2p::Flow::kContinue;
  }
  void finish(w2p::NodeContext& ctx) override { ctx.emit(kTotal, w2p::Tensor::scalar(total_)); }

 private:
  double total_ = 0;
};

// The position the runtime gave each item (epoch, index) and the length of its field x.
class Stamp final : public w2p::Node {
 public:
  static constexpr const char* kDoc = "Records each item's epoch, index and rows of x.";
  static constexpr w2p::Port kIn{"in"};
  static constexpr w2p::Port kOut{"out"};
  static std::vector<w2p::OptionSpec> options() { return {}; }
  static w2p::Contract declare(const w2p::Options&) {
    const w2p::TensorSpec i64 = w2p::spec(w2p::DType::kI64);
    return w2p::Contract()
        .input(kIn, w2p::Schema{{{"x", kAnyF32, ""}}}, "values")
        .output(kOut, w2p::Schema{{{"epoch", i64, ""}, {"index", i64, ""}, {"rows", i64, ""}}},
                "positions");
  }
  explicit Stamp(const w2p::Options&) {}
  w2p::Flow process(w2p::NodeContext& ctx) override {
    const auto as_i64 = [](std::uint64_t v) { return static_cast<std::int64_t>(v); };
    ctx.emit(kOut, w2p::Item{{"epoch", w2p::Tensor::scalar(as_i64(ctx.epoch()))},
                             {"index", w2p::Tensor::scalar(as_i64(ctx.index()))},
                             {"rows", w2p::Tensor::scalar(ctx.in(kIn).get("x").dim(0))}});
    return w2p::Flow::kContinue;
  }
};

void register_nodes(w2p::Registry& r) {
  r.add(w2p::make_node_type<Scale>("rttest.scale"));
  r.add(w2p::make_node_type<Join>("rttest.join"));
  r.add(w2p::make_node_type<SlowSink>("rttest.slow_sink"));
  r.add(w2p::make_node_type<AddSide>("rttest.add_side"));
  r.add(w2p::make_node_type<Total>("rttest.total"));
  r.add(w2p::make_node_type<Stamp>("rttest.stamp"));
  r.add(w2p::make_node_type<SideSum>("rttest.side_sum"));
  r.add(w2p::make_node_type<Tap>("rttest.tap"));
  r.add(w2p::make_node_type<LagSink>("rttest.lag_sink"));
}

}  // namespace

W2P_PLUGIN("rttest", "0.1.0", register_nodes)
