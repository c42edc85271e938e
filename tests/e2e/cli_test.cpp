// End-to-end: the w2p-run executable as a user runs it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace {

struct Output {
  int code = -1;
  std::string text;
};

// Runs a shell command, capturing stdout and stderr together.
Output shell(const std::string& command) {
  Output out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out.text += buf;
  const int status = ::pclose(pipe);
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("w2p_e2e_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  // h5py from Debian's python3 (not a virtualenv's): proves files are readable without w2p.
  Output h5py(const std::string& script) {
    const fs::path py = write("check.py", script);
    return shell("/usr/bin/python3 " + quote(py));
  }
  fs::path dir_;
};

TEST_F(CliTest, SmokePipelineRunsAndLeavesAnH5pyReadableStore) {
  const Output run = shell(std::string(W2P_RUN_EXE) + " " W2P_SOURCE_DIR "/pipelines/smoke.yaml" +
                           " --run-dir " + quote(dir_ / "run"));
  ASSERT_EQ(run.code, 0) << run.text;
  EXPECT_NE(run.text.find("wrote"), std::string::npos) << run.text;
  const Output check = h5py("import h5py\nf = h5py.File('" + (dir_ / "run/restored.h5").string() +
                            "', 'r')\nprint(f['audio'].shape, f.attrs['complete'], "
                            "f.attrs['config_hash'])\n");
  ASSERT_EQ(check.code, 0) << check.text;
  EXPECT_NE(check.text.find("(1000, 7, 160) 1"), std::string::npos) << check.text;
}

TEST_F(CliTest, CheckValidatesWithoutRunning) {
  const Output ok =
      shell(std::string(W2P_RUN_EXE) +
            " --check " W2P_SOURCE_DIR "/pipelines/smoke.yaml --run-dir " + quote(dir_ / "run"));
  EXPECT_EQ(ok.code, 0) << ok.text;
  EXPECT_FALSE(fs::exists(dir_ / "run" / "restored.h5"));
  const fs::path bad = write("bad.yaml", R"(nodes:
  - {name: src, type: core.tensor_sorce, outputs: {out: x}}
  - name: log
    type: core.log
    options: {evry: 3}
    inputs: {in: y}
)");
  const Output err = shell(std::string(W2P_RUN_EXE) + " --check " + quote(bad));
  EXPECT_EQ(err.code, 2) << err.text;
  const std::string f = bad.string();
  EXPECT_NE(err.text.find(f + ":2:23: error: node 'src': unknown node type 'core.tensor_sorce'"),
            std::string::npos)
      << err.text;
  EXPECT_NE(err.text.find("did you mean 'core.tensor_source'?"), std::string::npos) << err.text;
  EXPECT_NE(err.text.find(f + ":5:15: error: node 'log' (core.log): unknown option 'evry'"),
            std::string::npos)
      << err.text;
  EXPECT_NE(err.text.find("w2p-run: 2 errors"), std::string::npos) << err.text;
}

TEST_F(CliTest, MissingPluginDirectoryAndBrokenPluginExitWith3) {
  fs::create_directories(dir_ / "plugins");
  write("plugins/libw2p_broken.so", "not an ELF file");
  const Output out = shell(std::string(W2P_RUN_EXE) + " --plugin-path " + quote(dir_ / "plugins") +
                           " --check " W2P_SOURCE_DIR "/pipelines/smoke.yaml");
  EXPECT_EQ(out.code, 3) << out.text;
  EXPECT_NE(out.text.find("libw2p_broken.so"), std::string::npos) << out.text;
}

// A pipeline slow enough to be interrupted: 600 items through a serial ~6 ms node (~4 s),
// stored in chunks of 10.
std::string slow_pipeline() {
  return R"(
graph: {seed: 9, max_in_flight: 8}
channels: {y: {store: y.h5, chunk_items: 10}}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 600, shape: [16]}, outputs: {out: x}}
  - {name: scale, type: rttest.scale, options: {sleep_us: 10000, concurrency: 1}, inputs: {in: x}, outputs: {out: y}}
  - {name: sink, type: core.null_sink, inputs: {in: y}}
)";
}

pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits until the store's .partial holds at least `items` items (read with h5py; the writer
// holds HDF5's file lock, so the reader opts out of locking and retries on a torn read).
bool wait_for_partial(const fs::path& partial, int items) {
  for (int i = 0; i < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!fs::exists(partial)) continue;
    const Output o = shell(
        "HDF5_USE_FILE_LOCKING=FALSE /usr/bin/python3 -c \"import h5py; "
        "print(h5py.File('" +
        partial.string() + "', 'r').attrs['items'])\"");
    if (o.code == 0 && std::atoi(o.text.c_str()) >= items) return true;
  }
  return false;
}

