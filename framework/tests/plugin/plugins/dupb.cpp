// Registers a node of its own and then one id that libw2p_dupa.so already registered.
#include "nodes.hpp"
#include "w2p/plugin.hpp"

namespace {
void register_nodes(w2p::Registry& registry) {
  registry.add(test_plugins::nop_type("dupb.own"));
  registry.add(test_plugins::nop_type("dupa.node"));
}
}  // namespace

W2P_PLUGIN("dupb", "0.0.1", register_nodes)
