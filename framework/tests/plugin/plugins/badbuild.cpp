// Right ABI, but a build id of another compiler.
#include "w2p/plugin.hpp"

namespace {
void register_nodes(w2p::Registry& /*registry*/) {}
const w2p::PluginDescriptor descriptor{W2P_PLUGIN_ABI, "othercc-1;cxx199711;cxx11abi=0", "badbuild",
                                       "0.0.1", register_nodes};
}  // namespace

BOOST_DLL_ALIAS(descriptor, w2p_plugin_descriptor)
