// First of two plugins registering the same node id.
#include "nodes.hpp"
#include "w2p/plugin.hpp"

namespace {
void register_nodes(w2p::Registry& registry) { registry.add(test_plugins::nop_type("dupa.node")); }
}  // namespace

W2P_PLUGIN("dupa", "0.0.1", register_nodes)