TEST_F(CliTest, KilledRunResumesItsStoreAndEndsWithTheSameContent) {
  const fs::path yaml = write("slow.yaml", slow_pipeline());
  const std::vector<std::string> base = {W2P_RUN_EXE,           "--quiet",     "--plugin-path",
                                         W2P_RTTEST_PLUGIN_DIR, yaml.string(), "--run-dir"};
  auto args = [&](const std::string& run_dir) {
    auto a = base;
    a.push_back((dir_ / run_dir).string());
    return a;
  };
  const pid_t pid = spawn(args("killed"), dir_ / "killed.log");
  ASSERT_TRUE(wait_for_partial(dir_ / "killed/y.h5.partial", 60));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(fs::exists(dir_ / "killed/y.h5"));

  std::string cmd;
  for (const auto& a : args("killed")) cmd += quote(a) + " ";
  const Output resumed = shell(cmd);
  ASSERT_EQ(resumed.code, 0) << resumed.text;
  EXPECT_NE(resumed.text.find("resuming store"), std::string::npos) << resumed.text;

  cmd.clear();
  for (const auto& a : args("clean")) cmd += quote(a) + " ";
  ASSERT_EQ(shell(cmd).code, 0);
  const Output same =
      h5py("import h5py, numpy\na = h5py.File('" + (dir_ / "killed/y.h5").string() +
           "', 'r')\nb = h5py.File('" + (dir_ / "clean/y.h5").string() +
           "', 'r')\nprint(a['x'].shape, numpy.array_equal(a['x'][:], b['x'][:]))\n");
  ASSERT_EQ(same.code, 0) << same.text;
  EXPECT_NE(same.text.find("(600, 16) True"), std::string::npos) << same.text;
}

TEST_F(CliTest, CtrlCStopsCleanlyWithExit130AndNoFinalFile) {
  const fs::path yaml = write("slow.yaml", slow_pipeline());
  const pid_t pid = spawn({W2P_RUN_EXE, "--quiet", "--plugin-path", W2P_RTTEST_PLUGIN_DIR,
                           yaml.string(), "--run-dir", (dir_ / "run").string()},
                          dir_ / "run.log");
  ASSERT_TRUE(wait_for_partial(dir_ / "run/y.h5.partial", 20));
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_FALSE(fs::exists(dir_ / "run/y.h5"));
  EXPECT_TRUE(fs::exists(dir_ / "run/y.h5.partial"));
}

TEST_F(CliTest, PluginBuiltOutOfTreeAgainstTheInstalledPackageLoadsFromYamlAlone) {
  const fs::path prefix = dir_ / "prefix";
  const Output install = shell("cmake --install " W2P_BINARY_DIR " --prefix " + quote(prefix));
  ASSERT_EQ(install.code, 0) << install.text;
  ASSERT_TRUE(fs::exists(prefix / "lib/cmake/w2p/w2pConfig.cmake"));
  ASSERT_TRUE(fs::exists(prefix / "include/w2p/plugin.hpp"));
  // The in-tree build of the example is installed too: remove it, so only the out-of-tree
  // build below can provide examples.gain.
  fs::remove(prefix / "lib/w2p/plugins/libw2p_examples.so");

  const fs::path build = dir_ / "example-build";
  const Output configure = shell("cmake -S " W2P_SOURCE_DIR "/plugins/examples -B " + quote(build) +
                                 " -G Ninja -DCMAKE_PREFIX_PATH=" + quote(prefix));
  ASSERT_EQ(configure.code, 0) << configure.text;
  const Output compile = shell("cmake --build " + quote(build));
  ASSERT_EQ(compile.code, 0) << compile.text;
  ASSERT_TRUE(fs::exists(build / "plugins/libw2p_examples.so"));

  const fs::path yaml =
      write("uses_example.yaml", "graph: {plugin_paths: [" + (build / "plugins").string() + R"(]}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 20, shape: [3], fill: index}, outputs: {out: x}}
  - {name: gain, type: examples.gain, options: {gain: 3.0}, inputs: {in: x}, outputs: {out: y}}
  - {name: sum, type: examples.running_sum, inputs: {in: y}, outputs: {total: t}}
  - {name: log, type: core.log, inputs: {in: t}}
)");
  const Output run = shell(quote(prefix / "bin/w2p-run") + " " + quote(yaml) + " --run-dir " +
                           quote(dir_ / "run"));
  ASSERT_EQ(run.code, 0) << run.text;
  // sum over items i = 0..19 of 3 elements of 3*i = 9 * 190.
  EXPECT_NE(run.text.find("total: f64[] mean 1710"), std::string::npos) << run.text;
}

}  // namespace
