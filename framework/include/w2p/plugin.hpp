// Writing a plugin: one W2P_PLUGIN(...) per shared library libw2p_<name>.so.
//
//   static void register_nodes(w2p::Registry& r) {
//     r.add(w2p::make_node_type<MyNode>("myplugin.my_node"));
//   }
//   W2P_PLUGIN("myplugin", "0.1.0", register_nodes)
//
// The macro exports a plain-data descriptor under the fixed alias `w2p_plugin_descriptor`
// (Boost.DLL). The loader reads it before running any plugin code and rejects the library
// unless abi and build id equal the framework's exactly and name matches the file name.
// Build plugins with hidden visibility (w2p_add_plugin does), so only the alias is exported.
#pragma once

#include <boost/dll/alias.hpp>
#include <cstdint>

#include "w2p/node.hpp"
#include "w2p/version.hpp"

namespace w2p {

class Registry {
 public:
  virtual ~Registry() = default;
  /// Adds a node type; a duplicate id is rejected by the loader, naming both libraries.
  virtual void add(NodeType type) = 0;
};

/// Frozen layout: `abi` stays the first field forever, so any version can read it.
struct PluginDescriptor {
  std::uint32_t abi;
  const char* build_id;
  const char* name;
  const char* version;
  void (*register_nodes)(Registry&);
};

}  // namespace w2p

#define W2P_PLUGIN(NAME, VERSION, REGISTER_FN)                                                  \
  namespace {                                                                                   \
  const ::w2p::PluginDescriptor w2p_plugin_descriptor_value{W2P_PLUGIN_ABI, W2P_BUILD_ID, NAME, \
                                                            VERSION, REGISTER_FN};              \
  }                                                                                             \
  BOOST_DLL_ALIAS(w2p_plugin_descriptor_value, w2p_plugin_descriptor)
