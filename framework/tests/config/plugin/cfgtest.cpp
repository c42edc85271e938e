// Node types with fixed schemas and typed options, for the malformed-pipeline tests: the
// built-in nodes accept any schema, so type and shape mismatches need consumers like these.
#include <cstdint>
#include <string>
#include <vector>

#include "w2p/plugin.hpp"

namespace {

using w2p::Contract;
using w2p::DType;
using w2p::Flow;
using w2p::NodeContext;
using w2p::Options;
using w2p::OptionSpec;
using w2p::Port;
using w2p::spec;

// Shared body: these nodes only exist to be validated, never run.
class Inert : public w2p::Node {
 public:
  explicit Inert(const Options& /*options*/) {}
  Flow process(NodeContext& /*ctx*/) override { return Flow::kEndOfStream; }
};

// A consumer of f32[7,16000] with one option of every kind and an optional side input.
class Sink7 : public Inert {
 public:
  using Inert::Inert;
  static constexpr const char* kDoc = "Consumes 7-channel one-second clips (f32[7,16000]).";
  static constexpr Port kAudio{"audio"};
  static constexpr Port kCalib{"calib"};
  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::integer("repeats").range(1, 1000).describe("how often each clip is replayed"),
        OptionSpec::choice("mode", {"fast", "exact", "lossless"}, "fast")
            .describe("processing mode"),
        OptionSpec::number("gain", 1.0).range(0, 10).describe("linear gain applied first"),
        OptionSpec::boolean("enabled", true).describe("process at all"),
        OptionSpec::int_list("taps", std::vector<std::int64_t>{1, 2, 3})
            .size(3)
            .range(0, 100)
            .describe("filter taps"),
        OptionSpec::string_list("labels", std::vector<std::string>{}).describe("channel labels"),
        OptionSpec::path("table", "").describe("lookup table file"),
    };
  }
  static Contract declare(const Options& /*options*/) {
    return Contract()
        .input(kAudio, spec(DType::kF32, {7, 16000}), "one clip per item")
        .side_input(kCalib, spec(DType::kF32, {7}), "per-channel calibration")
        .optional();
  }
};

// Two inputs that share the batch symbol B.
class Pair : public Inert {
 public:
  using Inert::Inert;
  static constexpr const char* kDoc = "Compares two batches of 7-vectors (f32[B,7] each).";
  static constexpr Port kLeft{"left"};
  static constexpr Port kRight{"right"};
  static std::vector<OptionSpec> options() { return {}; }
  static Contract declare(const Options& /*options*/) {
    return Contract()
        .input(kLeft, spec(DType::kF32, {"B", 7}), "first batch")
        .input(kRight, spec(DType::kF32, {"B", 7}), "second batch, same size");
  }
};

// A consumer of integer ids.
class Ints : public Inert {
 public:
  using Inert::Inert;
  static constexpr const char* kDoc = "Consumes vectors of integer ids (i64[N]).";
  static constexpr Port kIds{"ids"};
  static std::vector<OptionSpec> options() { return {}; }
  static Contract declare(const Options& /*options*/) {
    return Contract().input(kIds, spec(DType::kI64, {"N"}), "ids");
  }
};

// A source that cannot replay its stream; `meta` may stay unconnected.
class Once : public Inert {
 public:
  using Inert::Inert;
  static constexpr const char* kDoc = "Emits clips once (not repeatable).";
  static constexpr Port kAudio{"audio"};
  static constexpr Port kMeta{"meta"};
  static std::vector<OptionSpec> options() { return {}; }
  static Contract declare(const Options& /*options*/) {
    return Contract()
        .output(kAudio, spec(DType::kF32, {7, 16000}), "clips")
        .output(kMeta, spec(DType::kI64, {2}), "clip index and length")
        .optional();
  }
};

// A stream input plus a required side input.
class Trainer : public Inert {
 public:
  using Inert::Inert;
  static constexpr const char* kDoc = "Trains on batches; needs a validation set (side input).";
  static constexpr Port kBatch{"batch"};
  static constexpr Port kValidation{"validation"};
  static constexpr Port kModel{"model"};
  static std::vector<OptionSpec> options() {
    return {OptionSpec::number("lr", 1e-3).range(1e-9, 1).describe("learning rate")};
  }
  static Contract declare(const Options& /*options*/) {
    return Contract()
        .input(kBatch, spec(DType::kF32, {"B", 7}), "training batch")
        .side_input(kValidation, spec(DType::kF32, {"B", 7}), "validation batches")
        .output(kModel, spec(DType::kF32, {7}), "weights")
        .cardinality(w2p::Cardinality::kAny);
  }
};

void register_nodes(w2p::Registry& registry) {
  registry.add(w2p::make_node_type<Sink7>("cfgtest.sink7"));
  registry.add(w2p::make_node_type<Pair>("cfgtest.pair"));
  registry.add(w2p::make_node_type<Ints>("cfgtest.ints"));
  registry.add(w2p::make_node_type<Once>("cfgtest.once"));
  registry.add(w2p::make_node_type<Trainer>("cfgtest.trainer"));
}

}  // namespace

W2P_PLUGIN("cfgtest", "0.1.0", register_nodes)
