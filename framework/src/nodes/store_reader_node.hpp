// core.store_reader: a repeatable source that replays the items of a committed channel store
// (channel/hdf5_store.hpp), optionally shuffled per epoch, limited, or reduced to some fields.
#pragma once

#include "w2p/node.hpp"

namespace w2p {

/// Node type "core.store_reader" (registered by the runtime's built-in core plugin).
NodeType store_reader_node_type();

/// For `w2p-run --check` of a pipeline with stages, which runs nothing: a store an earlier
/// stage would write (absolute path) and its channel's schema. A reader of a store that does
/// not exist yet then declares that schema instead of failing.
void plan_store(const std::string& path, const Schema& schema);

}  // namespace w2p
