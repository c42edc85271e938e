// Node types built into the framework (plugin name "core"), usable before any domain plugin:
// core.tensor_source, core.log, core.null_sink, core.batch, core.unbatch, core.store_reader.
#pragma once

#include <vector>

#include "w2p/node.hpp"

namespace w2p {

std::vector<NodeType> builtin_node_types();

/// Stacks items along a new first axis; fields with ragged or symbolic dims are zero-padded to
/// the largest item and get a companion field "<name>_shape" (i64[rank]) per item.
Item collate(const std::vector<Item>& items, const Schema& schema);
/// Inverse of collate(): item `i` of a batch, padding removed using the "_shape" fields.
Item uncollate(const Item& batch, std::int64_t i);

}  // namespace w2p
