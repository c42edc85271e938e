// A well-formed plugin with two node types: a source and a transform.
#include <cstdint>

#include "w2p/plugin.hpp"

namespace {

class Counter : public w2p::Node {
 public:
  static constexpr const char* kDoc =
      "Emits the integers 0 .. count-1, one per stream position.\n"
      "A trivial source for loader tests.";
  static constexpr w2p::Port kValue{"value"};

  static std::vector<w2p::OptionSpec> options() {
    return {w2p::OptionSpec::integer("count", 3).range(1, 1000).describe("How many integers.")};
  }
  static w2p::Contract declare(const w2p::Options& /*options*/) {
    w2p::Contract c;
    c.output(kValue, w2p::spec(w2p::DType::kI64), "the current integer");
    c.repeatable();
    return c;
  }
  explicit Counter(const w2p::Options& options) : count_(options.get_int("count")) {}

  w2p::Flow process(w2p::NodeContext& ctx) override {
    if (next_ >= count_) return w2p::Flow::kEndOfStream;
    ctx.emit(kValue, w2p::Tensor::scalar<std::int64_t>(next_++));
    return w2p::Flow::kContinue;
  }

 private:
  std::int64_t count_;
  std::int64_t next_ = 0;
};

class Scale : public w2p::Node {
 public:
  static constexpr const char* kDoc = "Multiplies a vector of `size` floats by `factor`.";
  static constexpr w2p::Port kIn{"x"};
  static constexpr w2p::Port kGain{"gain"};
  static constexpr w2p::Port kOut{"y"};

  static std::vector<w2p::OptionSpec> options() {
    return {w2p::OptionSpec::integer("size").range(1, std::nullopt).describe("Vector length."),
            w2p::OptionSpec::number("factor", 2.0).describe("Multiplier."),
            w2p::OptionSpec::choice("mode", {"fast", "exact"}, "fast").describe("Rounding.")};
  }
  static w2p::Contract declare(const w2p::Options& options) {
    const std::int64_t size = options.get_int("size");  // required: fails without it
    w2p::Contract c;
    c.input(kIn, w2p::spec(w2p::DType::kF32, {size}), "values");
    c.side_input(kGain, w2p::spec(w2p::DType::kF32), "extra gain").optional();
    c.output(kOut, w2p::spec(w2p::DType::kF32, {size}), "scaled values");
    c.max_concurrency(4);
    return c;
  }
  explicit Scale(const w2p::Options& options) : factor_(options.get_float("factor")) {}

  w2p::Flow process(w2p::NodeContext& ctx) override {
    w2p::Tensor out = ctx.tensor(kIn).clone();
    float* data = out.mutable_data<float>();
    for (std::int64_t i = 0; i < out.numel(); ++i) data[i] *= static_cast<float>(factor_);
    ctx.emit(kOut, std::move(out));
    return w2p::Flow::kContinue;
  }

 private:
  double factor_;
};

void register_nodes(w2p::Registry& registry) {
  registry.add(w2p::make_node_type<Counter>("testgood.counter"));
  registry.add(w2p::make_node_type<Scale>("testgood.scale"));
}

}  // namespace

W2P_PLUGIN("testgood", "1.2.3", register_nodes)
