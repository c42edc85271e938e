// Nodes for the runtime tests: a parallel transform, a two-input join, a slow sink (for
// back-pressure), a node with a side input, and one that records each item's stream position.
#include <w2p/plugin.hpp>

#include <chrono>
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

// out.x = in.x + (sum of every item of the side input): opened once the side stream ended.
class AddSide final : public w2p::Node {
 public:
  static constexpr const char* kDoc = "Adds the total of a side input to every item.";
  static constexpr w2p::Port kIn{"in"};
  static constexpr w2p::Port kTotal{"total"};
  static constexpr w2p::Port kOut{"out"};
  static std::vector<w2p::OptionSpec> options() { return {}; }
  static w2p::Contract declare(const w2p::Options&) {
    return w2p::Contract()
        .input(kIn, w2p::Schema{{{"x", kAnyF32, ""}}}, "values")
        .side_input(kTotal, w2p::spec(w2p::DType::kF64), "totals to add")
        .output_from(
            kOut, kIn, [](const w2p::Schema& s) { return s; }, "shifted values");
  }
  explicit AddSide(const w2p::Options&) {}
  void open(w2p::NodeContext& ctx) override {
    for (const auto& item : ctx.side(kTotal)) offset_ += item.get("total").item<double>();
  }
  w2p::Flow process(w2p::NodeContext& ctx) override {
    w2p::Tensor x = ctx.in(kIn).get("x").clone();
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      x.mutable_data<float>()[i] += static_cast<float>(offset_);
    }
    ctx.emit(kOut, w2p::Item{{"x", std::move(x)}});
    return w2p::Flow::kContinue;
  }

 private:
  double offset_ = 0;
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
}

}  // namespace

W2P_PLUGIN("rttest", "0.1.0", register_nodes)
