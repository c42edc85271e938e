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

#include "support/process.hpp"

namespace fs = std::filesystem;

namespace {

using w2p::test::CommandResult;

CommandResult shell(const std::string& command) {
  return w2p::test::run_command(command + " 2>&1");
}
std::string quote(const fs::path& p) { return w2p::test::shell_quote(p.string()); }

class CliTest : public ::testing::Test {
 protected:
  fs::path write(const std::string& name, const std::string& text) {
    return scratch_.write(name, text);
  }
  // h5py from Debian's python3 (not a virtualenv's): proves files are readable without w2p.
  CommandResult h5py(const std::string& script) {
    return shell("/usr/bin/python3 " + quote(write("check.py", script)));
  }
  w2p::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

TEST_F(CliTest, SmokePipelineRunsAndLeavesAnH5pyReadableStore) {
  const CommandResult run =
      shell(std::string(W2P_RUN_EXE) + " " W2P_SOURCE_DIR "/pipelines/smoke.yaml" + " --run-dir " +
            quote(dir_ / "run"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("wrote"), std::string::npos) << run.output;
  const CommandResult check =
      h5py("import h5py\nf = h5py.File('" + (dir_ / "run/restored.h5").string() +
           "', 'r')\nprint(f['audio'].shape, f.attrs['complete'], "
           "f.attrs['config_hash'])\n");
  ASSERT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("(1000, 7, 160) 1"), std::string::npos) << check.output;
}

TEST_F(CliTest, CheckValidatesWithoutRunning) {
  const CommandResult ok =
      shell(std::string(W2P_RUN_EXE) +
            " --check " W2P_SOURCE_DIR "/pipelines/smoke.yaml --run-dir " + quote(dir_ / "run"));
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_FALSE(fs::exists(dir_ / "run" / "restored.h5"));
  const fs::path bad = write("bad.yaml", R"(nodes:
  - {name: src, type: core.tensor_sorce, outputs: {out: x}}
  - name: log
    type: core.log
    options: {evry: 3}
    inputs: {in: y}
)");
  const CommandResult err = shell(std::string(W2P_RUN_EXE) + " --check " + quote(bad));
  EXPECT_EQ(err.exit_code, 2) << err.output;
  const std::string f = bad.string();
  EXPECT_NE(err.output.find(f + ":2:23: error: node 'src': unknown node type 'core.tensor_sorce'"),
            std::string::npos)
      << err.output;
  EXPECT_NE(err.output.find("did you mean 'core.tensor_source'?"), std::string::npos) << err.output;
  EXPECT_NE(err.output.find(f + ":5:15: error: node 'log' (core.log): unknown option 'evry'"),
            std::string::npos)
      << err.output;
  EXPECT_NE(err.output.find("w2p-run: 2 errors"), std::string::npos) << err.output;
}

TEST_F(CliTest, MissingPluginDirectoryAndBrokenPluginExitWith3) {
  fs::create_directories(dir_ / "plugins");
  write("plugins/libw2p_broken.so", "not an ELF file");
  const CommandResult out =
      shell(std::string(W2P_RUN_EXE) + " --plugin-path " + quote(dir_ / "plugins") +
            " --check " W2P_SOURCE_DIR "/pipelines/smoke.yaml");
  EXPECT_EQ(out.exit_code, 3) << out.output;
  EXPECT_NE(out.output.find("libw2p_broken.so"), std::string::npos) << out.output;
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
    const CommandResult o = shell(
        "HDF5_USE_FILE_LOCKING=FALSE /usr/bin/python3 -c \"import h5py; "
        "print(h5py.File('" +
        partial.string() + "', 'r').attrs['items'])\"");
    if (o.exit_code == 0 && std::atoi(o.output.c_str()) >= items) return true;
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
  const CommandResult resumed = shell(cmd);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming store"), std::string::npos) << resumed.output;

  cmd.clear();
  for (const auto& a : args("clean")) cmd += quote(a) + " ";
  ASSERT_EQ(shell(cmd).exit_code, 0);
  const CommandResult same =
      h5py("import h5py, numpy\na = h5py.File('" + (dir_ / "killed/y.h5").string() +
           "', 'r')\nb = h5py.File('" + (dir_ / "clean/y.h5").string() +
           "', 'r')\nprint(a['x'].shape, numpy.array_equal(a['x'][:], b['x'][:]))\n");
  ASSERT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("(600, 16) True"), std::string::npos) << same.output;
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
  const CommandResult install =
      shell("cmake --install " W2P_BINARY_DIR " --prefix " + quote(prefix));
  ASSERT_EQ(install.exit_code, 0) << install.output;
  ASSERT_TRUE(fs::exists(prefix / "lib/cmake/w2p/w2pConfig.cmake"));
  ASSERT_TRUE(fs::exists(prefix / "include/w2p/plugin.hpp"));
  // The in-tree build of the example is installed too: remove it, so only the out-of-tree
  // build below can provide examples.gain.
  fs::remove(prefix / "lib/w2p/plugins/libw2p_examples.so");

