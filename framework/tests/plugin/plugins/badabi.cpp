// Descriptor written by hand with an ABI number no framework has.
#include "w2p/plugin.hpp"

namespace {
void register_nodes(w2p::Registry& /*registry*/) {}
const w2p::PluginDescriptor descriptor{999u, W2P_BUILD_ID, "badabi", "0.0.1", register_nodes};
}  // namespace

BOOST_DLL_ALIAS(descriptor, w2p_plugin_descriptor)
