// PluginCatalog against real plugin libraries built next to this test (see CMakeLists.txt).
#include "plugin/plugin_catalog.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "w2p/version.hpp"

namespace w2p {
namespace {

namespace fs = boost::filesystem;

std::string plugin_dir(const std::string& folder) {
  return std::string(W2P_TEST_PLUGIN_ROOT) + "/" + folder;
}
std::string plugin_file(const std::string& folder, const std::string& name) {
  return plugin_dir(folder) + "/libw2p_" + name + ".so";
}

/// Whether the dynamic linker still has the library mapped (RTLD_NOLOAD opens nothing).
bool is_mapped(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  dlclose(handle);  // NOLOAD still took a reference
  return true;
}

Options defaults_of(const NodeType& type) {
  Options options;
  for (const auto& spec : type.options) {
    if (spec.default_value) options.set(spec.key, *spec.default_value);
  }
  return options;
}

/// The part of NodeContext a source node uses: records what it emits.
class RecordingContext : public NodeContext {
 public:
  const Item& in(Port /*port*/) const override { return empty_; }
  bool connected(Port /*port*/) const override { return true; }
  const std::vector<Item>& side(Port /*port*/) const override { return side_; }
  void emit(Port port, Item item) override { emitted.emplace_back(port.name, std::move(item)); }
  std::uint64_t seq() const override { return emitted.size(); }
  std::uint64_t epoch() const override { return 0; }
  std::uint64_t index() const override { return emitted.size(); }
  Rng rng() const override { return Rng(1); }
  const RunInfo& run() const override { return run_; }
  void log(LogLevel /*level*/, std::string_view /*message*/) const override {}
  void status(std::string_view /*text*/) override {}
  void expect_items(std::uint64_t /*count*/) override {}
  void hold() override {}
  bool stop_requested() const override { return false; }

  std::vector<std::pair<std::string, Item>> emitted;