  const fs::path build = dir_ / "example-build";
  const CommandResult configure =
      shell("cmake -S " W2P_SOURCE_DIR "/plugins/examples -B " + quote(build) +
            " -G Ninja -DCMAKE_PREFIX_PATH=" + quote(prefix));
  ASSERT_EQ(configure.exit_code, 0) << configure.output;
  const CommandResult compile = shell("cmake --build " + quote(build));
  ASSERT_EQ(compile.exit_code, 0) << compile.output;
  ASSERT_TRUE(fs::exists(build / "plugins/libw2p_examples.so"));

  const fs::path yaml =
      write("uses_example.yaml", "graph: {plugin_paths: [" + (build / "plugins").string() + R"(]}
nodes:
  - {name: src, type: core.tensor_source, options: {count: 20, shape: [3], fill: index}, outputs: {out: x}}
  - {name: gain, type: examples.gain, options: {gain: 3.0}, inputs: {in: x}, outputs: {out: y}}
  - {name: sum, type: examples.running_sum, inputs: {in: y}, outputs: {total: t}}
  - {name: log, type: core.log, inputs: {in: t}}
)");
  const CommandResult run = shell(quote(prefix / "bin/w2p-run") + " " + quote(yaml) +
                                  " --run-dir " + quote(dir_ / "run"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // sum over items i = 0..19 of 3 elements of 3*i = 9 * 190.
  EXPECT_NE(run.output.find("total: f64[] mean 1710"), std::string::npos) << run.output;
}

// make.yaml stores `count` items; main.yaml lists it as a stage, then opens that store with
// `read_fields` and sums it.
fs::path write_staged_pipeline(const w2p::test::ScratchDir& dir, const std::string& read_fields) {
  dir.write("make.yaml", R"(vars: {count: 5}
channels: {x: {store: x.h5}}
nodes:
  - {name: src, type: core.tensor_source, options: {count: "${count}", shape: [2], fill: index}, outputs: {out: x}}
  - {name: sink, type: core.null_sink, inputs: {in: x}}
)");
  return dir.write("main.yaml", R"(vars: {n: 7, data: stage_out}
stages:
  - {pipeline: make.yaml, vars: {count: "${n}"}, run_dir: "${data}"}
nodes:
  - {name: read, type: core.store_reader, options: {path: "${data}/x.h5", fields: )" +
                                    read_fields + R"(}, outputs: {items: x}}
  - {name: sum, type: examples.running_sum, inputs: {in: x}, outputs: {total: t}}
  - {name: log, type: core.log, inputs: {in: t}}
)");
}

TEST_F(CliTest, StagesRunFirstWithTheirVarsAndAreReusedOnTheNextRun) {
  const fs::path main = write_staged_pipeline(scratch_, "[x]");
  const std::string cmd = std::string(W2P_RUN_EXE) + " --plugin-path " W2P_EXAMPLES_PLUGIN_DIR +
                          " " + quote(main) + " --run-dir " + quote(dir_ / "run");
  const CommandResult first = shell(cmd);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_TRUE(fs::exists(dir_ / "stage_out" / "x.h5"));
  // 7 items (the stage got n) of [i, i]: 2 * (0 + ... + 6) = 42.
  EXPECT_NE(first.output.find("total: f64[] mean 42"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("wrote"), std::string::npos) << first.output;
  const CommandResult second = shell(cmd);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("reused"), std::string::npos) << second.output;
  // A stage that fails stops the run before the main pipeline.
  write("make.yaml", "nodes:\n  - {name: src, type: core.no_such_node}\n");
  const CommandResult broken = shell(cmd);
  EXPECT_EQ(broken.exit_code, 2) << broken.output;
  EXPECT_NE(broken.output.find("make.yaml failed"), std::string::npos) << broken.output;
}

TEST_F(CliTest, CheckValidatesAStagedPipelineBeforeItsStagesRan) {
  // The store main.yaml reads does not exist yet: --check takes its schema from the stage's
  // check, so it validates the whole chain and still writes nothing.
  const std::string check =
      std::string(W2P_RUN_EXE) + " --check --plugin-path " + W2P_EXAMPLES_PLUGIN_DIR + " ";
  const CommandResult ok = shell(check + quote(write_staged_pipeline(scratch_, "[x]")));
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("main.yaml: ok (3 nodes"), std::string::npos) << ok.output;
  EXPECT_FALSE(fs::exists(dir_ / "stage_out"));
  // ... and what the stage will store is checked against what the main pipeline reads.
  const CommandResult bad = shell(check + quote(write_staged_pipeline(scratch_, "[y]")));
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("'y'"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(dir_ / "stage_out"));
}

}  // namespace
