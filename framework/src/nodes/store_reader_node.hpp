// core.store_reader: a repeatable source that replays the items of a committed channel store
// (channel/hdf5_store.hpp), optionally shuffled per epoch, limited, or reduced to some fields.
#pragma once

#include "w2p/node.hpp"

namespace w2p {

/// Node type "core.store_reader" (registered by the runtime's built-in core plugin).
NodeType store_reader_node_type();

}  // namespace w2p
