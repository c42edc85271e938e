// Registers a node id that does not start with "noprefix.".
#include "nodes.hpp"
#include "w2p/plugin.hpp"

namespace {
void register_nodes(w2p::Registry& registry) {
  registry.add(test_plugins::nop_type("noprefix.fine"));
  registry.add(test_plugins::nop_type("shoebox"));
}
}  // namespace

W2P_PLUGIN("noprefix", "0.0.1", register_nodes)
