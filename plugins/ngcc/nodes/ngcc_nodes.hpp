// Node types of the ngcc plugin (one translation unit each: LibTorch code compiles slowly).
#pragma once

#include <w2p/node.hpp>

namespace w2p::ngcc {

NodeType trainer_node_type();
NodeType evaluator_node_type();

}  // namespace w2p::ngcc
