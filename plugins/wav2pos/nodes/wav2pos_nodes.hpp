// Node types of the wav2pos plugin (registered in wav2pos_plugin.cpp).
#pragma once

#include <w2p/node.hpp>

namespace w2p::wav2pos {

NodeType masker_node_type();
NodeType trainer_node_type();
NodeType evaluator_node_type();

}  // namespace w2p::wav2pos