 private:
  Item empty_;
  std::vector<Item> side_;
  RunInfo run_;
};

/// Loads `path` expecting a rejection; returns the error.
Error expect_rejection(PluginCatalog& catalog, const std::string& path) {
  try {
    catalog.load_file(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kPlugin) << e.format();
    EXPECT_NE(e.format().find(path), std::string::npos) << e.format();
    return e;
  }
  ADD_FAILURE() << "no error loading " << path;
  return Error(ErrorKind::kInternal, "not rejected");
}

void expect_contains(const Error& e, const std::string& text) {
  EXPECT_NE(e.format().find(text), std::string::npos) << "expected '" << text << "' in:\n"
                                                      << e.format();
}

TEST(PluginCatalog, LoadsTheGoodPlugin) {
  PluginCatalog catalog;
  catalog.load_directory(plugin_dir("good"));
  const auto plugins = catalog.plugins();
  ASSERT_EQ(plugins.size(), 1u);
  EXPECT_EQ(plugins[0]->name, "testgood");
  EXPECT_EQ(plugins[0]->version, "1.2.3");
  EXPECT_EQ(plugins[0]->path, fs::canonical(plugin_file("good", "testgood")).string());
  EXPECT_NE(plugins[0]->library, nullptr);
  EXPECT_EQ(plugins[0]->node_ids, (std::vector<std::string>{"testgood.counter", "testgood.scale"}));
  EXPECT_EQ(catalog.node_ids(), (std::vector<std::string>{"testgood.counter", "testgood.scale"}));
  EXPECT_TRUE(catalog.skipped().empty());

  const RegisteredNodeType* counter = catalog.find("testgood.counter");
  ASSERT_NE(counter, nullptr);
  EXPECT_EQ(counter->plugin().name, "testgood");
  EXPECT_EQ(counter->type().options.size(), 1u);
  EXPECT_EQ(catalog.find("testgood.nope"), nullptr);
  EXPECT_EQ(catalog.find_plugin("testgood"), plugins[0]);
  EXPECT_EQ(catalog.find_plugin("nope"), nullptr);

  const Contract contract = counter->declare(defaults_of(counter->type()));
  ASSERT_EQ(contract.outputs().size(), 1u);
  EXPECT_EQ(contract.outputs()[0].name, "value");
  EXPECT_TRUE(contract.is_source());
}

TEST(PluginCatalog, NodeKeepsTheLibraryLoadedAfterTheCatalogIsGone) {
  const std::string path = fs::canonical(plugin_file("good", "testgood")).string();
  std::shared_ptr<Node> node;
  {
    PluginCatalog catalog;
    catalog.load_file(path);
    const RegisteredNodeType* counter = catalog.find("testgood.counter");
    ASSERT_NE(counter, nullptr);
    Options options;
    options.set("count", std::int64_t{2});
    node = counter->create(options);
  }
  ASSERT_TRUE(is_mapped(path));
  RecordingContext ctx;
  EXPECT_EQ(node->process(ctx), Flow::kContinue);
  EXPECT_EQ(node->process(ctx), Flow::kContinue);
  EXPECT_EQ(node->process(ctx), Flow::kEndOfStream);
  ASSERT_EQ(ctx.emitted.size(), 2u);
  EXPECT_EQ(ctx.emitted[1].first, "value");
  EXPECT_EQ(ctx.emitted[1].second.get("value").item<std::int64_t>(), 1);
  ctx.emitted.clear();  // the tensors' buffers are framework memory, but be tidy

  node.reset();
  EXPECT_FALSE(is_mapped(path)) << "the last reference is gone, so the library is unloaded";
}

TEST(PluginCatalog, RejectsAWrongAbi) {
  PluginCatalog catalog;
  const Error e = expect_rejection(catalog, plugin_file("badabi", "badabi"));
  expect_contains(e, "plugin ABI 999");
  expect_contains(e, "ABI " + std::to_string(W2P_PLUGIN_ABI));
  expect_contains(e, "rebuild the plugin against this w2p");
  EXPECT_TRUE(catalog.plugins().empty());
  EXPECT_FALSE(is_mapped(plugin_file("badabi", "badabi")));
}

TEST(PluginCatalog, RejectsAnotherBuildId) {
  PluginCatalog catalog;
  const Error e = expect_rejection(catalog, plugin_file("badbuild", "badbuild"));
  expect_contains(e, "othercc-1;cxx199711;cxx11abi=0");
  expect_contains(e, framework_build_id());
  expect_contains(e, "rebuild the plugin");
  EXPECT_TRUE(catalog.plugins().empty());
}

TEST(PluginCatalog, RejectsALibraryWithoutDescriptor) {
  PluginCatalog catalog;
  const Error e = expect_rejection(catalog, plugin_file("noalias", "noalias"));
  expect_contains(e, "not a w2p plugin: no w2p_plugin_descriptor");
  EXPECT_TRUE(catalog.plugins().empty());
  EXPECT_FALSE(is_mapped(plugin_file("noalias", "noalias")));
}

TEST(PluginCatalog, RejectsANameThatDiffersFromTheFileName) {
  PluginCatalog catalog;
  const Error e = expect_rejection(catalog, plugin_file("namewrong", "namewrong"));
  expect_contains(e, "named 'other'");
  expect_contains(e, "'namewrong'");
  EXPECT_TRUE(catalog.plugins().empty());
}

TEST(PluginCatalog, RejectsADuplicateNodeIdNamingBothFiles) {
  PluginCatalog catalog;
  try {
    catalog.load_directory(plugin_dir("duplicate"));  // dupa sorts before dupb
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kPlugin);
    expect_contains(e, "'dupa.node'");
    expect_contains(e, fs::canonical(plugin_file("duplicate", "dupa")).string());
    expect_contains(e, fs::canonical(plugin_file("duplicate", "dupb")).string());
  }
  ASSERT_EQ(catalog.plugins().size(), 1u);
  EXPECT_EQ(catalog.plugins()[0]->name, "dupa");
  EXPECT_EQ(catalog.node_ids(), std::vector<std::string>{"dupa.node"});
  EXPECT_EQ(catalog.find("dupa.node")->plugin().name, "dupa");
  EXPECT_EQ(catalog.find("dupb.own"), nullptr) << "nothing of a rejected library stays";
}

TEST(PluginCatalog, RejectsANodeIdWithoutThePluginPrefix) {
  PluginCatalog catalog;
  const Error e = expect_rejection(catalog, plugin_file("noprefix", "noprefix"));
  expect_contains(e, "'shoebox'");
  expect_contains(e, "'noprefix.<node>'");
  EXPECT_TRUE(catalog.node_ids().empty());
}

TEST(PluginCatalog, RejectsAThrowingRegisterNodes) {
  PluginCatalog catalog;
  const Error e = expect_rejection(catalog, plugin_file("throws", "throws"));
  expect_contains(e, "register_nodes failed");
  expect_contains(e, "sensor table missing");
  EXPECT_TRUE(catalog.node_ids().empty());
  EXPECT_FALSE(is_mapped(plugin_file("throws", "throws")));
}

TEST(PluginCatalog, RejectsAFileThatIsNotElf) {
  const std::string dir = std::string(W2P_TEST_SCRATCH_DIR) + "/garbage";
  fs::create_directories(dir);
  const std::string path = dir + "/libw2p_garbage.so";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "this is not a shared library, just some text long enough to have a header\n";
  }
  PluginCatalog catalog;
  const Error e = expect_rejection(catalog, path);
  expect_contains(e, "cannot load the library");
  expect_contains(e, "ELF");  // dlerror: "invalid ELF header"
}

