// Example plugin `examples`: two small nodes showing what a w2p node declares and does.
//
//   examples.gain         one-to-one: scales a f32 field, adds per-item noise (parallel-safe)
//   examples.running_sum  many-to-one: sums a field over the whole stream, emits once at the end
//
// A node type is a class with kDoc, options(), declare() and a constructor taking Options;
// W2P_PLUGIN exports the descriptor the loader checks (ABI, build id, name = file name).
#include <w2p/plugin.hpp>

namespace {

class Gain final : public w2p::Node {
 public:
  static constexpr const char* kDoc =
      "Multiplies every element of field `field` by `gain` and adds Gaussian noise with standard "
      "deviation `noise` drawn from the per-item generator (identical at any thread count).";
  static constexpr w2p::Port kIn{"in"};
  static constexpr w2p::Port kOut{"out"};

  static std::vector<w2p::OptionSpec> options() {
    return {
        w2p::OptionSpec::number("gain", 1.0).range(-1e6, 1e6).describe("scale factor"),
        w2p::OptionSpec::number("noise", 0.0).range(0, 1e6).describe("noise standard deviation"),
        w2p::OptionSpec::string("field", "x").describe("field to scale (f32, any shape)"),
    };
  }
  static w2p::Contract declare(const w2p::Options& o) {
    const w2p::TensorSpec any_f32 = w2p::TensorSpec::any(w2p::DType::kF32);
    const w2p::Schema schema{{w2p::FieldSpec{o.get_string("field"), any_f32, "values"}}};
    return w2p::Contract()
        .input(kIn, schema, "items to scale")
        // Same schema as whatever the input channel carries (e.g. f32[7,160]).
        .output_from(
            kOut, kIn, [](const w2p::Schema& in) { return in; }, "scaled items")
        .max_concurrency(0);  // stateless: any number of items at once
  }
  explicit Gain(const w2p::Options& o)
      : gain_(static_cast<float>(o.get_float("gain"))),
        noise_(o.get_float("noise")),
        field_(o.get_string("field")) {}

  w2p::Flow process(w2p::NodeContext& ctx) override {
    w2p::Tensor x = ctx.in(kIn).get(field_).clone();  // inputs are shared: copy before writing
    w2p::Rng rng = ctx.rng();
    float* v = x.mutable_data<float>();
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      v[i] = v[i] * gain_ + static_cast<float>(noise_ * rng.normal());
    }
    ctx.emit(kOut, w2p::Item{{field_, std::move(x)}});
    return w2p::Flow::kContinue;
  }

 private:
  float gain_;
  double noise_;
  std::string field_;
};

class RunningSum final : public w2p::Node {
 public:
  static constexpr const char* kDoc =
      "Sums field `field` over every item of the stream and emits the total (f64 scalar) once, "
      "when the stream ends: the pattern of trainers and evaluators.";
  static constexpr w2p::Port kIn{"in"};
  static constexpr w2p::Port kTotal{"total"};

  static std::vector<w2p::OptionSpec> options() {
    return {w2p::OptionSpec::string("field", "x").describe("f32 field to sum")};
  }
  static w2p::Contract declare(const w2p::Options& o) {
    const w2p::TensorSpec any_f32 = w2p::TensorSpec::any(w2p::DType::kF32);
    return w2p::Contract()
        .input(kIn, w2p::Schema{{w2p::FieldSpec{o.get_string("field"), any_f32, "values"}}},
               "items")
        .output(kTotal, w2p::spec(w2p::DType::kF64), "sum of all elements of all items")
        .cardinality(w2p::Cardinality::kAny);
  }
  explicit RunningSum(const w2p::Options& o) : field_(o.get_string("field")) {}

  w2p::Flow process(w2p::NodeContext& ctx) override {
    const w2p::Tensor& x = ctx.in(kIn).get(field_);
    for (std::int64_t i = 0; i < x.numel(); ++i) total_ += x.data<float>()[i];
    return w2p::Flow::kContinue;
  }
  void finish(w2p::NodeContext& ctx) override { ctx.emit(kTotal, w2p::Tensor::scalar(total_)); }

 private:
  std::string field_;
  double total_ = 0;
};

void register_nodes(w2p::Registry& registry) {
  registry.add(w2p::make_node_type<Gain>("examples.gain"));
  registry.add(w2p::make_node_type<RunningSum>("examples.running_sum"));
}

}  // namespace

W2P_PLUGIN("examples", "0.1.0", register_nodes)
