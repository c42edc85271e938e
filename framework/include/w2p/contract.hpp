// w2p::Contract: what a node takes and gives, declared before the node exists.
//
// A node type's declare() fills a Contract from the node's validated options. The runtime
// checks every contract against the whole graph (connections, field dtypes and shapes,
// symbolic dims) before creating any node, and checks each emitted item against it at run
// time. Ports are named by `static constexpr Port kAudio{"audio"};` constants in the node so
// that names are written once.
//
// Port kinds:
//  - stream inputs: one item per stream position; a node with several stream inputs receives
//    the items that share a position together. A node without stream inputs is a source.
//  - side inputs: ALL items of a channel, available from open() on; the node is opened only
//    once the producing stream has ended (a checkpoint, a validation set, a summary).
//  - outputs: an item per emission, checked against the declared schema.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "w2p/tensor.hpp"

namespace w2p {

struct Port {
  const char* name;
};

enum class PortKind : std::uint8_t { kStream, kSide };

struct PortSpec {
  std::string name;
  Schema schema;
  std::string doc;
  PortKind kind = PortKind::kStream;
  bool optional = false;    ///< may stay unconnected
  bool any_schema = false;  ///< input accepting whatever the channel carries
  /// Output whose schema follows from the schema of input `derived_from` (batching, pass-through).
  std::string derived_from;
  std::function<Schema(const Schema&)> derive;
};

/// How many output items a node emits per input item.
enum class Cardinality : std::uint8_t {
  kOneToOne,  ///< exactly one item on each connected output per input position (may run in
              ///< parallel)
  kAny,  ///< zero or more per input, plus at end of stream (batching, training): runs serially, in
         ///< order
};

class Contract {
 public:
  /// Stream input with several fields, or with one field named like the port.
  Contract& input(Port port, Schema schema, std::string doc);
  Contract& input(Port port, TensorSpec spec, std::string doc);
  Contract& side_input(Port port, Schema schema, std::string doc);
  Contract& side_input(Port port, TensorSpec spec, std::string doc);
  Contract& output(Port port, Schema schema, std::string doc);
  Contract& output(Port port, TensorSpec spec, std::string doc);
  /// Stream input accepting any schema (generic nodes: logging, batching, sinks).
  Contract& input_any(Port port, std::string doc);
  /// Output whose schema the runtime derives from the channel connected to input `from`,
  /// e.g. a batcher prepending a dim: [](Schema s) { /* add B */ return s; }.
  Contract& output_from(Port port, Port from, std::function<Schema(const Schema&)> derive,
                        std::string doc);
  /// Marks the port declared last as optional (may be left unconnected).
  Contract& optional();
  /// Parallel items at most (1 = serial, the default; 0 = unlimited). kAny forces 1.
  Contract& max_concurrency(int n);
  /// Items reach process() in stream order (the runtime adds a sequencer before the node).
  Contract& ordered();
  Contract& cardinality(Cardinality c);
  /// A source that can replay its stream (the runtime runs it `epochs` times).
  Contract& repeatable();

  const std::vector<PortSpec>& inputs() const { return inputs_; }
  const std::vector<PortSpec>& outputs() const { return outputs_; }
  const PortSpec* find_input(std::string_view name) const;
  const PortSpec* find_output(std::string_view name) const;
  int concurrency() const { return cardinality_ == Cardinality::kAny ? 1 : concurrency_; }
  bool is_ordered() const { return ordered_ || cardinality_ == Cardinality::kAny; }
  Cardinality get_cardinality() const { return cardinality_; }
  bool is_repeatable() const { return repeatable_; }
  /// True when the node has no stream input.
  bool is_source() const;

 private:
  std::vector<PortSpec> inputs_;
  std::vector<PortSpec> outputs_;
  bool last_is_output_ = false;  // which list optional() applies to
  int concurrency_ = 1;
  bool ordered_ = false;
  bool repeatable_ = false;
  Cardinality cardinality_ = Cardinality::kOneToOne;
};

}  // namespace w2p