TEST(PluginCatalog, RejectsMissingFilesAndBadFileNames) {
  PluginCatalog catalog;
  const Error missing = expect_rejection(catalog, plugin_file("good", "doesnotexist"));
  expect_contains(missing, "No such file");
  const std::string scratch = std::string(W2P_TEST_SCRATCH_DIR);
  fs::create_directories(scratch);
  const Error bad_name = expect_rejection(catalog, scratch + "/testgood.so");
  expect_contains(bad_name, "libw2p_<plugin name>.so");
}

TEST(PluginCatalog, ConvertsPluginExceptionsIntoFrameworkErrors) {
  std::unique_ptr<Error> declare_error;
  std::unique_ptr<Error> create_error;
  const std::string path = fs::canonical(plugin_file("nodethrow", "nodethrow")).string();
  {
    PluginCatalog catalog;
    catalog.load_directory(plugin_dir("nodethrow"));
    const RegisteredNodeType* bad = catalog.find("nodethrow.bad");
    ASSERT_NE(bad, nullptr);
    try {
      bad->declare(Options());
    } catch (const Error& e) {
      declare_error = std::make_unique<Error>(e);
    }
    try {
      bad->create(Options());
    } catch (const Error& e) {
      create_error = std::make_unique<Error>(e);
    }
  }
  // The library is gone: the errors must not point into it.
  EXPECT_FALSE(is_mapped(path));
  ASSERT_NE(declare_error, nullptr);
  EXPECT_EQ(declare_error->kind(), ErrorKind::kPlugin);
  expect_contains(*declare_error, "node type 'nodethrow.bad': declare() failed");
  expect_contains(*declare_error, "microphone layout unknown");
  ASSERT_NE(create_error, nullptr);
  EXPECT_EQ(create_error->kind(), ErrorKind::kConfig) << "a w2p::Error keeps its kind";
  expect_contains(*create_error, "option 'room' is invalid");
  expect_contains(*create_error, "expected a box");
  expect_contains(*create_error, "node type 'nodethrow.bad' of plugin 'nodethrow'");
}

TEST(PluginCatalog, FirstSearchDirectoryWins) {
  const std::string good = fs::canonical(plugin_file("good", "testgood")).string();
  const std::string shadow = fs::canonical(plugin_file("shadow", "testgood")).string();
  {
    PluginCatalog catalog;
    catalog.load_search_path({plugin_dir("good"), plugin_dir("shadow")});
    ASSERT_EQ(catalog.plugins().size(), 1u);
    EXPECT_EQ(catalog.plugins()[0]->path, good);
    EXPECT_EQ(catalog.skipped(), std::vector<std::string>{shadow});
  }
  {
    PluginCatalog catalog;
    catalog.load_search_path({plugin_dir("shadow"), plugin_dir("good")});
    EXPECT_EQ(catalog.find("testgood.counter")->plugin().path, shadow);
    EXPECT_EQ(catalog.skipped(), std::vector<std::string>{good});
  }
}

TEST(PluginCatalog, LoadsEachFileAndDirectoryOnce) {
  PluginCatalog catalog;
  catalog.load_search_path({plugin_dir("good"), plugin_dir("good") + "/", plugin_dir("good")});
  catalog.load_file(plugin_file("good", "testgood"));
  EXPECT_EQ(catalog.plugins().size(), 1u);
  EXPECT_TRUE(catalog.skipped().empty());
}

TEST(PluginCatalog, KeepsSearchPathOrder) {
  PluginCatalog catalog;
  catalog.load_search_path(
      {plugin_dir("nodethrow"), plugin_dir("does-not-exist"), plugin_dir("good")});
  const auto plugins = catalog.plugins();
  ASSERT_EQ(plugins.size(), 2u);
  EXPECT_EQ(plugins[0]->name, "nodethrow");
  EXPECT_EQ(plugins[1]->name, "testgood");
  EXPECT_EQ(catalog.node_ids(),
            (std::vector<std::string>{"nodethrow.bad", "testgood.counter", "testgood.scale"}));
}

