// w2p::PluginCatalog: loads plugin libraries (libw2p_<name>.so) and holds their node types.
//
// Loading checks the exported descriptor before running any plugin code: ABI number and build
// id must equal the framework's exactly, and the plugin name must match the file name. Then
// register_nodes runs and every node type id must be new and start with "<plugin>.". A library
// that fails any check is unloaded and nothing of it stays registered.
//
// Lifetime (Boost.DLL rule): code of a plugin may run only while its library is loaded. Every
// RegisteredNodeType and every node created from it holds a shared_ptr to its library, so a
// node may outlive the catalog. Exceptions leaving plugin code are copied into framework-owned
// w2p::Error values at the boundary, so they outlive the library too.
//
// Thread safety: loading is not thread-safe; const members may be called concurrently.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "w2p/node.hpp"

namespace boost::dll {
class shared_library;
}  // namespace boost::dll

namespace w2p {

/// Plugin name of the built-in node types.
inline constexpr const char* kBuiltinPluginName = "core";

/// One loaded library (or the built-in "core" set: path empty, library null).
struct LoadedPlugin {
  std::string name, version, path;
  std::shared_ptr<boost::dll::shared_library> library;
  std::vector<std::string> node_ids;
};

/// A NodeType plus the plugin that registered it.
class RegisteredNodeType {
 public:
  RegisteredNodeType(std::shared_ptr<const LoadedPlugin> plugin, NodeType type);

  const NodeType& type() const { return type_; }
  const LoadedPlugin& plugin() const { return *plugin_; }
  /// Creates a node; the returned pointer keeps the plugin library loaded while the node lives.
  /// Plugin exceptions are rethrown as framework-owned w2p::Error naming the node type.
  std::shared_ptr<Node> create(const Options& options) const;
  /// The node's contract for these options; plugin exceptions as in create().
  Contract declare(const Options& options) const;

 private:
  // Declared first so it is destroyed last: type_'s std::functions are plugin code.
  std::shared_ptr<const LoadedPlugin> plugin_;
  NodeType type_;
};

class PluginCatalog {
 public:
  PluginCatalog() = default;
  PluginCatalog(const PluginCatalog&) = delete;
  PluginCatalog& operator=(const PluginCatalog&) = delete;
  PluginCatalog(PluginCatalog&&) = default;
  PluginCatalog& operator=(PluginCatalog&&) = default;
  ~PluginCatalog();

  /// Adds built-in node types under the plugin name "core". Ids must start with "core." and be
  /// new (else w2p::Error kInternal: a framework bug).
  void add_builtin(std::vector<NodeType> types);

  /// Loads one library file (w2p::Error kPlugin naming the file and the reason on rejection).
  /// The same file loaded again is ignored; a different file with the name of an already
  /// loaded plugin is not opened and is listed in skipped() (the first one found wins).
  void load_file(const std::string& path);
  /// Loads every libw2p_*.so in a directory, sorted by name; stops at the first rejection.
  /// A missing directory is ignored.
  void load_directory(const std::string& dir);
  /// load_directory for each dir in order (earlier dirs win); repeated dirs are loaded once.
  void load_search_path(const std::vector<std::string>& dirs);

  /// nullptr if unknown.
  const RegisteredNodeType* find(std::string_view node_id) const;
  /// Sorted, for did-you-mean.
  std::vector<std::string> node_ids() const;
  /// In load order.
  std::vector<std::shared_ptr<const LoadedPlugin>> plugins() const;
  /// nullptr if no plugin of that name is loaded.
  std::shared_ptr<const LoadedPlugin> find_plugin(std::string_view name) const;
  /// Paths of libraries not opened because a plugin of the same name was loaded first.
  std::vector<std::string> skipped() const { return skipped_; }

 private:
  void register_types(const std::shared_ptr<LoadedPlugin>& plugin, std::vector<NodeType> types);

  // Members are destroyed in reverse order: node types (plugin code) before plugins (libraries).
  std::vector<std::shared_ptr<LoadedPlugin>> plugins_;
  std::map<std::string, std::unique_ptr<RegisteredNodeType>, std::less<>> types_;
  std::vector<std::string> skipped_;
};

/// Default plugin directories, in search order: the entries of W2P_PLUGIN_PATH
/// (colon-separated), `<dir of libw2p_framework.so>/w2p/plugins` (install layout) and
/// `<dir of libw2p_framework.so>/../plugins/lib` (build tree layout).
std::vector<std::string> default_plugin_dirs();

/// `explicit_dirs` (YAML plugin_paths, --plugin-path) followed by default_plugin_dirs().
std::vector<std::string> plugin_search_path(const std::vector<std::string>& explicit_dirs);

}  // namespace w2p
