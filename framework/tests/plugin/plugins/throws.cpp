// register_nodes adds one node type and then throws.
#include <stdexcept>

#include "nodes.hpp"
#include "w2p/plugin.hpp"

namespace {
void register_nodes(w2p::Registry& registry) {
  registry.add(test_plugins::nop_type("throws.first"));
  throw std::runtime_error("sensor table missing");
}
}  // namespace

W2P_PLUGIN("throws", "0.0.1", register_nodes)
