#include "plugin/plugin_catalog.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <boost/filesystem.hpp>
#include <cstdlib>
#include <exception>
#include <set>
#include <utility>

#include "w2p/plugin.hpp"
#include "w2p/version.hpp"

namespace w2p {
namespace {

namespace fs = boost::filesystem;

constexpr const char* kDescriptorAlias = "w2p_plugin_descriptor";
constexpr std::string_view kFilePrefix = "libw2p_";
constexpr std::string_view kFileSuffix = ".so";

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool is_plugin_file_name(std::string_view file_name) {
  return file_name.size() > kFilePrefix.size() + kFileSuffix.size() &&
         starts_with(file_name, kFilePrefix) &&
         file_name.substr(file_name.size() - kFileSuffix.size()) == kFileSuffix;
}

/// "x" for "libw2p_x.so" ("" when the name does not follow the pattern).
std::string plugin_name_from_file(const std::string& path) {
  const std::string file_name = fs::path(path).filename().string();
  if (!is_plugin_file_name(file_name)) return {};
  return file_name.substr(kFilePrefix.size(),
                          file_name.size() - kFilePrefix.size() - kFileSuffix.size());
}

/// Absolute, symlink-free when the file exists, so one library has one spelling.
std::string normalized_path(const std::string& path) {
  boost::system::error_code ec;
  fs::path result = fs::weakly_canonical(fs::absolute(path), ec);
  if (ec) result = fs::absolute(path).lexically_normal();
  return result.string();
}

Error plugin_error(const std::string& path, const std::string& reason) {
  return Error(ErrorKind::kPlugin, "plugin " + path + ": " + reason);
}

/// Collects what register_nodes adds; checks happen after it returns.
class CollectingRegistry : public Registry {
 public:
  void add(NodeType type) override { types.push_back(std::move(type)); }
  std::vector<NodeType> types;
};

/// Copies any exception in flight from plugin code into a framework-owned w2p::Error; other
/// exceptions become kPlugin errors "<what_failed>: <what()>".
Error error_from_current_exception(const std::string& what_failed) {
  try {
    throw;
  } catch (const Error& e) {
    Error copy = e;  // the copy constructor runs here, not in the plugin
    return copy;
  } catch (const std::exception& e) {
    return Error(ErrorKind::kPlugin, what_failed + ": " + e.what());
  } catch (...) {
    return Error(ErrorKind::kPlugin, what_failed + ": unknown exception");
  }
}

/// The message of the exception in flight, copied.
std::string current_exception_text() {
  try {
    throw;
  } catch (const Error& e) {
    return e.message();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace

// ---- RegisteredNodeType ----

RegisteredNodeType::RegisteredNodeType(std::shared_ptr<const LoadedPlugin> plugin, NodeType type)
    : plugin_(std::move(plugin)), type_(std::move(type)) {}

std::shared_ptr<Node> RegisteredNodeType::create(const Options& options) const {
  const std::string what_failed = "node type '" + type_.id + "': create() failed";
  std::unique_ptr<Node> node;
  try {
    node = type_.create(options);
  } catch (...) {
    throw error_from_current_exception(what_failed)
        .note("raised by node type '" + type_.id + "' of plugin '" + plugin_->name + "'");
  }
  if (!node) throw Error(ErrorKind::kPlugin, what_failed + ": it returned no node");
  // The deleter runs the node's destructor (plugin code) first, and only then, when the control
  // block goes, drops its reference to the library.
  std::shared_ptr<const LoadedPlugin> keep_loaded = plugin_;
  return std::shared_ptr<Node>(node.release(),
                               [keep_loaded = std::move(keep_loaded)](Node* n) { delete n; });
}

Contract RegisteredNodeType::declare(const Options& options) const {
  try {
    return type_.declare(options);
  } catch (...) {
    throw error_from_current_exception("node type '" + type_.id + "': declare() failed")
        .note("raised by node type '" + type_.id + "' of plugin '" + plugin_->name + "'");
  }
}

// ---- PluginCatalog ----

PluginCatalog::~PluginCatalog() = default;

void PluginCatalog::add_builtin(std::vector<NodeType> types) {
  std::shared_ptr<LoadedPlugin> core;
  for (const auto& p : plugins_) {
    if (p->name == kBuiltinPluginName && !p->library) core = p;
  }
  const bool is_new = !core;
  if (is_new) {
    core = std::make_shared<LoadedPlugin>();
    core->name = kBuiltinPluginName;
    core->version = framework_version();
  }
  try {
    register_types(core, std::move(types));
  } catch (const Error& e) {
    throw Error(ErrorKind::kInternal, "built-in node types: " + e.message());
  }
  if (is_new) plugins_.push_back(core);
}

void PluginCatalog::load_file(const std::string& given_path) {
  const std::string path = normalized_path(given_path);
  for (const auto& p : plugins_) {
    if (p->path == path) return;  // already loaded, e.g. a folder listed twice
  }

  const std::string file_name_plugin = plugin_name_from_file(path);
  if (file_name_plugin.empty()) {
    throw plugin_error(path, "the file name must be libw2p_<plugin name>.so");
  }
  if (file_name_plugin == kBuiltinPluginName) {
    throw plugin_error(path, "the plugin name 'core' is reserved for the built-in node types");
  }
  if (find_plugin(file_name_plugin)) {
    // Shadowed by an earlier search directory: not opened, so its code never runs.
    skipped_.push_back(path);
    return;
  }

  auto library = std::make_shared<boost::dll::shared_library>();
  boost::system::error_code ec;
  dlerror();  // clear a stale message so the one read below is this load's
  library->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec || !library->is_loaded()) {
    const char* dl_message = dlerror();
    throw plugin_error(
        path, std::string("cannot load the library: ") + (dl_message ? dl_message : ec.message()));
  }
  if (!library->has(kDescriptorAlias)) {
    throw plugin_error(path, "not a w2p plugin: no w2p_plugin_descriptor")
        .note("a plugin exports its descriptor with W2P_PLUGIN(name, version, register_fn)");
  }
  const auto& descriptor = library->get_alias<const PluginDescriptor>(kDescriptorAlias);

  // abi is the one field every layout shares: check it before reading anything else.
  if (descriptor.abi != W2P_PLUGIN_ABI) {
    throw plugin_error(path, "built for plugin ABI " + std::to_string(descriptor.abi) +
                                 ", but this w2p has ABI " + std::to_string(W2P_PLUGIN_ABI))
        .note("rebuild the plugin against this w2p");
  }
  const std::string build_id = descriptor.build_id ? descriptor.build_id : "";
  if (build_id != framework_build_id()) {
    throw plugin_error(path, "built with build id '" + build_id + "', but this w2p with '" +
                                 framework_build_id() + "'")
        .note("rebuild the plugin against this w2p with the same compiler and standard library");
  }
  const std::string name = descriptor.name ? descriptor.name : "";
  if (name != file_name_plugin) {
    throw plugin_error(path, "the plugin is named '" + name + "' but the file name says '" +
                                 file_name_plugin + "'")
        .note("plugin '" + name + "' must be built as libw2p_" + name + ".so");
  }
  if (!descriptor.register_nodes) throw plugin_error(path, "the descriptor has no register_nodes");

  auto plugin = std::make_shared<LoadedPlugin>();
  plugin->name = name;
  plugin->version = descriptor.version ? descriptor.version : "";
  plugin->path = path;
  plugin->library = library;

  CollectingRegistry registry;
  try {
    descriptor.register_nodes(registry);
  } catch (...) {
    const std::string cause = current_exception_text();
    registry.types.clear();  // plugin code: gone before the library is unloaded
    throw plugin_error(path, "register_nodes failed: " + cause);
  }
  // On rejection, register_types leaves the catalog unchanged and the types (plugin code) are
  // destroyed with its argument, before `library` is released.
  register_types(plugin, std::move(registry.types));
  plugins_.push_back(std::move(plugin));
}

void PluginCatalog::register_types(const std::shared_ptr<LoadedPlugin>& plugin,
                                   std::vector<NodeType> types) {
  const std::string where = plugin->path.empty() ? std::string("built-in") : plugin->path;
  const std::string prefix = plugin->name + ".";
  std::set<std::string> seen;
  for (const auto& t : types) {
    if (t.id.empty()) throw plugin_error(where, "a node type has an empty id");
    if (auto it = types_.find(t.id); it != types_.end()) {
      const LoadedPlugin& other = it->second->plugin();
      throw plugin_error(where, "node type '" + t.id + "' is already registered by " +
                                    (other.path.empty() ? "the built-in node types" : other.path));
    }
    if (!seen.insert(t.id).second) {
      throw plugin_error(where, "node type '" + t.id + "' is registered twice");
    }
    if (!starts_with(t.id, prefix) || t.id.size() == prefix.size()) {
      throw plugin_error(where, "node type '" + t.id + "' must be named '" + prefix + "<node>'")
          .note("node type ids start with the plugin name, so that they are unique");
    }
    if (!t.declare || !t.create) {
      throw plugin_error(where, "node type '" + t.id + "' has no declare or create function");
    }
  }
  for (auto& t : types) {
    plugin->node_ids.push_back(t.id);
    std::string id = t.id;
    types_.emplace(std::move(id), std::make_unique<RegisteredNodeType>(plugin, std::move(t)));
  }
}

void PluginCatalog::load_directory(const std::string& dir) {
  boost::system::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file_name = it->path().filename().string();
    if (is_plugin_file_name(file_name) && !fs::is_directory(it->path(), ec)) {
      files.push_back(it->path().string());
    }
  }
  if (ec) {
    throw Error(ErrorKind::kIo, "cannot list plugin directory " + dir + ": " + ec.message());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) load_file(f);
}

void PluginCatalog::load_search_path(const std::vector<std::string>& dirs) {
  std::set<std::string> done;
  for (const auto& dir : dirs) {
    if (dir.empty() || !done.insert(normalized_path(dir)).second) continue;
    load_directory(dir);
  }
}

const RegisteredNodeType* PluginCatalog::find(std::string_view node_id) const {
  auto it = types_.find(node_id);
  return it == types_.end() ? nullptr : it->second.get();
}

std::vector<std::string> PluginCatalog::node_ids() const {
  std::vector<std::string> ids;
  ids.reserve(types_.size());
  for (const auto& entry : types_) ids.push_back(entry.first);
  return ids;  // std::map keeps them sorted
}

std::vector<std::shared_ptr<const LoadedPlugin>> PluginCatalog::plugins() const {
  return {plugins_.begin(), plugins_.end()};
}

std::shared_ptr<const LoadedPlugin> PluginCatalog::find_plugin(std::string_view name) const {
  for (const auto& p : plugins_) {
    if (p->name == name) return p;
  }
  return nullptr;
}

// ---- search path ----

std::vector<std::string> default_plugin_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("W2P_PLUGIN_PATH")) {
    std::string_view rest = env;
    while (!rest.empty()) {
      const std::size_t colon = rest.find(':');
      const std::string_view entry = rest.substr(0, colon);
      if (!entry.empty()) dirs.emplace_back(entry);
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  boost::system::error_code ec;
  // This function is compiled into libw2p_framework.so, so this is that library's path.
  const fs::path framework_dir = boost::dll::this_line_location(ec).parent_path();
  if (!ec && !framework_dir.empty()) {
    dirs.push_back((framework_dir / "w2p" / "plugins").lexically_normal().string());
    dirs.push_back((framework_dir / ".." / "plugins" / "lib").lexically_normal().string());
  }
  return dirs;
}

std::vector<std::string> plugin_search_path(const std::vector<std::string>& explicit_dirs) {
  std::vector<std::string> dirs = explicit_dirs;
  for (auto& d : default_plugin_dirs()) dirs.push_back(std::move(d));
  return dirs;
}

}  // namespace w2p
