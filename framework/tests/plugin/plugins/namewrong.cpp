// Built as libw2p_namewrong.so but declares the name "other".
#include "w2p/plugin.hpp"

namespace {
void register_nodes(w2p::Registry& /*registry*/) {}
}  // namespace

W2P_PLUGIN("other", "0.0.1", register_nodes)