TEST(PluginCatalog, AddsBuiltinNodeTypesUnderCore) {
  PluginCatalog catalog;
  NodeType builtin;
  builtin.id = "core.nop";
  builtin.doc = "A built-in.";
  builtin.declare = [](const Options&) { return Contract(); };
  builtin.create = [](const Options&) -> std::unique_ptr<Node> { return nullptr; };
  catalog.add_builtin({builtin});
  catalog.load_directory(plugin_dir("good"));
  ASSERT_EQ(catalog.plugins().size(), 2u);
  EXPECT_EQ(catalog.plugins()[0]->name, "core");
  EXPECT_TRUE(catalog.plugins()[0]->path.empty());
  EXPECT_EQ(catalog.plugins()[0]->library, nullptr);
  EXPECT_EQ(catalog.find("core.nop")->plugin().name, "core");
  try {
    catalog.find("core.nop")->create(Options());
    FAIL() << "a null node must be an error";
  } catch (const Error& e) {
    expect_contains(e, "returned no node");
  }

  NodeType stray = builtin;
  stray.id = "nop";
  EXPECT_THROW(catalog.add_builtin({stray}), Error);
  EXPECT_THROW(catalog.add_builtin({builtin}), Error) << "duplicate id";
  EXPECT_EQ(catalog.find("core.nop")->plugin().node_ids, std::vector<std::string>{"core.nop"});
}

class DefaultPluginDirs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* old = std::getenv("W2P_PLUGIN_PATH")) saved_ = old;
  }
  void TearDown() override {
    if (saved_) {
      setenv("W2P_PLUGIN_PATH", saved_->c_str(), 1);
    } else {
      unsetenv("W2P_PLUGIN_PATH");
    }
  }
  std::optional<std::string> saved_;
};

std::string framework_library_dir() {
  Dl_info info{};
  EXPECT_NE(dladdr(reinterpret_cast<void*>(&framework_build_id), &info), 0);
  return fs::canonical(info.dli_fname).parent_path().string();
}

TEST_F(DefaultPluginDirs, HonoursW2pPluginPath) {
  setenv("W2P_PLUGIN_PATH", "/opt/a::/opt/b:", 1);
  const auto dirs = default_plugin_dirs();
  ASSERT_EQ(dirs.size(), 4u);
  EXPECT_EQ(dirs[0], "/opt/a");
  EXPECT_EQ(dirs[1], "/opt/b");
  const fs::path framework_dir = framework_library_dir();
  EXPECT_EQ(fs::weakly_canonical(dirs[2]), framework_dir / "w2p" / "plugins");
  EXPECT_EQ(fs::weakly_canonical(dirs[3]),
            fs::weakly_canonical(framework_dir.parent_path() / "plugins" / "lib"));

  unsetenv("W2P_PLUGIN_PATH");
  EXPECT_EQ(default_plugin_dirs().size(), 2u);

  setenv("W2P_PLUGIN_PATH", "/first", 1);
  const auto search = plugin_search_path({"/explicit"});
  ASSERT_EQ(search.size(), 4u);
  EXPECT_EQ(search[0], "/explicit");
  EXPECT_EQ(search[1], "/first");
}

TEST_F(DefaultPluginDirs, EnvironmentDirectoriesAreLoaded) {
  setenv("W2P_PLUGIN_PATH", (plugin_dir("shadow") + ":" + plugin_dir("good")).c_str(), 1);
  std::vector<std::string> dirs{plugin_dir("nodethrow")};
  const auto defaults = default_plugin_dirs();
  // Only the environment's entries: the build tree's plugin folder holds the real plugins.
  dirs.insert(dirs.end(), defaults.begin(), defaults.begin() + 2);
  PluginCatalog catalog;
  catalog.load_search_path(dirs);
  ASSERT_NE(catalog.find("testgood.counter"), nullptr);
  EXPECT_EQ(catalog.find("testgood.counter")->plugin().path,
            fs::canonical(plugin_file("shadow", "testgood")).string());
  EXPECT_EQ(catalog.plugins()[0]->name, "nodethrow");
}

}  // namespace
}  // namespace w2p
