// A minimal node type for the broken test plugins.
#pragma once

#include <string>
#include <utility>

#include "w2p/node.hpp"

namespace test_plugins {

class Nop : public w2p::Node {
 public:
  static constexpr const char* kDoc = "Does nothing.";
  static std::vector<w2p::OptionSpec> options() { return {}; }
  static w2p::Contract declare(const w2p::Options& /*options*/) { return {}; }
  explicit Nop(const w2p::Options& /*options*/) {}
  w2p::Flow process(w2p::NodeContext& /*ctx*/) override { return w2p::Flow::kEndOfStream; }
};

inline w2p::NodeType nop_type(std::string id) { return w2p::make_node_type<Nop>(std::move(id)); }

}  // namespace test_plugins
